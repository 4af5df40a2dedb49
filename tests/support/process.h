#pragma once

// Child processes and scratch folders for tests and benchmarks that run real programs.

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/wait_until.h"

extern char** environ;

namespace flotilla::testing {

namespace fs = std::filesystem;

// The fields of a /proc stat file ("/proc/PID/stat", "/proc/self/task/TID/stat") after the
// process's name, which may hold spaces and parentheses: element 0 is proc(5)'s field 3 (the
// state), so field N is element N - 3 (4 the parent, 14 and 15 utime and stime, 19 the nice
// value, 20 the threads). Empty when the file is gone.
inline std::vector<std::string> ProcStatFields(const fs::path& stat) {
  std::ifstream in(stat);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t end_of_name = text.rfind(')');
  if (end_of_name == std::string::npos) {
    return {};
  }
  std::istringstream fields(text.substr(end_of_name + 1));
  return {std::istream_iterator<std::string>(fields), std::istream_iterator<std::string>()};
}

// `path` (or any shell word without a single quote) in single quotes, for a shell command line.
inline std::string Quote(const fs::path& path) { return "'" + path.string() + "'"; }

// The argv that runs `command` through /bin/sh with `exec`, so that the process is the program
// itself (its pid is the program's) with the command line's redirections.
inline std::vector<std::string> ShellArgv(const std::string& command) {
  return {"/bin/sh", "-c", "exec " + command};
}

// Starts argv (argv[0] a path) in a child that gets SIGTERM when the test ends, however it ends
// (PR_SET_PDEATHSIG): a test that crashes, or is killed at CTest's timeout, leaves no simulator,
// sshd or loop running behind it. The kernel sends that signal when the *thread* that started
// the child ends, so only children started from the main thread get it; a child a test starts
// from a thread of its own (a restarted sshd, say) would otherwise die with that thread.
// `stdin_fd`, `out_fd`, `err_fd` (-1: inherited) become its standard streams; `own_group` puts
// it in a process group of its own. Its pid, or -1.
inline pid_t StartChild(const std::vector<std::string>& argv, int stdin_fd, int out_fd, int err_fd,
                        bool own_group) {
  std::vector<char*> args;
  for (const std::string& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  // Like posix_spawn, return only once the child has exec'd (its close-on-exec end of this
  // pipe closes then): until then it still holds every descriptor of ours, locks included.
  int exec_pipe[2];
  if (pipe2(exec_pipe, O_CLOEXEC) != 0) {
    return -1;
  }
  const pid_t parent = getpid();
  const bool main_thread = gettid() == parent;
  const pid_t pid = fork();
  if (pid != 0) {
    close(exec_pipe[1]);
    char byte = 0;
    while (read(exec_pipe[0], &byte, 1) < 0 && errno == EINTR) {
    }
    close(exec_pipe[0]);
    return pid;  // -1 when the fork failed
  }
  // The child: async-signal-safe calls only until exec (other threads may hold locks).
  if (own_group) {
    setpgid(0, 0);
  }
  if (main_thread) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) {
      _exit(127);  // the parent ended before the request took effect
    }
  }
  for (const auto& [from, to] :
       {std::pair{stdin_fd, STDIN_FILENO}, std::pair{out_fd, STDOUT_FILENO},
        std::pair{err_fd, STDERR_FILENO}}) {
    if (from >= 0 && dup2(from, to) < 0) {
      _exit(127);
    }
  }
  execve(args[0], args.data(), environ);
  _exit(127);
}

// A child process (StartChild) in its own process group, with a pipe on its stdin; stopped
// (SIGTERM to the group, SIGKILL after 5 s) when destroyed.
class Process {
 public:
  explicit Process(const std::vector<std::string>& argv) {
    int fds[2];
    // Close-on-exec: no other child keeps this child's stdin open after the test ends.
    if (pipe2(fds, O_CLOEXEC) != 0) {
      return;
    }
    pid_ = StartChild(argv, fds[0], -1, -1, /*own_group=*/true);
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
  const int in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const int out_fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int err_fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  pid_t pid = -1;
  if (in_fd >= 0 && out_fd >= 0 && err_fd >= 0) {
    pid = StartChild(argv, in_fd, out_fd, err_fd, /*own_group=*/false);
  }
  for (const int fd : {in_fd, out_fd, err_fd}) {
    if (fd >= 0) {
      close(fd);
    }
  }
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
