#include "providers/tart/ssh.h"

#include <fstream>
#include <sstream>
#include <thread>

#include "providers/tart/wire.h"
#include "reconciler/model/text.h"

namespace flotilla::providers::tart {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

std::string ReadTail(const std::filesystem::path& path, size_t max) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  std::string all = text.str();
  return all.size() > max ? all.substr(all.size() - max) : all;
}

bool Mentions(std::string_view text, std::string_view what) {
  return text.find(what) != std::string_view::npos;
}

}  // namespace

std::string ShellQuote(std::string_view text) {
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  quoted += "'";
  return quoted;
}

SshHost::SshHost(SshTarget target, SshOptions options, const std::filesystem::path& state_dir,
                 const std::string& id)
    : target_(std::move(target)),
      options_(std::move(options)),
      control_path_(state_dir / (id + ".sock")),
      log_path_(state_dir / (id + ".log")),
      home_(state_dir) {}

SshHost::~SshHost() {
  EndTunnels();
  std::lock_guard lock(connect_mu_);
  master_.Stop();
  std::error_code ec;
  std::filesystem::remove(control_path_, ec);
}

int SshHost::connections() const {
  std::lock_guard lock(connect_mu_);
  return connections_;
}

std::string SshHost::Where() const {
  return target_.user + "@" + target_.host + ":" + std::to_string(target_.port);
}

std::vector<std::string> SshHost::CommonArgs() const {
  std::vector<std::string> args = {
      options_.ssh_binary,
      "-F",
      "/dev/null",  // no user or system configuration: every option is here
      "-S",
      control_path_.string(),
      "-o",
      "IdentitiesOnly=yes",
      "-o",
      "IdentityAgent=none",
      "-i",
      options_.identity_file.string(),
      "-o",
      "PreferredAuthentications=publickey",
      "-o",
      "PasswordAuthentication=no",
      "-o",
      "KbdInteractiveAuthentication=no",
      "-o",
      "GlobalKnownHostsFile=/dev/null",
      "-o",
      "UpdateHostKeys=no",
      "-o",
      "ConnectTimeout=" +
          std::to_string(std::max<int64_t>(
              1,
              std::chrono::duration_cast<std::chrono::seconds>(options_.connect_timeout).count())),
      "-o",
      "ServerAliveInterval=" + std::to_string(options_.keepalive_interval.count()),
      "-o",
      "ServerAliveCountMax=" + std::to_string(options_.keepalive_count),
      "-o",
      "LogLevel=ERROR",
      "-p",
      std::to_string(target_.port),
      "-l",
      target_.user,
  };
  if (options_.insecure_ignore_host_key) {
    args.insert(args.end(),
                {"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"});
  } else {
    args.insert(args.end(), {"-o", "StrictHostKeyChecking=yes", "-o",
                             "UserKnownHostsFile=" + options_.known_hosts_file.string()});
  }
  // A key with a passphrase needs the askpass program, which BatchMode would bar; nothing
  // else can prompt (password and keyboard-interactive authentication are off, host keys are
  // never asked about).
  args.insert(args.end(), {"-o", options_.askpass.empty() ? "BatchMode=yes" : "BatchMode=no"});
  return args;
}

std::vector<std::string> SshHost::Environment() const {
  std::vector<std::string> env = {"PATH=/usr/bin:/bin", "HOME=" + home_.string(), "LC_ALL=C"};
  if (!options_.askpass.empty()) {
    env.push_back("SSH_ASKPASS=" + options_.askpass.string());
    env.push_back("SSH_ASKPASS_REQUIRE=force");
    env.push_back("DISPLAY=none");
  }
  return env;
}

