#pragma once

// Child processes and scratch folders for tests and benchmarks that run real programs.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/wait_until.h"

extern char** environ;

namespace flotilla::testing {

namespace fs = std::filesystem;

// `path` (or any shell word without a single quote) in single quotes, for a shell command line.
inline std::string Quote(const fs::path& path) { return "'" + path.string() + "'"; }

// The argv that runs `command` through /bin/sh with `exec`, so that the process is the program
// itself (its pid is the program's) with the command line's redirections.
inline std::vector<std::string> ShellArgv(const std::string& command) {
  return {"/bin/sh", "-c", "exec " + command};
}

// A child process in its own process group, with a pipe on its stdin; stopped (SIGTERM to the
// group, SIGKILL after 5 s) when destroyed.
class Process {
 public:
  explicit Process(const std::vector<std::string>& argv) {
    int fds[2];
    if (pipe(fds) != 0) {
      return;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[0], STDIN_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[1]);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    std::vector<char*> args;
    for (const std::string& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &actions, &attr, args.data(), environ) != 0) {
      pid_ = -1;
    }
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    close(fds[0]);
    stdin_ = fds[1];
  }
  ~Process() { Stop(); }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  // Sends `sig` to the process itself (not its group).
  void Signal(int sig) const {
    if (pid_ > 0) {
      kill(pid_, sig);
    }
  }

  // Waits up to `limit` for the process to end. Its exit code, 128+N if signal N ended it, or
  // nullopt while it still runs. Once it has ended, answers the same again.
  std::optional<int> Wait(std::chrono::milliseconds limit) {
    if (pid_ <= 0) {
      return exit_code_;
    }
    int status = 0;
    if (!WaitUntil([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, limit)) {
      return std::nullopt;
    }
    pid_ = -1;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    Stop();  // closes stdin
    return exit_code_;
  }

  void Stop() {
    if (stdin_ >= 0) {
      close(stdin_);
      stdin_ = -1;
    }
    if (pid_ > 0) {
      kill(-pid_, SIGTERM);
      int status;
      if (!WaitUntil([&] { return waitpid(pid_, &status, WNOHANG) == pid_; },
                     std::chrono::seconds(5))) {
        kill(-pid_, SIGKILL);
        waitpid(pid_, &status, 0);
      }
      pid_ = -1;
    }
  }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  std::optional<int> exit_code_;
};

// Runs `command` through the shell and waits; its exit code, or -1 if it did not exit.
inline int RunShell(const std::string& command) {
  const int status = std::system(command.c_str());  // NOLINT(concurrency-mt-unsafe)
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Starts argv (argv[0] a path) with stdin from /dev/null and stdout and stderr to the files
// `out` and `err`; its pid, or -1. The caller reaps it (waitpid).
inline pid_t SpawnLogged(const std::vector<std::string>& argv, const fs::path& out,
                         const fs::path& err) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (const std::string& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ) != 0) {
    pid = -1;
  }
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

// The resident set size of a running process in KiB (VmRSS), or -1 if unreadable.
inline long RssKiB(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stol(line.substr(6));
    }
  }
  return -1;
}

// A scratch folder per test, removed afterwards.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (fs::temp_directory_path() / "flotilla-it-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

}  // namespace flotilla::testing
