// The macOS host tools the Tart provider's observe script runs and Linux lacks (or has with other
// output): sysctl, sw_vers and df, answering from TART_HOME/.fake/config.json "host".

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>

#include "providers/tart/tartsim/commands.h"
#include "providers/tart/tartsim/fs_util.h"

namespace flotilla::tartsim {

// sysctl [-n] name...: one value per line, in the order asked.
int HostSysctl(const FakeConfig& config, int argc, char** argv) {
  const std::map<std::string, std::string> values = {
      {"hw.ncpu", std::to_string(config.host.ncpu)},
      {"hw.logicalcpu", std::to_string(config.host.ncpu)},
      {"hw.activecpu", std::to_string(config.host.ncpu)},
      {"hw.physicalcpu", std::to_string(config.host.ncpu)},
      {"hw.memsize", std::to_string(config.host.memsize)},
      {"hw.machine", config.host.machine},
      {"kern.osproductversion", config.host.os_version},
      {"kern.osversion", config.host.build_version},
  };
  bool values_only = false;
  int status = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-n") {
      values_only = true;
      continue;
    }
    if (!arg.empty() && arg[0] == '-') {
      std::fprintf(stderr,
                   "sysctl: illegal option -- %s\nusage: sysctl [-bdehiNnoqx] name[=value] ...\n",
                   arg.c_str() + 1);
      return 1;
    }
    auto found = values.find(arg);
    if (found == values.end()) {
      std::fprintf(stderr, "sysctl: unknown oid '%s'\n", arg.c_str());
      status = 1;
      continue;
    }
    if (values_only) {
      std::printf("%s\n", found->second.c_str());
    } else {
      std::printf("%s: %s\n", arg.c_str(), found->second.c_str());
    }
  }
  return status;
}

int HostSwVers(const FakeConfig& config, int argc, char** argv) {
  if (argc == 1) {
    std::printf("ProductName:\t\tmacOS\nProductVersion:\t\t%s\nBuildVersion:\t\t%s\n",
                config.host.os_version.c_str(), config.host.build_version.c_str());
    return 0;
  }
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) == 0) {
      arg = arg.substr(1);
    }
    if (arg == "-productName") {
      std::printf("macOS\n");
    } else if (arg == "-productVersion") {
      std::printf("%s\n", config.host.os_version.c_str());
    } else if (arg == "-buildVersion") {
      std::printf("%s\n", config.host.build_version.c_str());
    } else {
      std::fputs(
          "Usage: sw_vers [--productName|--productVersion|--productVersionExtra|"
          "--buildVersion]\n",
          stderr);
      return 1;
    }
  }
  return 0;
}

// df [-k] [path]: BSD df's columns, for the one (simulated) data volume.
int HostDf(const FakeConfig& config, int argc, char** argv) {
  std::string path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-k") {
      continue;
    }
    if (!arg.empty() && arg[0] == '-') {
      std::fprintf(stderr,
                   "df: illegal option -- %s\nusage: df [-b | -H | -h | -k | -m | -g | -P] "
                   "[-ailn] [-T type] [-t] [filesystem ...]\n",
                   arg.c_str() + 1);
      return 1;
    }
    path = arg;
  }
  if (!path.empty() && !PathExists(path)) {
    std::fprintf(stderr, "df: %s: No such file or directory\n", path.c_str());
    return 1;
  }
  const long long total = config.host.disk_total_kb;
  const long long avail = config.host.disk_avail_kb;
  const long long used = total > avail ? total - avail : 0;
  const long long iused = used / 64;
  const long long ifree = avail * 4;
  const double capacity =
      total > 0 ? std::ceil(100.0 * static_cast<double>(used) / static_cast<double>(used + avail))
                : 0;
  const double iused_pct =
      iused + ifree > 0 ? 100.0 * static_cast<double>(iused) / static_cast<double>(iused + ifree)
                        : 0;
  const std::string fs = "/dev/disk3s5";
  const std::string total_s = std::to_string(total);
  const std::string used_s = std::to_string(used);
  const std::string avail_s = std::to_string(avail);
  const std::string iused_s = std::to_string(iused);
  const std::string ifree_s = std::to_string(ifree);
  auto width = [](const std::string& a, const char* b) {
    return static_cast<int>(std::max(a.size(), std::strlen(b)));
  };
  const int fw = width(fs, "Filesystem");
  const int tw = width(total_s, "1024-blocks");
  const int uw = width(used_s, "Used");
  const int aw = width(avail_s, "Available");
  const int iw = width(iused_s, "iused");
  const int fr = width(ifree_s, "ifree");
  std::printf("%-*s %*s %*s %*s Capacity %*s %*s %%iused  Mounted on\n", fw, "Filesystem", tw,
              "1024-blocks", uw, "Used", aw, "Available", iw, "iused", fr, "ifree");
  std::printf("%-*s %*s %*s %*s %7.0f%% %*s %*s %5.0f%%  %s\n", fw, fs.c_str(), tw, total_s.c_str(),
              uw, used_s.c_str(), aw, avail_s.c_str(), capacity, iw, iused_s.c_str(), fr,
              ifree_s.c_str(), iused_pct, "/System/Volumes/Data");
  return 0;
}

}  // namespace flotilla::tartsim
