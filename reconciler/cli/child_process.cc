#include "reconciler/cli/child_process.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "reconciler/model/text.h"

namespace flotilla::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// A simulator binds and writes its ready file in well under a second; this allows for a loaded
// machine and a sanitizer build.
constexpr auto kStartDeadline = std::chrono::seconds(60);
// Saving the simulated VMs and stopping the HTTP server takes well under a second.
constexpr auto kStopDeadline = std::chrono::seconds(30);
// ssh-keygen makes a key in milliseconds.
constexpr auto kRunDeadline = std::chrono::seconds(60);
constexpr auto kPoll = std::chrono::milliseconds(20);
// How many of the log's last lines an error quotes when the child has no message of its own.
constexpr size_t kQuotedLines = 3;

bool IsExecutable(const fs::path& file) {
  std::error_code ec;
  return fs::is_regular_file(file, ec) && access(file.c_str(), X_OK) == 0;
}

std::string Errno(int error) { return std::strerror(error); }  // NOLINT(concurrency-mt-unsafe)

// What the child said (in its log from `offset` on): its first line that starts with `prefix`
// (without the prefix) when `prefix` is set and it has one, else its last few lines joined with
// "; ". Empty when it said nothing.
std::string ChildMessage(const std::string& log_file, std::streamoff offset,
                         const std::string& prefix) {
  std::ifstream in(log_file);
  in.seekg(offset);
  std::deque<std::string> last;
  for (std::string line; std::getline(in, line);) {
    if (!prefix.empty() && line.starts_with(prefix)) {
      return line.substr(prefix.size());
    }
    if (!TrimAscii(line).empty()) {
      last.emplace_back(TrimAscii(line));
      if (last.size() > kQuotedLines) {
        last.pop_front();
      }
    }
  }
  std::string message;
  for (const std::string& line : last) {
    message += (message.empty() ? "" : "; ") + line;
  }
  return message;
}

// Collects `pid` if it has exited; its wait status through `status`. A child that cannot be
// waited for (someone set SIGCHLD to SIG_IGN, and the kernel collected it) has exited too.
bool Exited(pid_t pid, int* status) {
  const pid_t waited = waitpid(pid, status, WNOHANG);
  return waited == pid || (waited < 0 && errno == ECHILD);
}

// "it exited with code 3", "it was killed by signal 9".
std::string Describe(int status) {
  return WIFEXITED(status) ? "it exited with code " + std::to_string(WEXITSTATUS(status))
                           : "it was killed by signal " + std::to_string(WTERMSIG(status));
}

// The child's side of fork(): only async-signal-safe calls until exec, since other threads of
// the parent may have held locks (malloc's among them) at the moment of the fork.
[[noreturn]] void ExecChild(const char* binary, char* const* argv, pid_t parent, int null_fd,
                            int log_fd) {
  setpgid(0, 0);  // a terminal's Ctrl-C goes to flotilla, which stops the loop first
  // SIGTERM, on which the simulator saves its VMs, when flotilla's thread ends however it ends.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) {
    _exit(127);  // flotilla ended before the request took effect
  }
  if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(log_fd, STDOUT_FILENO) < 0 ||
      dup2(log_fd, STDERR_FILENO) < 0) {
    _exit(127);
  }
  close_range(3, ~0U, 0);  // nothing else of flotilla's leaks into the child
  // flotilla blocks SIGINT and SIGTERM for its loop's watcher; the mask survives exec.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction default_action = {};
  default_action.sa_handler = SIG_DFL;
  sigaction(SIGPIPE, &default_action, nullptr);
  execv(binary, argv);
  _exit(127);
}

// A started child: its pid and where this start's part of its log begins.
struct Forked {
  pid_t pid = -1;
  off_t log_offset = 0;
};

// Forks and execs `binary` with `args`, its output appended to `log_file`.
Result<Forked> Fork(const std::string& binary, const std::vector<std::string>& args,
                    const std::string& log_file) {
  // Everything the child needs is built before the fork: it may not allocate after it.
  std::vector<std::string> argv_text = args;
  argv_text.insert(argv_text.begin(), binary);
  std::vector<char*> argv;
  for (std::string& arg : argv_text) {
    argv.push_back(arg.data());
  }
  argv.push_back(nullptr);
  const int log_fd =
      open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, S_IRUSR | S_IWUSR);
  if (log_fd < 0) {
    return Status::Unavailable("cannot write " + log_file + ": " + Errno(errno));
  }
  const off_t log_offset = lseek(log_fd, 0, SEEK_END);
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) {
    close(log_fd);
    return Status::Unavailable("cannot open /dev/null: " + Errno(errno));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    ExecChild(argv[0], argv.data(), parent, null_fd, log_fd);
  }
  const int fork_error = errno;
  close(log_fd);
  close(null_fd);
  if (pid < 0) {
    return Status::Unavailable("cannot start " + binary + ": " + Errno(fork_error));
  }
  return Forked{.pid = pid, .log_offset = std::max<off_t>(log_offset, 0)};
}

}  // namespace