Status SshHost::MasterFailure(std::string_view during) const {
  const std::string log = ReadTail(log_path_, 4096);
  std::string own;  // the log without the lines about tunnels' channels (TunnelFailure's)
  std::stringstream lines(log);
  for (std::string l; std::getline(lines, l);) {
    if (!l.starts_with("channel ")) {
      own += l + "\n";
    }
  }
  const std::string line = LastLine(own);
  if (Mentions(log, "Host key verification failed") ||
      Mentions(log, "REMOTE HOST IDENTIFICATION HAS CHANGED") ||
      Mentions(log, "host key is known for") || Mentions(log, "No ED25519 host key") ||
      Mentions(log, "No ECDSA host key") || Mentions(log, "No RSA host key")) {
    const bool changed = Mentions(log, "HAS CHANGED");
    return Status::PermissionDenied(
        "SSH host key of " + Where() + " refused: " +
        (changed ? "it differs from the one in the pool's known_hosts file (the host was "
                   "reinstalled, or someone is in between); check it and update the file"
                 : "it is not in the pool's known_hosts file; add it (ssh-keyscan -p " +
                       std::to_string(target_.port) + " " + target_.host +
                       ", then compare the fingerprint with the host's own)"));
  }
  if (Mentions(log, "Permission denied") || Mentions(log, "Too many authentication failures")) {
    return Status::PermissionDenied("SSH login as " + target_.user + " on " + Where() +
                                    " refused: the host does not accept the pool's key (check "
                                    "the user's authorized_keys and the key in credentialsRef)");
  }
  if (Mentions(log, "incorrect passphrase") || Mentions(log, "bad passphrase") ||
      Mentions(log, "Load key")) {
    return Status::PermissionDenied("SSH key of the pool cannot be used: " + line);
  }
  return Status::Unavailable("cannot " + std::string(during) + " " + Where() +
                             (line.empty() ? "" : ": " + line));
}

Status SshHost::Connect(Deadline deadline) {
  if (master_.Running() && std::filesystem::exists(control_path_)) {
    return Status::Ok();
  }
  master_.Stop();
  std::error_code ec;
  std::filesystem::remove(control_path_, ec);
  std::filesystem::remove(log_path_, ec);
  std::vector<std::string> args = CommonArgs();
  // At INFO the master logs why a tunnel's channel was refused ("channel 3: open failed:
  // connect failed: Connection refused"), which its clients are not told (TunnelFailure).
  args.insert(args.begin() + 1, {"-M", "-N", "-o", "ControlPersist=no", "-o", "LogLevel=INFO"});
  args.push_back(target_.host);
  if (Status s = master_.Start(args, Environment(), log_path_); !s.ok()) {
    return s;
  }
  ++connections_;
  const auto give_up =
      std::min(deadline, steady_clock::now() + options_.connect_timeout + std::chrono::seconds{1});
  while (steady_clock::now() < give_up) {
    if (!master_.Running()) {
      return MasterFailure("connect to");
    }
    if (std::filesystem::exists(control_path_)) {
      return Status::Ok();
    }
    std::this_thread::sleep_for(milliseconds{10});
  }
  master_.Stop();
  const bool deadline_first = deadline <= give_up;
  const std::string what = "no SSH connection to " + Where() + " within " +
                           std::to_string(options_.connect_timeout.count()) + " ms";
  return deadline_first ? Status::DeadlineExceeded(what) : Status::Unavailable(what);
}

Result<RemoteResult> SshHost::Run(std::string_view command, std::string_view input,
                                  Deadline deadline, const std::function<bool()>& cancelled) {
  {
    std::unique_lock lock(slots_mu_);
    if (!slots_cv_.wait_until(lock, deadline, [&] { return in_use_ < options_.max_sessions; })) {
      return Status::DeadlineExceeded("every SSH session to " + Where() + " stayed busy");
    }
    ++in_use_;
  }
  struct Release {
    SshHost* self;
    ~Release() {
      {
        std::lock_guard lock(self->slots_mu_);
        --self->in_use_;
      }
      self->slots_cv_.notify_one();
    }
  } release{this};
  {
    std::lock_guard lock(connect_mu_);
    if (Status s = Connect(deadline); !s.ok()) {
      return s;
    }
  }
  std::vector<std::string> args = CommonArgs();
  args.insert(args.begin() + 1, {"-o", "ControlMaster=no", "-T"});
  args.push_back(target_.host);
  args.push_back("--");
  args.push_back(std::string(command));
  Result<ProcessOutput> ran = RunProcess(args, Environment(), input, deadline, cancelled);
  if (!ran.ok()) {
    return ran.status();
  }
  if (ran->stopped) {
    if (cancelled && cancelled()) {
      return Status::Cancelled("command on " + Where() + " cancelled");
    }
    return Status::DeadlineExceeded("command on " + Where() + " did not finish in time");
  }
  if (ran->exit_code == 255 || ran->exit_code < 0) {
    // ssh's own failure (remote commands here never exit 255): the connection is gone.
    std::lock_guard lock(connect_mu_);
    const bool master_alive = master_.Running();
    if (!master_alive) {
      return MasterFailure("keep the connection to");
    }
    return Status::Unavailable("SSH session to " + Where() + " failed: " + LastLine(ran->err));
  }
  return RemoteResult{
      .exit_code = ran->exit_code, .out = std::move(ran->out), .err = std::move(ran->err)};
}

}  // namespace flotilla::providers::tart
