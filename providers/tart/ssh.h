#pragma once

// The SSH transport of provider tart: commands on a Mac, through the OpenSSH client.
//
// One connection per host, made once and reused by every command: a master `ssh -M -N` process
// that Flotilla owns (started on first use, started again after it dies), and one short `ssh`
// client per command that rides on it through its control socket (a channel, not a handshake).
// Host keys are checked strictly against the pool's known_hosts file (or, when the pool says
// so, not at all); only the pool's key is offered; keepalives notice a dead peer. See
// docs/providers.md ("tart: the SSH transport") for why the OpenSSH client and not libssh2.

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

#include "providers/provider.h"
#include "providers/tart/process.h"
#include "reconciler/model/fd.h"
#include "reconciler/model/result.h"

namespace flotilla::providers::tart {

// What one remote command answered.
struct RemoteResult {
  int exit_code = 0;
  std::string out;
  std::string err;
};

// Runs commands on one host. Thread-safe.
class RemoteShell {
 public:
  virtual ~RemoteShell() = default;
  // Runs `command` (one command line for the remote user's login shell; the caller quotes)
  // with `input` on its stdin. A command that ran answers OK with its exit status. Errors:
  // Unavailable (cannot connect, or the connection was lost), PermissionDenied (the host key or
  // the user key was refused), DeadlineExceeded, Cancelled (`cancelled` returned true). After
  // an error the command may have run, in part or whole, and may still be running.
  virtual Result<RemoteResult> Run(std::string_view command, std::string_view input,
                                   Deadline deadline,
                                   const std::function<bool()>& cancelled = {}) = 0;
  // A byte stream to `address`:`port` as the host reaches it (SshHost::OpenTunnel).
  virtual Result<Fd> OpenTunnel(std::string_view /*address*/, uint16_t /*port*/,
                                Deadline /*deadline*/) {
    return Status::Unimplemented("this transport cannot open tunnels");
  }
};

// `text` as one word for a POSIX shell: single-quoted, with every ' written as '\''.
std::string ShellQuote(std::string_view text);

struct SshTarget {
  std::string user;
  std::string host;
  int port = 22;
};

struct SshOptions {
  std::string ssh_binary = "/usr/bin/ssh";
  std::filesystem::path identity_file;     // the private key (mode 0600)
  std::filesystem::path known_hosts_file;  // unused when insecure_ignore_host_key
  bool insecure_ignore_host_key = false;
  // A program that prints the key's passphrase (ssh's SSH_ASKPASS); empty when the key has
  // none.
  std::filesystem::path askpass;
  std::chrono::milliseconds connect_timeout{std::chrono::seconds{10}};
  std::chrono::seconds keepalive_interval{10};
  int keepalive_count = 3;
  int max_sessions = 4;  // commands at once on the connection (sshd's MaxSessions is 10)
  int max_tunnels = 8;   // tunnels (OpenTunnel) open at once; 0: none
};

class SshHost final : public RemoteShell {
 public:
  // `state_dir` is private to this process (mode 0700): the control socket and the master's
  // log live there under names derived from `id`.
  SshHost(SshTarget target, SshOptions options, const std::filesystem::path& state_dir,
          const std::string& id);
  ~SshHost() override;  // ends the connection

  Result<RemoteResult> Run(std::string_view command, std::string_view input, Deadline deadline,
                           const std::function<bool()>& cancelled = {}) override;

  // A byte stream to `address`:`port` as the host reaches it (a guest's address on the host's
  // VM network): `ssh -W` over the connection, which opens a direct-tcpip channel from the
  // host's sshd to the address. The client runs with its stdin and stdout on one end of a
  // socketpair; the other end is returned once the channel is open (the client says so), and
  // the client is collected by a thread of its own when the stream ends (either side closes,
  // or the connection drops). At most `max_tunnels` at once. Errors: Unavailable (too many
  // tunnels, no connection, the address refused or could not be reached), FailedPrecondition
  // (the host's sshd forbids TCP forwarding; `max_tunnels` is 0), DeadlineExceeded.
  Result<Fd> OpenTunnel(std::string_view address, uint16_t port, Deadline deadline) override;
  // Tunnels open now (their clients not yet collected).
  int tunnels();

  // Connections made so far (1 while the first one lives), for tests and benchmarks.
  int connections() const;

 private:
  // Makes sure the master runs; under connect_mu_.
  Status Connect(Deadline deadline);
  std::vector<std::string> CommonArgs() const;
  std::vector<std::string> Environment() const;
  std::string Where() const;  // "user@host:port" for messages
  // Why the master ended, from its log: PermissionDenied or Unavailable.
  Status MasterFailure(std::string_view during) const;

  const SshTarget target_;
  const SshOptions options_;
  const std::filesystem::path control_path_;
  const std::filesystem::path log_path_;
  const std::filesystem::path home_;

  mutable std::mutex connect_mu_;  // serialises Connect
  Child master_;                   // guarded by connect_mu_
  int connections_ = 0;            // guarded by connect_mu_

  // tunnel.cc: why the channel of a tunnel whose client failed was refused, from the master's
  // log past `offset` (Unavailable or FailedPrecondition).
  // `client_said` is the client's stderr, for when the master's log says nothing.
  Status TunnelFailure(std::string_view target, uintmax_t offset,
                       std::string_view client_said) const;
  // Collects a tunnel's client once it has exited and forgets it; frees its slot with `slot`.
  void ForgetTunnel(pid_t pid, bool slot);
  void EndTunnels();  // for the destructor: ends every tunnel's client and waits for its thread

  std::mutex tunnels_mu_;
  std::condition_variable tunnels_cv_;
  int tunnels_ = 0;              // slots taken (opening or open); guarded by tunnels_mu_
  std::set<pid_t> tunnel_pids_;  // clients not yet collected; guarded by tunnels_mu_

  std::mutex slots_mu_;
  std::condition_variable slots_cv_;
  int in_use_ = 0;  // guarded by slots_mu_
};

}  // namespace flotilla::providers::tart
