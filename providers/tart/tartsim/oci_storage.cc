#include "providers/tart/tartsim/oci_storage.h"

#include <limits.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "providers/tart/tartsim/fs_util.h"

namespace flotilla::tartsim {
namespace {

using nlohmann::json;

std::string PercentEncodeColon(const std::string& s) {
  std::string out;
  for (const char c : s) {
    out += c == ':' ? std::string("%3A") : std::string(1, c);
  }
  return out;
}

std::string PercentDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string Digest(const EVP_MD* md, const std::string& text) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), out, &len, md, nullptr);
  std::string hex;
  char buf[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof(buf), "%02x", out[i]);
    hex += buf;
  }
  return hex;
}

// A recursive-descent reading of Reference.g4:
//   root: host (':' port)? '/' namespace reference? EOF;
//   host: host_component ('.' host_component)*;   host_component: name ('-' name)*;
//   namespace: namespace_component ('/' namespace_component)*;
//   namespace_component: (name separator?)+;       separator: '.' | '-' | '_';
//   reference: (':' tag) | ('@' name ':' name);    tag: name (separator name)*;
//   name: (LETTER | DIGIT)+;
class ReferenceParser {
 public:
  explicit ReferenceParser(const std::string& text) : s_(text) {}

  std::optional<RemoteName> Parse(std::string* error) {
    for (size_t i = 0; i < s_.size(); ++i) {
      const char c = s_[i];
      if (!std::isalnum(static_cast<unsigned char>(c)) &&
          std::string(":/.-_@").find(c) == std::string::npos) {
        *error = "token recognition error at: '" + std::string(1, c) + "' (character " +
                 std::to_string(i + 1) + ")";
        return std::nullopt;
      }
    }
    RemoteName name;
    if (!Host(&name.host)) {
      return Fail(error);
    }
    if (Peek(':')) {
      ++pos_;
      const size_t start = pos_;
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
        ++pos_;
      }
      if (pos_ == start) {
        return Fail(error);
      }
      name.host += ":" + s_.substr(start, pos_ - start);
    }
    if (!Peek('/')) {
      return Fail(error);
    }
    ++pos_;
    const size_t ns_start = pos_;
    if (!NamespaceComponent()) {
      return Fail(error);
    }
    while (Peek('/')) {
      ++pos_;
      if (!NamespaceComponent()) {
        return Fail(error);
      }
    }
    name.name_space = s_.substr(ns_start, pos_ - ns_start);
    if (Peek(':')) {
      ++pos_;
      const size_t start = pos_;
      if (!Name()) {
        return Fail(error);
      }
      while (IsSeparator() && pos_ + 1 < s_.size() && IsAlnum(pos_ + 1)) {
        ++pos_;
        Name();
      }
      name.reference = s_.substr(start, pos_ - start);
    } else if (Peek('@')) {
      ++pos_;
      const size_t start = pos_;
      if (!Name() || !Peek(':')) {
        return Fail(error);
      }
      ++pos_;
      if (!Name()) {
        return Fail(error);
      }
      name.reference = s_.substr(start, pos_ - start);
      if (name.reference.rfind("sha256:", 0) != 0) {
        *error = "unknown reference format";
        return std::nullopt;
      }
      name.is_digest = true;
    } else {
      name.reference = "latest";
    }
    if (pos_ != s_.size()) {
      return Fail(error);
    }
    return name;
  }

 private:
  bool IsAlnum(size_t i) const { return std::isalnum(static_cast<unsigned char>(s_[i])) != 0; }
  bool Peek(char c) const { return pos_ < s_.size() && s_[pos_] == c; }
  bool IsSeparator() const { return Peek('.') || Peek('-') || Peek('_'); }

  bool Name() {
    const size_t start = pos_;
    while (pos_ < s_.size() && IsAlnum(pos_)) {
      ++pos_;
    }
    return pos_ > start;
  }

  bool HostComponent() {
    if (!Name()) {
      return false;
    }
    while (Peek('-') && pos_ + 1 < s_.size() && IsAlnum(pos_ + 1)) {
      ++pos_;
      Name();
    }
    return true;
  }

  bool Host(std::string* out) {
    const size_t start = pos_;
    if (!HostComponent()) {
      return false;
    }
    while (Peek('.') && pos_ + 1 < s_.size() && IsAlnum(pos_ + 1)) {
      ++pos_;
      HostComponent();
    }
    *out = s_.substr(start, pos_ - start);
    return true;
  }

  bool NamespaceComponent() {
    if (!Name()) {
      return false;
    }
    for (;;) {
      if (IsSeparator()) {
        ++pos_;
      }
      if (pos_ >= s_.size() || !IsAlnum(pos_)) {
        return true;
      }
      Name();
    }
  }

  std::optional<RemoteName> Fail(std::string* error) const {
    const std::string token = pos_ < s_.size() ? std::string(1, s_[pos_]) : "<EOF>";
    *error = "mismatched input '" + token + "' (character " + std::to_string(pos_ + 1) + ")";
    return std::nullopt;
  }

  const std::string& s_;
  size_t pos_ = 0;
};

