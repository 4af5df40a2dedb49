#include "reconciler/cli/dev_simulators.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "reconciler/model/text.h"

namespace flotilla::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// A simulator binds and writes its port in well under a second; this allows for a loaded
// machine and a sanitizer build.
constexpr auto kStartDeadline = std::chrono::seconds(60);
// Saving the simulated VMs and stopping the HTTP server takes well under a second.
constexpr auto kStopDeadline = std::chrono::seconds(30);
constexpr auto kPoll = std::chrono::milliseconds(20);

bool IsExecutable(const fs::path& file) {
  std::error_code ec;
  return fs::is_regular_file(file, ec) && access(file.c_str(), X_OK) == 0;
}

std::string Errno(int error) { return std::strerror(error); }  // NOLINT(concurrency-mt-unsafe)

// What the child said before it ended (in its log from `offset` on): its first
// "flotilla-hostsim: ..." line (without the prefix), else its last line. Empty when it said
// nothing.
std::string ChildMessage(const std::string& log_file, std::streamoff offset) {
  std::ifstream in(log_file);
  in.seekg(offset);
  const std::string prefix = std::string(kHostSimBinary) + ": ";
  std::string last;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(prefix)) {
      return line.substr(prefix.size());
    }
    if (!TrimAscii(line).empty()) {
      last = line;
    }
  }
  return last;
}

// Collects `pid` if it has exited; its wait status through `status`. A child that cannot be
// waited for (someone set SIGCHLD to SIG_IGN, and the kernel collected it) has exited too.
bool Exited(pid_t pid, int* status) {
  const pid_t waited = waitpid(pid, status, WNOHANG);
  return waited == pid || (waited < 0 && errno == ECHILD);
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
  close_range(3, ~0U, 0);  // nothing else of flotilla's leaks into the simulator
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

}  // namespace

Result<std::string> FindHostSim(const std::string& self_dir, std::string_view path_env) {
  std::vector<std::string> looked;
  if (!self_dir.empty()) {
    const fs::path beside = fs::path(self_dir) / kHostSimBinary;
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
    const fs::path candidate = fs::path(dir) / kHostSimBinary;
    if (IsExecutable(candidate)) {
      return candidate.string();
    }
    looked.push_back(dir);
  }
  std::string where;
  for (const std::string& dir : looked) {
    where += (where.empty() ? "" : ", ") + dir;
  }
  return Status::NotFound("cannot find " + std::string(kHostSimBinary) +
                          ", which runs the simulated hosts of 'flotilla dev'; looked in " +
                          (where.empty() ? std::string("no folder (PATH is empty)") : where) +
                          ". Install it beside flotilla or put its folder on PATH");
}

std::vector<std::string> SimulatorArguments(const SimulatorSpec& spec) {
  std::ostringstream jitter;
  jitter << spec.jitter;
  std::vector<std::string> args = {
      "--listen",       "127.0.0.1:" + std::to_string(spec.port),
      "--port-file",    spec.port_file,
      "--hosts",        std::to_string(spec.hosts),
      "--arch",         spec.arch,
      "--cpu",          std::to_string(spec.cpu),
      "--memory",       std::to_string(spec.memory_mib) + "Mi",
      "--disk",         std::to_string(spec.disk_mib) + "Mi",
      "--jitter",       jitter.str(),
      "--lookup-delay", spec.lookup_delay,
      "--api-key-file", spec.api_key_file,
      "--state-file",   spec.state_file,
      "--guest-boot",   spec.guest_boot,
      "--guest-exec",   spec.guest_exec,
  };
  if (!spec.latency.empty()) {
    args.insert(args.end(), {"--latency", spec.latency});
  }
  return args;
}

Result<std::unique_ptr<SimulatorProcess>> SimulatorProcess::Start(const std::string& binary,
                                                                  const SimulatorSpec& spec) {
  // Everything the child needs is built before the fork: it may not allocate after it.
  std::vector<std::string> args = SimulatorArguments(spec);
  args.insert(args.begin(), binary);
  std::vector<char*> argv;
  for (std::string& arg : args) {
    argv.push_back(arg.data());
  }
  argv.push_back(nullptr);

  std::error_code ec;
  fs::remove(spec.port_file, ec);  // a previous start's port is no sign of this one
  // Appended to, not truncated: a second start on a folder in use must not wipe the log of the
  // simulator that holds the port.
  const int log_fd =
      open(spec.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, S_IRUSR | S_IWUSR);
  if (log_fd < 0) {
    return Status::Unavailable("cannot write " + spec.log_file + ": " + Errno(errno));
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
  std::unique_ptr<SimulatorProcess> process(
      new SimulatorProcess(pid, spec.log_file, std::max<off_t>(log_offset, 0)));
  if (Status s = process->AwaitPort(spec); !s.ok()) {
    return s;  // the destructor stops a child that is still running
  }
  return process;
}

Status SimulatorProcess::AwaitPort(const SimulatorSpec& spec) {
  const auto deadline = Clock::now() + kStartDeadline;
  while (Clock::now() < deadline) {
    std::ifstream in(spec.port_file);
    int port = 0;
    if (in >> port && port > 0) {
      port_ = port;
      return Status::Ok();
    }
    int status = 0;
    if (Exited(pid_, &status)) {
      pid_ = -1;
      std::string message = ChildMessage(log_file_, log_offset_);
      if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        message = "cannot run it";
      } else if (message.empty()) {
        message = WIFEXITED(status) ? "it exited with code " + std::to_string(WEXITSTATUS(status))
                                    : "it was killed by signal " + std::to_string(WTERMSIG(status));
      }
      // Exit code 2: its flags were rejected (ParseCommandLine), as `flotilla dev` passed them.
      if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
        return Status::InvalidArgument(message);
      }
      return Status::Unavailable(message + " (" + std::string(kHostSimBinary) +
                                 " log: " + log_file_ + ")");
    }
    std::this_thread::sleep_for(kPoll);
  }
  return Status::Unavailable(std::string(kHostSimBinary) + " did not report its port within " +
                             std::to_string(kStartDeadline.count()) + " s (log: " + log_file_ +
                             ")");
}

SimulatorProcess::~SimulatorProcess() {
  Terminate();
  Wait();
}

std::string SimulatorProcess::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port_);
}

void SimulatorProcess::Terminate() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
  }
}

void SimulatorProcess::Wait() {
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

SimulatedFleet SimulatedExamples(const std::map<std::string, std::string>& examples,
                                 const Desired& fleet, std::string_view prefix) {
  SimulatedFleet out{.files = examples};
  const auto drop = [&](const ObjectMeta& meta, std::string what) {
    const std::string_view file(meta.origin.file);
    if (file.starts_with(prefix)) {
      out.files.erase(std::string(file.substr(prefix.size())));
    }
    out.left_out.push_back(std::move(what));
  };
  std::vector<std::string> other_pools;
  for (const HostPool& pool : fleet.pools) {
    if (pool.provider != kSimulatedProvider) {
      other_pools.push_back(pool.meta.name);
      drop(pool.meta, "pool " + pool.meta.name + " (provider " + pool.provider + ")");
    }
  }
  for (const VMSet& set : fleet.sets) {
    if (std::find(other_pools.begin(), other_pools.end(), set.pool) != other_pools.end()) {
      drop(set.meta, "VM set " + set.meta.name);
    }
  }
  return out;
}

void StopAll(std::vector<std::unique_ptr<SimulatorProcess>>& simulators) {
  for (auto& simulator : simulators) {
    simulator->Terminate();
  }
  for (auto& simulator : simulators) {
    simulator->Wait();
  }
}

}  // namespace flotilla::cli
