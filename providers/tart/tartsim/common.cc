// Helpers shared by the subcommands (commands.h).

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "providers/tart/tartsim/commands.h"
#include "providers/tart/tartsim/fs_util.h"

namespace flotilla::tartsim {

std::unique_ptr<std::mt19937> Context::Shuffler() const {
  if (!config.shuffle_seed) {
    return nullptr;
  }
  return std::make_unique<std::mt19937>(*config.shuffle_seed);
}

bool Context::ci_logger() const { return std::getenv("CI") != nullptr; }

bool SleepUnlessInterrupted(int64_t ms) {
  sigset_t interrupt;
  sigemptyset(&interrupt);
  sigaddset(&interrupt, SIGINT);
  struct timespec deadline {};
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += ms / 1000;
  deadline.tv_nsec += (ms % 1000) * 1000000;
  if (deadline.tv_nsec >= 1000000000) {
    deadline.tv_sec += 1;
    deadline.tv_nsec -= 1000000000;
  }
  for (;;) {
    struct timespec now {};
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t left_ns =
        (deadline.tv_sec - now.tv_sec) * 1000000000 + (deadline.tv_nsec - now.tv_nsec);
    if (left_ns <= 0) {
      // A SIGINT that arrived at the very end still counts.
      struct timespec zero {};
      return sigtimedwait(&interrupt, nullptr, &zero) == SIGINT;
    }
    struct timespec wait {};
    wait.tv_sec = left_ns / 1000000000;
    wait.tv_nsec = left_ns % 1000000000;
    if (sigtimedwait(&interrupt, nullptr, &wait) == SIGINT) {
      return true;
    }
  }
}

void SleepMs(int64_t ms) {
  if (ms <= 0) {
    return;
  }
  struct timespec wait {};
  wait.tv_sec = ms / 1000;
  wait.tv_nsec = (ms % 1000) * 1000000;
  while (nanosleep(&wait, &wait) != 0 && errno == EINTR) {
  }
}

void StartCommand(const Context& ctx, bool collect_garbage) {
  ctx.home.Prepare();
  if (collect_garbage) {
    CollectTmpGarbage(ctx.home);
  }
}

VmDir OpenLocalVm(const Context& ctx, const std::string& name) {
  std::optional<VmDir> dir = LocalVmDir(ctx.home, name);
  if (!dir || !IsDirectory(dir->base())) {
    ThrowDoesNotExist(ctx.version(), name);
  }
  if (!dir->Initialized()) {
    ThrowRuntimeError(ctx.version(), RuntimeKind::kOther,
                      "VM is missing some of its files (config.json, disk.img or nvram.bin)");
  }
  dir->UpdateAccessDate();
  return *dir;
}

std::string HumanBytes(int64_t bytes) {
  if (bytes == 0) {
    return "Zero KB";
  }
  static const char* kUnits[] = {"bytes", "KB", "MB", "GB", "TB", "PB"};
  static const int kDecimals[] = {0, 0, 1, 2, 2, 2};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (std::fabs(value) >= 1000 && unit < 5) {
    value /= 1000;
    ++unit;
  }
  if (unit == 0) {
    return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", kDecimals[unit], value);
  std::string text = buf;
  if (text.find('.') != std::string::npos) {
    while (text.back() == '0') {
      text.pop_back();
    }
    if (text.back() == '.') {
      text.pop_back();
    }
  }
  return text + " " + kUnits[unit];
}

std::string GuestBinDir(const Context& ctx) {
  std::string dir = ctx.home.guest_bin();
  MakeDirs(dir);
  const std::string self = SelfExecutable();
  for (const char* tool : {"sudo", "shutdown"}) {
    const std::string link = dir + "/" + tool;
    char buf[4096];
    const ssize_t n = readlink(link.c_str(), buf, sizeof(buf) - 1);
    if (n > 0 && std::string(buf, static_cast<size_t>(n)) == self) {
      continue;
    }
    const std::string tmp = link + ".tmp-" + std::to_string(getpid());
    unlink(tmp.c_str());
    if (symlink(self.c_str(), tmp.c_str()) != 0 || rename(tmp.c_str(), link.c_str()) != 0) {
      throw FsError("cannot create " + link + ": " + ErrnoText(errno), errno);
    }
  }
  return dir;
}

}  // namespace flotilla::tartsim
