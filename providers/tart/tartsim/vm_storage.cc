#include "providers/tart/tartsim/vm_storage.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <random>

#include <nlohmann/json.hpp>

#include "providers/tart/tartsim/apple_json.h"
#include "providers/tart/tartsim/fs_util.h"
#include "providers/tart/tartsim/tart_cli.h"

namespace flotilla::tartsim {
namespace {

using nlohmann::json;

constexpr char kDiskMagic[] = "TARTSIM1\n";
constexpr size_t kDiskHeaderSize = 4096;

std::string Base64(const std::vector<unsigned char>& bytes) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == bytes.size()) {
    const unsigned v = bytes[i] << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const unsigned v = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

// Swift's String(describing: DecodingError.keyNotFound(...)).
[[noreturn]] void KeyNotFound(const std::string& key) {
  throw std::runtime_error("keyNotFound(CodingKeys(stringValue: \"" + key +
                           "\", intValue: nil), Swift.DecodingError.Context(codingPath: [], "
                           "debugDescription: \"No value associated with key CodingKeys("
                           "stringValue: \\\"" +
                           key + "\\\", intValue: nil) (\\\"" + key +
                           "\\\").\", underlyingError: nil))");
}

[[noreturn]] void TypeMismatch(const std::string& key) {
  throw std::runtime_error("typeMismatch(Swift.DecodingError.Context(codingPath: [CodingKeys(" +
                           std::string("stringValue: \"") + key +
                           "\", intValue: nil)], debugDescription: \"Expected a different "
                           "type.\", underlyingError: nil))");
}

int64_t IntField(const json& doc, const char* key) {
  if (!doc.contains(key)) {
    KeyNotFound(key);
  }
  if (!doc.at(key).is_number_integer()) {
    TypeMismatch(key);
  }
  return doc.at(key).get<int64_t>();
}

std::string StringField(const json& doc, const char* key, const char* fallback) {
  if (!doc.contains(key)) {
    if (fallback == nullptr) {
      KeyNotFound(key);
    }
    return fallback;
  }
  if (!doc.at(key).is_string()) {
    TypeMismatch(key);
  }
  return doc.at(key).get<std::string>();
}

}  // namespace

TartHome TartHome::FromEnvironment() {
  if (const char* custom = std::getenv("TART_HOME")) {
    return TartHome{custom};
  }
  const char* home = std::getenv("HOME");
  return TartHome{std::string(home != nullptr ? home : "") + "/.tart"};
}

void TartHome::Prepare() const {
  try {
    MakeDirs(root);
  } catch (const FsError& e) {
    throw TartExit{.code = 1,
                   .stderr_text = "TART_HOME is invalid: " + root +
                                  " does not exist, yet we can't create it: " + e.what() + "\n"};
  }
  MakeDirs(root + "/cache");
  MakeDirs(tmp());
}

std::string VmConfig::Render() const {
  AppleJson doc = AppleJson::Object();
  doc.Add("version", AppleJson::Int(version));
  doc.Add("os", AppleJson::String(os));
  doc.Add("arch", AppleJson::String(arch));
  if (os == "darwin") {
    doc.Add("ecid", AppleJson::String(ecid));
    doc.Add("hardwareModel", AppleJson::String(hardware_model));
  }
  doc.Add("cpuCountMin", AppleJson::Int(cpu_count_min));
  doc.Add("cpuCount", AppleJson::Int(cpu_count));
  doc.Add("memorySizeMin", AppleJson::Int(memory_size_min));
  doc.Add("memorySize", AppleJson::Int(memory_size));
  doc.Add("macAddress", AppleJson::String(mac_address));
  AppleJson display = AppleJson::Object();
  display.Add("width", AppleJson::Int(display_width));
  display.Add("height", AppleJson::Int(display_height));
  if (!display_unit.empty()) {
    display.Add("unit", AppleJson::String(display_unit));
  }
  doc.Add("display", std::move(display));
  if (display_refit) {
    doc.Add("displayRefit", AppleJson::Bool(*display_refit));
  }
  doc.Add("diskFormat", AppleJson::String(disk_format));
  return doc.Render();
}

VmConfig VmConfig::Parse(const std::string& text) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception&) {
    throw std::runtime_error(
        "dataCorrupted(Swift.DecodingError.Context(codingPath: [], debugDescription: \"The "
        "given data was not valid JSON.\", underlyingError: nil))");
  }
  if (!doc.is_object()) {
    TypeMismatch("");
  }
  VmConfig config;
  config.version = IntField(doc, "version");
  config.os = StringField(doc, "os", "darwin");
  config.arch = StringField(doc, "arch", "arm64");
  if (config.os != "darwin" && config.os != "linux") {
    throw std::runtime_error(
        "dataCorrupted(Swift.DecodingError.Context(codingPath: [CodingKeys("
        "stringValue: \"os\", intValue: nil)], debugDescription: \"Cannot "
        "initialize OS from invalid String value " +
        config.os + "\", underlyingError: nil))");
  }
  if (config.os == "darwin") {
    config.ecid = StringField(doc, "ecid", nullptr);
    config.hardware_model = StringField(doc, "hardwareModel", nullptr);
  }
  config.cpu_count_min = IntField(doc, "cpuCountMin");
  config.cpu_count = IntField(doc, "cpuCount");
  config.memory_size_min = IntField(doc, "memorySizeMin");
  config.memory_size = IntField(doc, "memorySize");
  config.mac_address = StringField(doc, "macAddress", nullptr);
  if (doc.contains("display")) {
    const json& display = doc.at("display");
    config.display_width = display.value("width", int64_t{1024});
    config.display_height = display.value("height", int64_t{768});
    config.display_unit = display.value("unit", std::string());
  }
  if (doc.contains("displayRefit") && doc.at("displayRefit").is_boolean()) {
    config.display_refit = doc.at("displayRefit").get<bool>();
  }
  config.disk_format = StringField(doc, "diskFormat", "raw");
  if (config.disk_format != "raw" && config.disk_format != "asif") {
    config.disk_format = "raw";  // DiskImageFormat(rawValue:) ?? .raw
  }
  return config;
}

