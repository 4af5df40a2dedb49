#include "providers/tart/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>

#include "reconciler/model/fd.h"

namespace flotilla::providers::tart {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// argv/envp in the form execve wants, built before fork (no allocation in the child).
class CStrings {
 public:
  explicit CStrings(const std::vector<std::string>& strings) {
    pointers_.reserve(strings.size() + 1);
    for (const std::string& s : strings) {
      pointers_.push_back(const_cast<char*>(s.c_str()));
    }
    pointers_.push_back(nullptr);
  }
  char* const* data() const { return pointers_.data(); }

 private:
  std::vector<char*> pointers_;
};

// The child's side of fork(): only async-signal-safe calls until exec, since other threads of
// the parent may hold locks (malloc's among them) at the moment of the fork.
[[noreturn]] void ExecChild(char* const* argv, char* const* envp, pid_t parent, int in_fd,
                            int out_fd, int err_fd) {
  setsid();
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) {
    _exit(127);
  }
  if (dup2(in_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
      dup2(err_fd, STDERR_FILENO) < 0) {
    _exit(127);
  }
  close_range(3, ~0U, 0);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction default_action = {};
  default_action.sa_handler = SIG_DFL;
  sigaction(SIGPIPE, &default_action, nullptr);
  execve(argv[0], argv, envp);
  _exit(127);
}

}  // namespace

Result<pid_t> Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                    int in_fd, int out_fd, int err_fd) {
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/') {
    return Status::InvalidArgument("a child process needs an absolute path");
  }
  const CStrings args(argv);
  const CStrings envp(env);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    return Status::Unavailable(std::string("cannot start ") + argv[0] + ": " +
                               std::strerror(errno));
  }
  if (pid == 0) {
    ExecChild(args.data(), envp.data(), parent, in_fd, out_fd, err_fd);
  }
  return pid;
}

namespace {

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Reads what is there; false at end of file (or an error).
bool Drain(int fd, std::string& into, size_t max) {
  char buffer[16384];
  for (;;) {
    const ssize_t n = read(fd, buffer, sizeof buffer);
    if (n > 0) {
      const size_t keep = into.size() < max ? std::min(max - into.size(), size_t(n)) : 0;
      into.append(buffer, keep);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      return true;
    }
    return false;
  }
}

}  // namespace

Result<ProcessOutput> RunProcess(const std::vector<std::string>& argv,
                                 const std::vector<std::string>& env, std::string_view input,
                                 Deadline deadline, const std::function<bool()>& stop,
                                 size_t max_output) {
  // stdin is a socket, so that writing to a child that has gone never raises SIGPIPE
  // (MSG_NOSIGNAL); stdout and stderr are pipes.
  int in_pair[2];
  int out_pipe[2];
  int err_pipe[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in_pair) != 0) {
    return Status::Unavailable(std::string("socketpair: ") + std::strerror(errno));
  }
  Fd in_parent(in_pair[0]);
  Fd in_child(in_pair[1]);
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    return Status::Unavailable(std::string("pipe: ") + std::strerror(errno));
  }
  Fd out_parent(out_pipe[0]);
  Fd out_child(out_pipe[1]);
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    return Status::Unavailable(std::string("pipe: ") + std::strerror(errno));
  }
  Fd err_parent(err_pipe[0]);
  Fd err_child(err_pipe[1]);
  Result<pid_t> pid = Spawn(argv, env, in_child.get(), out_child.get(), err_child.get());
  if (!pid.ok()) {
    return pid.status();
  }
  in_child.Reset();
  out_child.Reset();
  err_child.Reset();
  SetNonBlocking(in_parent.get());
  SetNonBlocking(out_parent.get());
  SetNonBlocking(err_parent.get());

  ProcessOutput result;
  size_t written = 0;
  bool out_open = true;
  bool err_open = true;
  if (input.empty()) {
    shutdown(in_parent.get(), SHUT_WR);
  }
  std::optional<steady_clock::time_point> kill_at;  // set once SIGTERM was sent
  int status = 0;
  bool exited = false;
  // After the child exits, its outputs are read to their end, or for half a second when
  // something it started still holds them open.
  std::optional<steady_clock::time_point> drain_until;
  while (!exited || ((out_open || err_open) && steady_clock::now() < *drain_until)) {
    if (!result.stopped && (steady_clock::now() >= deadline || (stop && stop()))) {
      result.stopped = true;
      kill(*pid, SIGTERM);
      kill_at = steady_clock::now() + std::chrono::seconds{2};
    }
    if (kill_at && steady_clock::now() >= *kill_at) {
      kill(*pid, SIGKILL);
      kill_at.reset();
    }
    pollfd fds[3];
    nfds_t n = 0;
    const bool want_write = written < input.size();
    if (want_write) {
      fds[n++] = {in_parent.get(), POLLOUT, 0};
    }
    if (out_open) {
      fds[n++] = {out_parent.get(), POLLIN, 0};
    }
    if (err_open) {
      fds[n++] = {err_parent.get(), POLLIN, 0};
    }
    if (n > 0) {
      poll(fds, n, 50);
    } else {
      std::this_thread::sleep_for(milliseconds{20});
    }
    if (want_write) {
      const ssize_t sent = send(in_parent.get(), input.data() + written, input.size() - written,
                                MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent > 0) {
        written += size_t(sent);
        if (written == input.size()) {
          shutdown(in_parent.get(), SHUT_WR);
        }
      } else if (sent < 0 && errno != EAGAIN && errno != EINTR) {
        written = input.size();  // the child does not read its input (any more)
      }
    }
    if (out_open) {
      out_open = Drain(out_parent.get(), result.out, max_output);
    }
    if (err_open) {
      err_open = Drain(err_parent.get(), result.err, max_output);
    }
    if (!exited) {
      const pid_t waited = waitpid(*pid, &status, WNOHANG);
      exited = waited == *pid || (waited < 0 && errno == ECHILD);
      if (exited) {
        drain_until = steady_clock::now() + milliseconds{500};
      }
    }
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  return result;
}

Child::~Child() { Stop(); }

Status Child::Start(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                    const std::filesystem::path& log) {
  Stop();
  Fd null_fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
  Fd log_fd(open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (null_fd.get() < 0 || log_fd.get() < 0) {
    return Status::Unavailable("cannot open " + log.string() + ": " + std::strerror(errno));
  }
  Result<pid_t> pid = Spawn(argv, env, null_fd.get(), log_fd.get(), log_fd.get());
  if (!pid.ok()) {
    return pid.status();
  }
  pid_ = *pid;
  return Status::Ok();
}

bool Child::Running() {
  if (pid_ < 0) {
    return false;
  }
  int status = 0;
  const pid_t waited = waitpid(pid_, &status, WNOHANG);
  if (waited == pid_ || (waited < 0 && errno == ECHILD)) {
    pid_ = -1;
    return false;
  }
  return true;
}

void Child::Stop(std::chrono::milliseconds grace) {
  if (!Running()) {
    return;
  }
  kill(pid_, SIGTERM);
  const auto give_up = steady_clock::now() + grace;
  while (Running() && steady_clock::now() < give_up) {
    std::this_thread::sleep_for(milliseconds{10});
  }
  if (Running()) {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
}

}  // namespace flotilla::providers::tart
