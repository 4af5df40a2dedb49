// tart clone and tart pull (Commands/Clone.swift, Pull.swift, VMStorageOCI.swift pull(),
// VMDirectory+OCI.swift, OCI/Registry.swift auth(), Credentials/*.swift).

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "providers/tart/tartsim/commands.h"
#include "providers/tart/tartsim/fs_util.h"
#include "providers/tart/tartsim/oci_storage.h"

namespace flotilla::tartsim {
namespace {

const CommandSpec& CloneSpec(const Context& ctx) {
  static const CommandSpec kNew{
      .usage = {.command = "clone",
                .synopsis = "tart clone <source-name> <new-name> [--insecure] [--concurrency "
                            "<concurrency>] [--prune-limit <n>]"},
      .options = {{.long_name = "insecure"},
                  {.long_name = "concurrency", .takes_value = true, .value_name = "concurrency"},
                  {.long_name = "deduplicate"},
                  {.long_name = "prune-limit", .takes_value = true, .value_name = "n"}},
      .positionals = {"source-name", "new-name"},
  };
  static const CommandSpec kOld{
      .usage = {.command = "clone",
                .synopsis = "tart clone <source-name> <new-name> [--insecure] [--concurrency "
                            "<concurrency>]"},
      .options = {{.long_name = "insecure"},
                  {.long_name = "concurrency", .takes_value = true, .value_name = "concurrency"},
                  {.long_name = "deduplicate"}},
      .positionals = {"source-name", "new-name"},
  };
  return ctx.config.AtLeast("2.28.5") ? kNew : kOld;
}

const CommandSpec kPullSpec{
    .usage = {.command = "pull",
              .synopsis = "tart pull <remote-name> [--insecure] [--concurrency <concurrency>]"},
    .options = {{.long_name = "insecure"},
                {.long_name = "concurrency", .takes_value = true, .value_name = "concurrency"},
                {.long_name = "deduplicate"}},
    .positionals = {"remote-name"},
};

// A cancelled async task (SIGINT): Root prints the CancellationError through exit(withError:).
[[noreturn]] void ThrowCancelled() { ThrowError("CancellationError()"); }

void Log(const std::string& line) { std::cout << line << "\n" << std::flush; }

// ProgressObserver through the default logger: a new line, then in-place updates unless $CI.
void UpdateLastLine(const Context& ctx, const std::string& line) {
  if (ctx.ci_logger()) {
    Log(line);
  } else {
    std::cout << "\x1b[1A\r\x1b[J" << line << "\n" << std::flush;
  }
}

// Registry.auth(): the credentials providers in order (environment, Docker config, Keychain),
// then the registry's verdict. Throws the error Tart prints.
void Authenticate(const Context& ctx, const RemoteName& name, const ImageDescriptor& image) {
  std::optional<std::pair<std::string, std::string>> credentials;
  const char* hostname = std::getenv("TART_REGISTRY_HOSTNAME");
  const char* user = std::getenv("TART_REGISTRY_USERNAME");
  const char* password = std::getenv("TART_REGISTRY_PASSWORD");
  if ((hostname == nullptr || name.host == hostname) && user != nullptr && password != nullptr) {
    credentials.emplace(user, password);
  }
  if (!credentials && ctx.config.faults.keychain_locked) {
    // KeychainCredentialsProvider throws; lookupCredentials() only warns, on stdout.
    Log("Failed to retrieve credentials using Keychain credentials provider, authentication may "
        "fail: Failed(message: \"Keychain returned unsuccessful status -25308\")");
  }
  if (!image.username && !image.password) {
    return;  // a public image: the anonymous token is enough
  }
  if (credentials && credentials->first == image.username.value_or("") &&
      credentials->second == image.password.value_or("")) {
    return;
  }
  // What ghcr.io answers for missing or wrong credentials (tart#277).
  ThrowError(
      "AuthFailed(why: \"received unexpected HTTP status code 403 while retrieving an "
      "authentication token\", details: \"{\\\"errors\\\":[{\\\"code\\\":\\\"DENIED\\\","
      "\\\"message\\\":\\\"denied\\\"}]}\\n\")");
}

// Builds the image's files in `dir`, as pullFromRegistry leaves them.
void MaterializeImage(const RemoteName& digest_name, const ImageDescriptor& image,
                      const std::string& dir) {
  VmConfig config;
  config.os = image.os;
  config.cpu_count_min = image.cpu_count_min;
  config.cpu_count = image.cpu_count;
  config.memory_size_min = image.memory_size_min;
  config.memory_size = image.memory_size;
  // The image's config carries one fixed MAC (every clone shares it until --random-mac or a
  // clash makes clone regenerate it); derive it from the digest.
  const std::string hex = digest_name.reference.substr(7);
  char mac[18];
  std::snprintf(mac, sizeof(mac), "%02lx:%s:%s:%s:%s:%s",
                (std::strtoul(hex.substr(0, 2).c_str(), nullptr, 16) & 0xfc) | 0x02,
                hex.substr(2, 2).c_str(), hex.substr(4, 2).c_str(), hex.substr(6, 2).c_str(),
                hex.substr(8, 2).c_str(), hex.substr(10, 2).c_str());
  config.mac_address = mac;
  if (config.os == "darwin") {
    config.ecid = RandomEcid();
    config.hardware_model = DefaultHardwareModel();
  }
  WriteVmConfig(dir + "/config.json", config);
  const int64_t gb = 1000LL * 1000 * 1000;
  WriteNewDisk(dir + "/disk.img",
               DiskHeader{.agent = image.agent,
                          .allocated_bytes = static_cast<int64_t>(image.size_gb * gb),
                          .image = digest_name.Description()},
               image.disk_gb * gb);
  // NVRAM: Apple's auxiliary storage (darwin) or an EFI variable store (linux), sparse.
  WriteNewDisk(dir + "/nvram.bin", DiskHeader{}, config.os == "darwin" ? 33554432 : 131072);
}

// VMStorageOCI.pull(). Prints what Tart prints; throws TartExit on failure.
void PullImage(const Context& ctx, const RemoteName& name) {
  Log("pulling manifest...");
  std::optional<ImageDescriptor> image;
  try {
    image = FindImage(ctx.home, name);
  } catch (const std::runtime_error& e) {
    throw TartExit{.code = 70, .stderr_text = std::string("flotilla-tartsim: ") + e.what() + "\n"};
  }
  if (!image) {
    Authenticate(ctx, name, ImageDescriptor{});
    ThrowError(
        "UnexpectedHTTPStatusCode(when: \"pulling manifest\", code: 404, details: "
        "\"{\\\"errors\\\":[{\\\"code\\\":\\\"MANIFEST_UNKNOWN\\\",\\\"message\\\":\\\"manifest "
        "unknown\\\"}]}\\n\")");
  }
  Authenticate(ctx, name, *image);
  const RemoteName digest_name = name.AtDigest(image->digest);
  if (OciExists(ctx.home, name) && OciExists(ctx.home, digest_name) &&
      OciLinked(ctx.home, name, digest_name)) {
    Log(digest_name.Description() + " image is already cached and linked!");
    return;
  }
  // One pull per registry host at a time (a flock on cache/OCIs/<host>).
  const std::string host_dir = OciHostDir(ctx.home, name);
  MakeDirs(host_dir);
  FileLock host_lock(host_dir);
  if (!host_lock.TryLock()) {
    Log("waiting for lock...");
    host_lock.Lock();
  }
  if (!OciExists(ctx.home, digest_name)) {
    const std::string tmp = ctx.home.tmp() + "/" + Md5Hex(name.Description());
    MakeDirs(tmp);
    SleepMs(ctx.config.Jittered(ctx.config.latency_ms.tmplock));
    FileLock tmp_lock(tmp);
    tmp_lock.Lock();
    MaterializeImage(digest_name, *image, tmp);
    char compressed[32];
    std::snprintf(compressed, sizeof(compressed), "%.1f", image->size_gb * 0.8);
    Log(std::string("pulling disk (") + compressed + " GB compressed)...");
    Log("0%");
    if (SleepUnlessInterrupted(ctx.config.Jittered(ctx.config.latency_ms.pull))) {
      RemoveTree(tmp);
      ThrowCancelled();
    }
    UpdateLastLine(ctx, "100%");
    Log("pulling NVRAM...");
    const std::string target = OciPath(ctx.home, digest_name);
    MakeDirs(Dirname(target));
    ReplaceItem(target, tmp);
  } else {
    Log(digest_name.Description() + " image is already cached! creating a symlink...");
  }
  if (!name.is_digest) {
    OciLink(ctx.home, name, digest_name);
  } else {
    WriteFileInPlace(OciPath(ctx.home, name) + "/.explicitly-pulled", "");
  }
  VmDir(OciPath(ctx.home, name)).UpdateAccessDate();
}

}  // namespace

int CmdPull(const Context& ctx, const Args& args) {
  ParsedArgs parsed = ParseArgs(kPullSpec, args);
  if (parsed.help()) {
    std::cout << HelpText(kPullSpec);
    return 0;
  }
  if (ParseUnsigned(kPullSpec, "concurrency", parsed.Value("concurrency").value_or("4"),
                    UINT64_MAX) < 1) {
    ThrowValidation("network concurrency cannot be less than 1", kPullSpec.usage);
  }
  StartCommand(ctx, false);
  const std::string& remote = parsed.positionals()[0];
  if (std::optional<VmDir> local = LocalVmDir(ctx.home, remote); local && local->Initialized()) {
    std::cout << "\"" << remote << "\" is a local image, nothing to pull here!\n";
    return 0;
  }
  std::string error;
  std::optional<RemoteName> name = RemoteName::Parse(remote, &error);
  if (!name) {
    ThrowRuntimeError(ctx.version(), RuntimeKind::kOther, "failed to parse remote name: " + error);
  }
  Log("pulling " + name->Description() + "...");
  PullImage(ctx, *name);
  return 0;
}

int CmdClone(const Context& ctx, const Args& args) {
  const CommandSpec& spec = CloneSpec(ctx);
  ParsedArgs parsed = ParseArgs(spec, args);
  if (parsed.help()) {
    std::cout << HelpText(spec);
    return 0;
  }
  const std::string& source = parsed.positionals()[0];
  const std::string& target = parsed.positionals()[1];
  const uint64_t concurrency =
      ParseUnsigned(spec, "concurrency", parsed.Value("concurrency").value_or("4"), UINT64_MAX);
  if (std::optional<std::string> limit = parsed.Value("prune-limit")) {
    ParseUnsigned(spec, "prune-limit", *limit, UINT64_MAX);
  }
  if (target.find('/') != std::string::npos) {
    ThrowValidation("<new-name> should be a local name", spec.usage);
  }
  if (concurrency < 1) {
    ThrowValidation("network concurrency cannot be less than 1", spec.usage);
  }
  StartCommand(ctx, false);
  std::optional<VmDir> target_dir = LocalVmDir(ctx.home, target);
  if (!target_dir) {
    ThrowError("flotilla-tartsim refuses \"" + target + "\" as a VM directory name");
  }

  std::string error;
  std::optional<RemoteName> remote = RemoteName::Parse(source, &error);
  if (remote && !OciExists(ctx.home, *remote)) {
    PullImage(ctx, *remote);
  }
  // Tart's own race (VMStorageOCI.swift link(): removeItem of the tag's symlink, then
  // createSymbolicLink): a clone that checked the tag just before another clone or pull of the
  // same image re-links it opens nothing. The window is microseconds wide, so the fake opens it
  // on demand (faults.link_race); two clones of an uncached image hit it for real under load.
  if (remote && ConsumeFault(ctx.home.fake_config(), "link_race")) {
    ThrowDoesNotExist(ctx.version(), source);
  }
  // VMStorageHelper.open: remote names from the cache, the rest from vms/.
  VmDir source_dir = remote ? VmDir(OciPath(ctx.home, *remote)) : VmDir("");
  if (remote) {
    if (!source_dir.Initialized()) {
      ThrowDoesNotExist(ctx.version(), source);
    }
    source_dir.UpdateAccessDate();
  } else {
    source_dir = OpenLocalVm(ctx, source);
  }

  const std::string tmp = ctx.home.tmp() + "/" + RandomUuid();
  MakeDirs(tmp);
  // Until it is locked, another command's GC may remove it: Lock() then fails (EBADF).
  SleepMs(ctx.config.Jittered(ctx.config.latency_ms.tmplock));
  FileLock tmp_lock(tmp);  // keeps the GC of other commands away
  tmp_lock.Lock();
  try {
    FileLock global(ctx.home.root);
    global.Lock();
    const std::string source_mac = source_dir.MacAddress();
    bool mac_taken = false;
    for (const auto& [name, dir] : ListLocalVms(ctx.home)) {
      mac_taken = mac_taken || dir.MacAddress() == source_mac;
    }
    const bool generate_mac = mac_taken && source_dir.State() != VmState::kSuspended;
    if (SleepUnlessInterrupted(ctx.config.Jittered(ctx.config.latency_ms.clone))) {
      RemoveTree(tmp);
      ThrowCancelled();
    }
    CopyFileSparse(source_dir.config_path(), tmp + "/config.json");
    CopyFileSparse(source_dir.nvram_path(), tmp + "/nvram.bin");
    CopyFileSparse(source_dir.disk_path(), tmp + "/disk.img");
    if (PathExists(source_dir.state_path())) {
      CopyFileSparse(source_dir.state_path(), tmp + "/state.vzvmsave");
    }
    if (generate_mac) {
      VmConfig config = ReadVmConfig(tmp + "/config.json");
      config.mac_address = RandomMacAddress();
      unlink((tmp + "/state.vzvmsave").c_str());
      WriteVmConfig(tmp + "/config.json", config);
    }
    MakeDirs(ctx.home.vms());
    ReplaceItem(target_dir->base(), tmp);
  } catch (const std::runtime_error& e) {
    RemoveTree(tmp);
    ThrowError(e.what());
  }
  // A new disk is a new guest file system: the fake guest's home starts empty.
  RemoveTree(ctx.home.guest_home(target));
  RemoveTree(ctx.home.vm_state(target));
  return 0;
}

}  // namespace flotilla::tartsim
