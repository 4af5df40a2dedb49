#include "providers/tart/tartsim/dhcp_leases.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <set>
#include <sstream>
#include <stdexcept>

#include "providers/tart/tartsim/fs_util.h"

namespace flotilla::tartsim {
namespace {

constexpr int64_t kLeaseSeconds = 86400;

std::string BootpdMac(const std::string& normalized) {
  std::string out;
  std::stringstream in(normalized);
  std::string octet;
  while (std::getline(in, octet, ':')) {
    const size_t first = octet.find_first_not_of('0');
    out += (out.empty() ? "" : ":") + (first == std::string::npos ? "0" : octet.substr(first));
  }
  return out;
}

std::string RenderLeases(const std::vector<Lease>& leases) {
  std::string out;
  char hex[32];
  for (const Lease& lease : leases) {
    std::snprintf(hex, sizeof(hex), "0x%llx", static_cast<unsigned long long>(lease.expires));
    const std::string mac = BootpdMac(lease.mac);
    out += "{\n\tname=" + lease.name + "\n\tip_address=" + lease.ip + "\n\thw_address=1," + mac +
           "\n\tidentifier=1," + mac + "\n\tlease=" + hex + "\n}\n";
  }
  return out;
}

}  // namespace

std::string NormalizeMac(const std::string& mac) {
  std::stringstream in(mac);
  std::string octet;
  std::string out;
  int count = 0;
  while (std::getline(in, octet, ':')) {
    if (octet.empty() || octet.size() > 2 ||
        octet.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
      return "";
    }
    char buf[4];
    std::snprintf(buf, sizeof(buf), "%02lx", std::strtoul(octet.c_str(), nullptr, 16));
    out += (out.empty() ? "" : ":") + std::string(buf);
    ++count;
  }
  return count == 6 ? out : "";
}

std::vector<Lease> ReadLeases(const std::string& path) {
  std::vector<Lease> leases;
  std::optional<std::string> text = ReadFileIfExists(path);
  if (!text) {
    return leases;
  }
  enum class State { kNowhere, kStart, kBody, kEnd } state = State::kNowhere;
  std::vector<std::pair<std::string, std::string>> current;
  std::stringstream in(*text);
  std::string line;
  int number = 0;
  auto finish = [&] {
    Lease lease;
    std::string hw;
    std::string expiry;
    for (const auto& [key, value] : current) {
      if (key == "name") {
        lease.name = value;
      } else if (key == "ip_address") {
        lease.ip = value;
      } else if (key == "hw_address") {
        hw = value;
      } else if (key == "lease") {
        expiry = value;
      }
    }
    const size_t comma = hw.find(',');
    if (lease.ip.empty() || comma == std::string::npos || hw.substr(0, comma) != "1" ||
        expiry.rfind("0x", 0) != 0) {
      return;  // Lease(fromRawLease:) returns nil: skipped
    }
    lease.mac = NormalizeMac(hw.substr(comma + 1));
    lease.expires = std::strtoll(expiry.c_str() + 2, nullptr, 16);
    if (!lease.mac.empty()) {
      leases.push_back(lease);
    }
  };
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) {
      continue;  // split(separator:) drops empty lines
    }
    if (line == "{") {
      if (state != State::kNowhere && state != State::kEnd) {
        throw std::runtime_error(
            "UnexpectedFormat(name: \"unexpected DHCPD leases file format\", "
            "message: \"unexpected lease block start ({)\", line: " +
            std::to_string(number) + ")");
      }
      state = State::kStart;
      current.clear();
    } else if (line == "}") {
      if (state != State::kBody) {
        throw std::runtime_error(
            "UnexpectedFormat(name: \"unexpected DHCPD leases file format\", "
            "message: \"unexpected lease block end (})\", line: " +
            std::to_string(number) + ")");
      }
      finish();
      state = State::kEnd;
    } else {
      const size_t start = line.find_first_not_of(" \t");
      if (start == std::string::npos) {
        continue;
      }
      const std::string body = line.substr(start);
      const size_t eq = body.find('=');
      if (eq == std::string::npos) {
        throw std::runtime_error(
            "UnexpectedFormat(name: \"unexpected DHCPD leases file format\", "
            "message: \"key-value pair with only a key\", line: " +
            std::to_string(number) + ")");
      }
      current.emplace_back(body.substr(0, eq), body.substr(eq + 1));
      state = State::kBody;
    }
  }
  if (state == State::kStart || state == State::kBody) {
    throw std::runtime_error("Truncated(name: \"truncated DHCPD leases file\")");
  }
  return leases;
}

std::optional<std::string> ResolveLease(const std::string& path, const std::string& mac) {
  const std::string want = NormalizeMac(mac);
  const int64_t now = time(nullptr);
  std::optional<Lease> best;
  for (const Lease& lease : ReadLeases(path)) {
    if (lease.mac == want && lease.expires > now && (!best || lease.expires > best->expires)) {
      best = lease;
    }
  }
  if (!best) {
    return std::nullopt;
  }
  return best->ip;
}

std::string AssignLease(const std::string& path, const std::string& name, const std::string& mac,
                        const std::string& shared_net_address, bool duplicate_ip) {
  const std::string prefix = shared_net_address.substr(0, shared_net_address.rfind('.') + 1);
  MakeDirs(Dirname(path));
  const std::string lock_path = path + ".lock";
  const int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 || flock(fd, LOCK_EX) != 0) {
    const int saved = errno;
    if (fd >= 0) {
      close(fd);
    }
    throw FsError("cannot lock " + lock_path + ": " + ErrnoText(saved), saved);
  }
  std::string ip;
  try {
    const std::string want = NormalizeMac(mac);
    const int64_t now = time(nullptr);
    std::vector<Lease> leases = ReadLeases(path);
    std::set<std::string> taken;
    std::string other_ip;
    for (const Lease& lease : leases) {
      if (lease.mac == want) {
        ip = lease.ip;  // a renewal keeps the address, expired or not
      } else if (lease.expires > now) {
        taken.insert(lease.ip);
        other_ip = lease.ip;
      }
    }
    if (duplicate_ip && !other_ip.empty()) {
      ip = other_ip;
    }
    if (ip.empty()) {
      for (int n = 2; n < 255 && ip.empty(); ++n) {
        const std::string candidate = prefix + std::to_string(n);
        if (taken.count(candidate) == 0 && candidate != shared_net_address) {
          ip = candidate;
        }
      }
    }
    if (!ip.empty()) {  // an exhausted pool gives no lease, as bootpd gives none (tart#1097)
      leases.erase(std::remove_if(leases.begin(), leases.end(),
                                  [&](const Lease& l) { return l.mac == want; }),
                   leases.end());
      leases.push_back(Lease{.name = name, .ip = ip, .mac = want, .expires = now + kLeaseSeconds});
      WriteFileAtomic(path, RenderLeases(leases));
    }
  } catch (...) {
    close(fd);
    throw;
  }
  close(fd);
  return ip;
}

}  // namespace flotilla::tartsim