void WalkOci(const std::string& dir, const std::string& relative, std::vector<OciEntry>* out,
             std::vector<std::string>* broken_links) {
  if (!IsDirectory(dir)) {
    return;
  }
  for (const std::string& child : ListDir(dir)) {
    const std::string path = dir + "/" + child;
    const std::string rel = relative.empty() ? child : relative + "/" + child;
    const bool symlink = IsSymlink(path);
    if (symlink && !PathExists(path)) {
      if (broken_links != nullptr) {
        broken_links->push_back(path);
      }
      continue;
    }
    VmDir vm(path);
    if (vm.Initialized()) {
      out->push_back(OciEntry{.name = PercentDecode(relative + (symlink ? ":" : "@") + child),
                              .dir = vm,
                              .is_symlink = symlink});
      continue;  // an image holds only its files; reading it would bump its atime (relatime)
    }
    if (!symlink && IsDirectory(path)) {
      WalkOci(path, rel, out, broken_links);
    }
  }
}

std::string Resolved(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) != nullptr ? std::string(buf) : path;
}

ImageDescriptor ParseDescriptor(const std::string& text, const std::string& path) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  static const char* kKnown[] = {"os",       "diskGB",        "sizeGB",     "cpuCountMin",
                                 "cpuCount", "memorySizeMin", "memorySize", "agent",
                                 "digest",   "username",      "password"};
  if (!doc.is_object()) {
    throw std::runtime_error(path + ": must be an object");
  }
  for (const auto& item : doc.items()) {
    const std::string& key = item.key();
    if (std::none_of(std::begin(kKnown), std::end(kKnown),
                     [&](const char* k) { return key == k; })) {
      throw std::runtime_error(path + ": unknown key \"" + key + "\"");
    }
  }
  ImageDescriptor image;
  try {
    image.os = doc.at("os").get<std::string>();
    image.disk_gb = doc.at("diskGB").get<int64_t>();
    image.size_gb = doc.value("sizeGB", -1.0);
    image.cpu_count_min = doc.value("cpuCountMin", int64_t{4});
    image.cpu_count = doc.value("cpuCount", int64_t{0});
    image.memory_size_min = doc.value("memorySizeMin", int64_t{0});
    image.memory_size = doc.value("memorySize", int64_t{0});
    image.agent = doc.value("agent", false);
    if (doc.contains("username")) {
      image.username = doc.at("username").get<std::string>();
    }
    if (doc.contains("password")) {
      image.password = doc.at("password").get<std::string>();
    }
    std::string digest = doc.value("digest", std::string());
    if (digest.rfind("sha256:", 0) == 0) {
      digest = digest.substr(7);
    }
    if (digest.empty()) {
      digest = Sha256Hex(text);
    }
    if (digest.size() != 64 || !std::all_of(digest.begin(), digest.end(), [](char c) {
          return std::isxdigit(static_cast<unsigned char>(c)) && !std::isupper(c);
        })) {
      throw std::runtime_error("\"digest\" must be 64 lower-case hex digits");
    }
    image.digest = "sha256:" + digest;
  } catch (const json::exception& e) {
    throw std::runtime_error(path + ": " + e.what());
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  if (image.os != "darwin" && image.os != "linux") {
    throw std::runtime_error(path + ": \"os\" must be darwin or linux");
  }
  if (image.disk_gb <= 0 || image.disk_gb > 65535) {
    throw std::runtime_error(path + ": \"diskGB\" must be 1..65535");
  }
  const int64_t gib = int64_t{1} << 30;
  if (image.memory_size_min == 0) {
    image.memory_size_min = image.os == "darwin" ? 8 * gib : 4 * gib;
  }
  if (image.cpu_count == 0) {
    image.cpu_count = image.cpu_count_min;
  }
  if (image.memory_size == 0) {
    image.memory_size = image.memory_size_min;
  }
  if (image.size_gb < 0) {
    image.size_gb = static_cast<double>(image.disk_gb) * 0.45;
  }
  return image;
}

}  // namespace

