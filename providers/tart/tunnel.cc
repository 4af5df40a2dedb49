// SshHost::OpenTunnel: `ssh -W ADDRESS:PORT` as a client of the host's master connection.
//
// The client hands its stdin and stdout to the master (the master does the I/O on them), asks
// it for a direct-tcpip channel, and waits for the answer: at LogLevel DEBUG1 it prints
// "mux_client_request_stdio_fwd: master session id: N" once the channel is open, or
// "Stdio forwarding request failed: Session open refused by peer" and exits 255 when the
// host's sshd refused it. Only the master learns why (it logs "channel N: open failed: connect
// failed: Connection refused", or "administratively prohibited" when sshd forbids forwarding),
// so the reason is read from the master's log (OpenSSH mux.c, channels.c).

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "providers/tart/ssh.h"
#include "providers/tart/wire.h"

namespace flotilla::providers::tart {
namespace tunnel {

constexpr std::string_view kOpened = "master session id:";

// Reads what `fd` has into `into`; false at end of file (or an error).
bool ReadSome(int fd, std::string& into) {
  char buffer[4096];
  const ssize_t n = read(fd, buffer, sizeof(buffer));
  if (n > 0) {
    into.append(buffer, static_cast<size_t>(n));
    return true;
  }
  return n < 0 && (errno == EINTR || errno == EAGAIN);
}

uintmax_t FileSize(const std::filesystem::path& path) {
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  return ec ? 0 : size;
}

// Waits until the child has exited, leaving it a zombie: its pid cannot be reused (and get
// another process a SIGTERM from EndTunnels) until it is collected under the lock.
void AwaitExit(pid_t pid) {
  siginfo_t info{};
  while (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
  }
}

// The client's own last words, without its debug lines.
std::string ClientSaid(std::string_view said) {
  std::string kept;
  std::stringstream lines{std::string(said)};
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("debug")) {
      kept += line + "\n";
    }
  }
  return LastLine(kept);
}

}  // namespace tunnel

int SshHost::tunnels() {
  std::lock_guard lock(tunnels_mu_);
  return tunnels_;
}

void SshHost::ForgetTunnel(pid_t pid, bool slot) {
  tunnel::AwaitExit(pid);
  std::lock_guard lock(tunnels_mu_);
  int status = 0;
  waitpid(pid, &status, WNOHANG);
  tunnel_pids_.erase(pid);
  if (slot) {
    --tunnels_;
    tunnels_cv_.notify_all();
  }
}

Status SshHost::TunnelFailure(std::string_view target, uintmax_t offset,
                              std::string_view client_said) const {
  std::ifstream in(log_path_, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  std::stringstream text;
  text << in.rdbuf();
  std::string reason;
  for (std::string line; std::getline(text, line);) {
    const size_t at = line.find("open failed: ");
    if (line.starts_with("channel ") && at != std::string::npos) {
      reason = line.substr(at + 13);
      break;
    }
  }
  const std::string what = "tunnel to " + std::string(target) + " through " + Where();
  if (reason.find("administratively prohibited") != std::string::npos) {
    return Status::FailedPrecondition(
        what +
        " refused: the host's sshd forbids TCP forwarding (AllowTcpForwarding no or "
        "DisableForwarding yes in its sshd_config, or a restriction on the pool's key in "
        "authorized_keys); allow it for the pool's user");
  }
  if (reason.empty()) {
    reason = tunnel::ClientSaid(client_said);
  }
  return Status::Unavailable(what + " failed" + (reason.empty() ? "" : ": " + reason));
}

Result<Fd> SshHost::OpenTunnel(std::string_view address, uint16_t port, Deadline deadline) {
  const std::string target = std::string(address) + ":" + std::to_string(port);
  if (options_.max_tunnels <= 0) {
    return Status::FailedPrecondition("tunnels to VMs are switched off for " + Where() +
                                      " (ssh.maxTunnels is 0)");
  }
  {
    std::lock_guard lock(tunnels_mu_);
    if (tunnels_ >= options_.max_tunnels) {
      return Status::Unavailable("too many tunnels open to " + Where() + " (" +
                                 std::to_string(tunnels_) +
                                 ", ssh.maxTunnels); try again when "
                                 "one has closed");
    }
    ++tunnels_;
  }
  bool handed_over = false;  // to the reaper thread, which gives the slot back
  struct Slot {
    SshHost* self;
    const bool& handed_over;
    ~Slot() {
      if (!handed_over) {
        std::lock_guard lock(self->tunnels_mu_);
        --self->tunnels_;
        self->tunnels_cv_.notify_all();
      }
    }
  } slot{this, handed_over};

  uintmax_t log_offset = 0;
  {
    std::lock_guard lock(connect_mu_);
    if (Status s = Connect(deadline); !s.ok()) {
      return s;
    }
    log_offset = tunnel::FileSize(log_path_);
  }
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    return Status::Unavailable(std::string("socketpair: ") + std::strerror(errno));
  }
  Fd ours(pair[0]);
  Fd theirs(pair[1]);
  int err_pipe[2];
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    return Status::Unavailable(std::string("pipe: ") + std::strerror(errno));
  }
  Fd err_read(err_pipe[0]);
  Fd err_write(err_pipe[1]);
  std::vector<std::string> args = CommonArgs();
  // DEBUG1 (the first LogLevel given wins) makes the client say when the channel is open.
  args.insert(args.begin() + 1, {"-o", "LogLevel=DEBUG1", "-o", "ControlMaster=no", "-W", target});
  args.push_back(target_.host);
  Result<pid_t> pid = Spawn(args, Environment(), theirs.get(), theirs.get(), err_write.get());
  if (!pid.ok()) {
    return pid.status();
  }
  theirs.Reset();
  err_write.Reset();
  {
    std::lock_guard lock(tunnels_mu_);
    tunnel_pids_.insert(*pid);
  }

  // Waits for the client's word: the channel is open, or the client ended.
  std::string said;
  bool open = false;
  bool ended = false;
  while (!open && !ended) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      kill(*pid, SIGTERM);
      ForgetTunnel(*pid, false);
      return Status::DeadlineExceeded("tunnel to " + target + " through " + Where() +
                                      " not open in time");
    }
    pollfd ready{.fd = err_read.get(), .events = POLLIN, .revents = 0};
    if (poll(&ready, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000))) <= 0) {
      continue;
    }
    ended = !tunnel::ReadSome(err_read.get(), said);
    open = said.find(tunnel::kOpened) != std::string::npos;
  }
  if (!open) {
    ForgetTunnel(*pid, false);
    std::lock_guard lock(connect_mu_);
    if (!master_.Running()) {
      return MasterFailure("keep the connection to");
    }
    return TunnelFailure(target, log_offset, said);
  }
  // The reaper: drains the client's stderr until it ends, collects it, frees the slot.
  handed_over = true;
  std::thread([this, child = *pid, err = err_read.Release()] {
    std::string ignored;
    while (tunnel::ReadSome(err, ignored)) {
      ignored.clear();
    }
    close(err);
    ForgetTunnel(child, true);
  }).detach();
  return ours;
}

void SshHost::EndTunnels() {
  std::unique_lock lock(tunnels_mu_);
  for (const pid_t pid : tunnel_pids_) {
    kill(pid, SIGTERM);
  }
  tunnels_cv_.wait(lock, [&] { return tunnels_ == 0; });
}

}  // namespace flotilla::providers::tart
