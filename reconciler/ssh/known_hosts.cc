#include "reconciler/ssh/known_hosts.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <sstream>

namespace flotilla::ssh {
namespace {

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t end = std::min(s.find(sep, start), s.size());
    out.emplace_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string HostPattern(std::string_view host, int port) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);  // an IPv6 literal as written in a URL
  }
  if (port == 22 || port == 0) {
    return std::string(host);
  }
  return "[" + std::string(host) + "]:" + std::to_string(port);
}

std::string HmacSha1(const std::string& key, const std::string& data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int len = 0;
  HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len);
  return std::string(reinterpret_cast<const char*>(out.data()), len);
}

}  // namespace

std::string DecodeBase64(std::string_view text) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '+') {
      v = 62;
    } else if (c == '/') {
      v = 63;
    } else if (c == '=') {
      break;
    } else {
      return {};
    }
    buffer = (buffer << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  return out;
}

KnownHosts KnownHosts::Parse(std::string_view text) {
  KnownHosts hosts;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string first;
    if (!(fields >> first) || first[0] == '#') {
      continue;
    }
    Entry entry;
    std::string names = first;
    if (first == "@revoked") {
      entry.revoked = true;
      fields >> names;
    } else if (first[0] == '@') {
      continue;  // @cert-authority: not supported, never matches
    }
    std::string type, key;
    if (!(fields >> type >> key)) {
      continue;
    }
    entry.key = DecodeBase64(key);
    if (entry.key.empty()) {
      continue;
    }
    if (names.rfind("|1|", 0) == 0) {
      const std::vector<std::string> parts = Split(names.substr(3), '|');
      if (parts.size() != 2) {
        continue;
      }
      entry.salt = DecodeBase64(parts[0]);
      entry.hash = DecodeBase64(parts[1]);
    } else {
      entry.patterns = Split(names, ',');
    }
    hosts.entries_.push_back(std::move(entry));
  }
  return hosts;
}

Result<KnownHosts> KnownHosts::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return Status::NotFound("cannot read known_hosts file " + path);
  }
  std::stringstream text;
  text << in.rdbuf();
  KnownHosts hosts = Parse(text.str());
  if (hosts.entries_.empty()) {
    return Status::InvalidArgument("known_hosts file " + path + " has no usable host key");
  }
  return hosts;
}

KnownHosts::Verdict KnownHosts::Check(std::string_view host, int port,
                                      std::string_view key_blob) const {
  const std::string name = HostPattern(host, port);
  auto names_host = [&](const Entry& e) {
    if (!e.hash.empty()) {
      return HmacSha1(e.salt, name) == e.hash;
    }
    return std::find(e.patterns.begin(), e.patterns.end(), name) != e.patterns.end();
  };
  bool matched = false;
  bool host_known = false;
  for (const Entry& e : entries_) {
    if (e.revoked) {
      if (e.key == key_blob) {
        return Verdict::kRevoked;  // whatever the host pattern says ("@revoked * ...")
      }
      continue;
    }
    if (!names_host(e)) {
      continue;
    }
    if (e.key == key_blob) {
      matched = true;
    } else {
      host_known = true;
    }
  }
  if (matched) {
    return Verdict::kMatch;
  }
  return host_known ? Verdict::kMismatch : Verdict::kUnknownHost;
}

}  // namespace flotilla::ssh