VmConfig ReadVmConfig(const std::string& path) { return VmConfig::Parse(ReadFile(path)); }

void WriteVmConfig(const std::string& path, const VmConfig& config) {
  WriteFileInPlace(path, config.Render());
}

std::optional<DiskHeader> ReadDiskHeader(const std::string& disk_path) {
  const int fd = open(disk_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return std::nullopt;
  }
  std::string buf(kDiskHeaderSize, '\0');
  const ssize_t n = pread(fd, buf.data(), buf.size(), 0);
  close(fd);
  const size_t magic = sizeof(kDiskMagic) - 1;
  if (n < static_cast<ssize_t>(magic) || buf.compare(0, magic, kDiskMagic) != 0) {
    return std::nullopt;
  }
  const size_t end = buf.find('\n', magic);
  try {
    const json doc = json::parse(buf.substr(magic, end - magic));
    DiskHeader header;
    header.agent = doc.value("agent", false);
    header.allocated_bytes = doc.value("allocatedBytes", int64_t{0});
    header.image = doc.value("image", std::string());
    return header;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

void WriteNewDisk(const std::string& disk_path, const DiskHeader& header, int64_t size_bytes) {
  const json doc = {
      {"agent", header.agent}, {"allocatedBytes", header.allocated_bytes}, {"image", header.image}};
  std::string content = kDiskMagic + doc.dump() + "\n";
  content.resize(std::max(content.size(), kDiskHeaderSize), '\0');
  const int fd = open(disk_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw FsError("cannot create " + disk_path + ": " + ErrnoText(errno), errno);
  }
  const bool ok =
      write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()) &&
      ftruncate(fd, std::max<int64_t>(size_bytes, static_cast<int64_t>(content.size()))) == 0;
  const int saved = errno;
  close(fd);
  if (!ok) {
    throw FsError("cannot write " + disk_path + ": " + ErrnoText(saved), saved);
  }
}

FileLock::FileLock(const std::string& path)
    : path_(path), fd_(open(path.c_str(), O_RDONLY | O_CLOEXEC)) {}

void FileLock::Fail(int error) const {
  // Swift prints the enum case: Failed("failed to lock file:///...: Bad file descriptor").
  throw FsError("Failed(\"failed to lock file://" + path_ + ": " + ErrnoText(error) + "\")", error);
}

FileLock::~FileLock() {
  if (fd_ >= 0) {
    close(fd_);
  }
}

void FileLock::Lock() {
  while (flock(fd_, LOCK_EX) != 0) {
    if (errno != EINTR) {
      Fail(errno);
    }
  }
}

bool FileLock::TryLock() {
  if (flock(fd_, LOCK_EX | LOCK_NB) == 0) {
    return true;
  }
  if (errno == EWOULDBLOCK) {
    return false;
  }
  Fail(errno);
}

std::optional<PidLock> PidLock::Open(const std::string& config_path) {
  const int fd = open(config_path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    return std::nullopt;
  }
  return PidLock(fd);
}

PidLock::PidLock(PidLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

PidLock& PidLock::operator=(PidLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) {
      close(fd_);
    }
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

PidLock::~PidLock() {
  if (fd_ >= 0) {
    close(fd_);
  }
}

bool PidLock::TryLock() {
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  if (fcntl(fd_, F_SETLK, &lock) == 0) {
    return true;
  }
  if (errno == EAGAIN || errno == EACCES) {
    return false;
  }
  throw FsError("failed to lock: " + ErrnoText(errno), errno);
}

void PidLock::Unlock() {
  struct flock lock {};
  lock.l_type = F_UNLCK;
  lock.l_whence = SEEK_SET;
  fcntl(fd_, F_SETLK, &lock);
}

pid_t PidLock::HolderPid() const {
  struct flock lock {};
  lock.l_type = F_RDLCK;
  lock.l_whence = SEEK_SET;
  if (fcntl(fd_, F_GETLK, &lock) != 0 || lock.l_type == F_UNLCK) {
    return 0;
  }
  return lock.l_pid;
}

const char* VmStateName(VmState state) {
  switch (state) {
    case VmState::kRunning:
      return "running";
    case VmState::kSuspended:
      return "suspended";
    case VmState::kStopped:
      return "stopped";
  }
  return "stopped";
}

std::string VmDir::name() const { return Basename(base_); }

bool VmDir::Initialized() const {
  return PathExists(config_path()) && PathExists(disk_path()) && PathExists(nvram_path());
}

pid_t VmDir::RunningPid() const {
  std::optional<PidLock> lock = PidLock::Open(config_path());
  return lock ? lock->HolderPid() : 0;
}

VmState VmDir::State() const {
  if (Running()) {
    return VmState::kRunning;
  }
  return PathExists(state_path()) ? VmState::kSuspended : VmState::kStopped;
}

int64_t VmDir::SizeBytes() const {
  return FileSize(config_path()) + FileSize(disk_path()) + FileSize(nvram_path());
}

int64_t VmDir::AllocatedBytes() const {
  int64_t disk = AllocatedSize(disk_path());
  if (std::optional<DiskHeader> header = ReadDiskHeader(disk_path())) {
    disk = std::max(disk, header->allocated_bytes);
  }
  return AllocatedSize(config_path()) + disk + AllocatedSize(nvram_path());
}

time_t VmDir::AccessTime() const {
  struct stat st {};
  return stat(base_.c_str(), &st) == 0 ? st.st_atim.tv_sec : 0;
}

void VmDir::UpdateAccessDate() const {
  // URL.updateAccessDate: atime = now (the modification time is left alone here).
  struct timespec times[2];
  times[0].tv_sec = time(nullptr);
  times[0].tv_nsec = 0;
  times[1].tv_nsec = UTIME_OMIT;
  times[1].tv_sec = 0;
  utimensat(AT_FDCWD, base_.c_str(), times, 0);
}

std::string VmDir::MacAddress() const { return ReadVmConfig(config_path()).mac_address; }

std::optional<VmDir> LocalVmDir(const TartHome& home, const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    return std::nullopt;
  }
  return VmDir(home.vms() + "/" + name);
}

std::vector<std::pair<std::string, VmDir>> ListLocalVms(const TartHome& home) {
  std::vector<std::pair<std::string, VmDir>> vms;
  if (!IsDirectory(home.vms())) {
    return vms;
  }
  for (const std::string& name : ListDir(home.vms())) {
    VmDir dir(home.vms() + "/" + name);
    if (dir.Initialized()) {
      vms.emplace_back(name, dir);
    }
  }
  return vms;
}

void CollectTmpGarbage(const TartHome& home) {
  try {
    for (const std::string& entry : ListDir(home.tmp())) {
      const std::string path = home.tmp() + "/" + entry;
      FileLock lock(path);
      if (!lock.TryLock()) {
        continue;
      }
      RemoveTree(path);
    }
  } catch (const FsError& e) {
    std::fprintf(stderr, "Failed to perform garbage collection: %s\n", e.what());
  }
}

std::string RandomMacAddress() {
  std::random_device random;
  std::array<unsigned, 6> bytes{};
  for (unsigned& b : bytes) {
    b = random() & 0xff;
  }
  bytes[0] = (bytes[0] & 0xfc) | 0x02;  // locally administered, unicast
  char buf[18];
  std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2],
                bytes[3], bytes[4], bytes[5]);
  return buf;
}