std::string RemoteName::Description() const {
  return host + "/" + name_space + (is_digest ? "@" : ":") + reference;
}

RemoteName RemoteName::AtDigest(const std::string& digest) const {
  RemoteName out = *this;
  out.reference = digest;
  out.is_digest = true;
  return out;
}

std::optional<RemoteName> RemoteName::Parse(const std::string& text, std::string* error) {
  return ReferenceParser(text).Parse(error);
}

std::string OciPath(const TartHome& home, const RemoteName& name) {
  return home.cache_ocis() + "/" + PercentEncodeColon(name.host) + "/" + name.name_space + "/" +
         name.reference;
}

std::string OciHostDir(const TartHome& home, const RemoteName& name) {
  return home.cache_ocis() + "/" + PercentEncodeColon(name.host);
}

bool OciExists(const TartHome& home, const RemoteName& name) {
  return VmDir(OciPath(home, name)).Initialized();
}

std::optional<std::string> OciDigest(const TartHome& home, const RemoteName& name) {
  const std::string digest = Basename(Resolved(OciPath(home, name)));
  if (digest.rfind("sha256:", 0) != 0) {
    return std::nullopt;
  }
  return digest;
}

bool OciLinked(const TartHome& home, const RemoteName& tag, const RemoteName& digest) {
  char buf[PATH_MAX];
  const std::string link = OciPath(home, tag);
  const ssize_t n = readlink(link.c_str(), buf, sizeof(buf) - 1);
  return n > 0 && std::string(buf, static_cast<size_t>(n)) == OciPath(home, digest);
}

void OciLink(const TartHome& home, const RemoteName& tag, const RemoteName& digest) {
  const std::string link = OciPath(home, tag);
  RemoveTree(link);
  MakeDirs(Dirname(link));
  if (symlink(OciPath(home, digest).c_str(), link.c_str()) != 0) {
    throw FsError("cannot link " + link + ": " + ErrnoText(errno), errno);
  }
  CollectOciGarbage(home);
}

std::vector<OciEntry> ListOci(const TartHome& home) {
  std::vector<OciEntry> entries;
  WalkOci(home.cache_ocis(), "", &entries, nullptr);
  std::sort(entries.begin(), entries.end(),
            [](const OciEntry& a, const OciEntry& b) { return a.name < b.name; });
  return entries;
}

void CollectOciGarbage(const TartHome& home) {
  std::vector<OciEntry> entries;
  std::vector<std::string> broken;
  WalkOci(home.cache_ocis(), "", &entries, &broken);
  for (const std::string& link : broken) {
    unlink(link.c_str());
  }
  std::map<std::string, int> incoming;
  for (const OciEntry& entry : entries) {
    incoming[Resolved(entry.dir.base())] += entry.is_symlink ? 1 : 0;
  }
  for (const auto& [dir, count] : incoming) {
    if (count == 0 && !PathExists(dir + "/.explicitly-pulled")) {
      RemoveTree(dir);
    }
  }
}

std::optional<ImageDescriptor> FindImage(const TartHome& home, const RemoteName& name) {
  const std::string repo = home.registry() + "/" + name.host + "/" + name.name_space;
  if (!name.is_digest) {
    const std::string path = repo + "/" + name.reference + ".json";
    std::optional<std::string> text = ReadFileIfExists(path);
    if (!text) {
      return std::nullopt;
    }
    return ParseDescriptor(*text, path);
  }
  if (!IsDirectory(repo)) {
    return std::nullopt;
  }
  for (const std::string& file : ListDir(repo)) {
    const std::string path = repo + "/" + file;
    if (file.size() < 6 || file.substr(file.size() - 5) != ".json" || IsDirectory(path)) {
      continue;
    }
    ImageDescriptor image = ParseDescriptor(ReadFile(path), path);
    if (image.digest == name.reference) {
      return image;
    }
  }
  return std::nullopt;
}

std::string Md5Hex(const std::string& text) { return Digest(EVP_md5(), text); }

std::string Sha256Hex(const std::string& text) { return Digest(EVP_sha256(), text); }

}  // namespace flotilla::tartsim