Result<std::string> FindCompanion(std::string_view name, std::string_view role,
                                  const std::string& self_dir, std::string_view path_env) {
  std::vector<std::string> looked;
  if (!self_dir.empty()) {
    const fs::path beside = fs::path(self_dir) / name;
    if (IsExecutable(beside)) {
      return beside.string();
    }
    looked.push_back(self_dir + " (beside flotilla)");
  }
  std::stringstream dirs{std::string(path_env)};
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) {
      continue;
    }
    const fs::path candidate = fs::path(dir) / name;
    if (IsExecutable(candidate)) {
      return candidate.string();
    }
    looked.push_back(dir);
  }
  std::string where;
  for (const std::string& dir : looked) {
    where += (where.empty() ? "" : ", ") + dir;
  }
  return Status::NotFound("cannot find " + std::string(name) + ", which " + std::string(role) +
                          "; looked in " +
                          (where.empty() ? std::string("no folder (PATH is empty)") : where) +
                          ". Install it beside flotilla or put its folder on PATH");
}

Result<std::unique_ptr<ChildProcess>> ChildProcess::Start(const ChildSpec& spec) {
  std::error_code ec;
  fs::remove(spec.ready_file, ec);  // a previous start's file is no sign of this one
  Result<Forked> forked = Fork(spec.binary, spec.args, spec.log_file);
  if (!forked.ok()) {
    return forked.status();
  }
  std::unique_ptr<ChildProcess> process(new ChildProcess(forked->pid, spec, forked->log_offset));
  if (Status s = process->AwaitReady(); !s.ok()) {
    return s;  // the destructor stops a child that is still running
  }
  return process;
}

Status ChildProcess::AwaitReady() {
  const auto deadline = Clock::now() + kStartDeadline;
  while (Clock::now() < deadline) {
    std::ifstream in(spec_.ready_file);
    int64_t value = 0;
    if (in >> value && value > 0) {
      ready_value_ = value;
      return Status::Ok();
    }
    int status = 0;
    if (Exited(pid_, &status)) {
      pid_ = -1;
      std::string message = ChildMessage(spec_.log_file, log_offset_, spec_.message_prefix);
      if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        message = "cannot run it";
      } else if (message.empty()) {
        message = Describe(status);
      }
      if (spec_.usage_exit_code >= 0 && WIFEXITED(status) &&
          WEXITSTATUS(status) == spec_.usage_exit_code) {
        return Status::InvalidArgument(message);
      }
      return Status::Unavailable(message + " (" + spec_.name + " log: " + spec_.log_file + ")");
    }
    std::this_thread::sleep_for(kPoll);
  }
  return Status::Unavailable(spec_.name + " did not get ready within " +
                             std::to_string(kStartDeadline.count()) + " s (log: " + spec_.log_file +
                             ")");
}

ChildProcess::~ChildProcess() {
  Terminate();
  Wait();
}

void ChildProcess::Terminate() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
  }
}

void ChildProcess::Wait() {
  if (pid_ <= 0) {
    return;
  }
  int status = 0;
  const auto deadline = Clock::now() + kStopDeadline;
  while (!Exited(pid_, &status)) {
    if (Clock::now() >= deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(kPoll);
  }
  pid_ = -1;
}

void StopAll(std::vector<std::unique_ptr<ChildProcess>>& children) {
  for (auto& child : children) {
    child->Terminate();
  }
  for (auto& child : children) {
    child->Wait();
  }
}

Status RunToCompletion(const std::string& binary, const std::vector<std::string>& args,
                       const std::string& log_file) {
  Result<Forked> forked = Fork(binary, args, log_file);
  if (!forked.ok()) {
    return forked.status();
  }
  const std::string program = fs::path(binary).filename().string();
  int status = 0;
  const auto deadline = Clock::now() + kRunDeadline;
  while (!Exited(forked->pid, &status)) {
    if (Clock::now() >= deadline) {
      kill(forked->pid, SIGKILL);
      waitpid(forked->pid, &status, 0);
      return Status::Unavailable(program + " did not finish within " +
                                 std::to_string(kRunDeadline.count()) + " s (log: " + log_file +
                                 ")");
    }
    std::this_thread::sleep_for(kPoll);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    return Status::Ok();
  }
  std::string message = ChildMessage(log_file, forked->log_offset, "");
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
    message = "cannot run it";
  }
  return Status::Unavailable(program + " failed (" + Describe(status) + ")" +
                             (message.empty() ? "" : ": " + message) + " (log: " + log_file + ")");
}

}  // namespace flotilla::cli