std::string RandomUuid() {
  std::random_device random;
  std::array<unsigned, 16> bytes{};
  for (unsigned& b : bytes) {
    b = random() & 0xff;
  }
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  std::string out;
  char buf[3];
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) {
      out += '-';
    }
    std::snprintf(buf, sizeof(buf), "%02X", bytes[i]);
    out += buf;
  }
  return out;
}

std::string RandomEcid() {
  // bplist00 { "ECID": <int64> }, as VZMacMachineIdentifier.dataRepresentation is laid out.
  std::vector<unsigned char> plist = {'b',  'p',  'l',  'i', 's', 't', '0', '0', 0xd1,
                                      0x01, 0x02, 0x54, 'E', 'C', 'I', 'D', 0x13};
  std::random_device random;
  for (int i = 0; i < 8; ++i) {
    plist.push_back(static_cast<unsigned char>(random() & 0xff));
  }
  plist.insert(plist.end(), {0x08, 0x0b, 0x10});  // offsets of the three objects
  const unsigned char trailer[32] = {0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 3,
                                     0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x19};
  plist.insert(plist.end(), trailer, trailer + 32);
  return Base64(plist);
}

std::string DefaultHardwareModel() {
  return "YnBsaXN0MDDTAQIDBAUGXxAZRGF0YVJlcHJlc2VudGF0aW9uVmVyc2lvbl8QD1BsYXRmb3JtVmVyc2lvbl8Q"
         "Ek1pbmltdW1TdXBwb3J0ZWRPUxQAAAAAAAAAAAAAAAAAAAABEAKjBwgJEA0QAAgPKz1SY2VnaWsAAAAAAAAB"
         "AQAAAAAAAAAKAAAAAAAAAAAAAAAAAAAAbQ==";
}

}  // namespace flotilla::tartsim
