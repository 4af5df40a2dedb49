#include "reconciler/cli/tunnel_commands.h"

#include <netdb.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <thread>

#include "reconciler/cli/tunnel_client.h"
#include "reconciler/model/text.h"

namespace flotilla::cli {
namespace {

std::optional<uint16_t> ParsePort(std::string_view text) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > 65535) {
    return std::nullopt;
  }
  return static_cast<uint16_t>(value);
}

// The target of a tunnel to `vm`:`port`, from the server flags. FailedPrecondition without a
// server.
Result<TunnelTarget> TargetOf(const ServerFlags& api, const std::string& vm,
                              const std::string& host, uint16_t port) {
  const std::string server = ServerUrl(api);
  if (server.empty()) {
    return Status::FailedPrecondition(
        "tunnels go through a running loop: give its API with --server URL (or set "
        "FLOTILLA_SERVER), and a token with the access role (--token-file or FLOTILLA_TOKEN)");
  }
  Result<std::string> token = ClientToken(api);
  if (!token.ok()) {
    return token.status();
  }
  return TunnelTarget{.server = server,
                      .token = *token,
                      .ca_file = api.ca_file,
                      .vm = vm,
                      .host = host,
                      .port = port};
}

// Listens on `address`:`local` and sends each connection through its own tunnel to `target`,
// until the process is stopped. `ready` is told the address actually bound.
int Forward(const TunnelTarget& target, const std::string& address, uint16_t local,
            const std::function<void(const std::string&)>& ready, const Context& context) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port_text = std::to_string(local);
  if (getaddrinfo(address.c_str(), port_text.c_str(), &hints, &found) != 0 || found == nullptr) {
    return Fail(context, Status::InvalidArgument("--address " + address +
                                                 " is not an address of this machine"));
  }
  int listener = -1;
  std::string why;
  for (addrinfo* a = found; a != nullptr && listener < 0; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (fd >= 0 && bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 64) == 0) {
      listener = fd;
    } else {
      why = std::strerror(errno);
      if (fd >= 0) {
        close(fd);
      }
    }
  }
  freeaddrinfo(found);
  if (listener < 0) {
    return Fail(context,
                Status::Unavailable("cannot listen on " + address + ":" + port_text + ": " + why));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  getsockname(listener, reinterpret_cast<sockaddr*>(&bound), &len);
  std::array<char, NI_MAXHOST> host{};
  std::array<char, NI_MAXSERV> serv{};
  getnameinfo(reinterpret_cast<sockaddr*>(&bound), len, host.data(), host.size(), serv.data(),
              serv.size(), NI_NUMERICHOST | NI_NUMERICSERV);
  const std::string shown = (std::string_view(host.data()).find(':') != std::string_view::npos
                                 ? "[" + std::string(host.data()) + "]"
                                 : std::string(host.data())) +
                            ":" + serv.data();
  ready(shown);
  // The process ends with Ctrl-C, and the tunnels with it. Each connection has a thread of its
  // own, counted: when the listener fails, they are stopped and waited for before returning.
  std::atomic<bool> stopping{false};
  std::mutex mu;
  std::condition_variable ended;
  int open = 0;
  for (;;) {
    const int conn = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) {
      if (errno == EINTR || errno == ECONNABORTED) {
        continue;
      }
      if (errno == EMFILE || errno == ENFILE) {
        // Out of descriptors: the waiting connection stays queued until some close, and
        // asking again at once would only spin.
        std::this_thread::sleep_for(std::chrono::milliseconds{100});
        continue;
      }
      const std::string why = std::strerror(errno);
      close(listener);
      stopping = true;
      std::unique_lock lock(mu);
      ended.wait(lock, [&] { return open == 0; });
      return Fail(context, Status::Unavailable("cannot accept connections: " + why));
    }
    {
      std::lock_guard lock(mu);
      ++open;
    }
    std::thread([conn, target, &stopping, &context, &mu, &ended, &open] {
      Result<std::unique_ptr<Tunnel>> tunnel = Tunnel::Open(target);
      if (!tunnel.ok()) {
        context.err << "flotilla: " << tunnel.status().message() << "\n";
      } else {
        (void)(*tunnel)->Relay(conn, conn, stopping);
      }
      close(conn);
      std::lock_guard lock(mu);  // notified under the lock: Forward cannot return before
      --open;
      ended.notify_all();
    }).detach();
  }
}

// Hands `url` to the desktop's opener (macOS: open; elsewhere: xdg-open) and does not wait for
// it: a thread collects it and says when it failed.
void OpenUrl(const std::string& url, const Context& context) {
#ifdef __APPLE__
  std::string opener = "open";
#else
  std::string opener = "xdg-open";
#endif
  std::string argument = url;
  char* argv[] = {opener.data(), argument.data(), nullptr};
  pid_t pid = 0;
  const int failed = posix_spawnp(&pid, opener.c_str(), nullptr, nullptr, argv, environ);
  if (failed != 0) {
    context.err << "flotilla: cannot run " << opener << " (" << std::strerror(failed) << "); open "
                << url << " yourself" << std::endl;
    return;
  }
  std::thread([pid, opener, url, &context] {
    int status = 0;
    if (waitpid(pid, &status, 0) == pid && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
      context.err << "flotilla: " << opener << " could not open " << url << "; open it yourself"
                  << std::endl;
    }
  }).detach();  // like the tunnels' threads: the process ends with Ctrl-C
}

// --host, and --server, --token-file and --ca-file: a tunnel needs a running loop's API.
void AddTunnelFlags(CLI::App& cmd, std::string& host, ServerFlags& api) {
  cmd.add_option("--host", host, "The host to look on, when VMs of that name are on several");
  AddServerFlags(cmd, api);
  cmd.get_option("--server")
      ->description(
          "URL of the running loop's API, e.g. https://flotilla.example:8080 (default: "
          "$FLOTILLA_SERVER; one of them is needed)");
  cmd.get_option("--token-file")
      ->description("File holding an API token with the access role (default: $FLOTILLA_TOKEN)");
}

// 'text' for /bin/sh.
std::string ShellQuote(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return out + "'";
}

}  // namespace

CLI::App* AddPortForwardCommand(CLI::App& app, PortForwardOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "port-forward",
      "Forward a local port to a port of a VM, through a running loop's API (a token with the\n"
      "access role). Each connection to the local port gets its own tunnel; Ctrl-C stops.\n"
      "With --stdio, one tunnel on standard input and output (an ssh ProxyCommand).\n"
      "The pool must allow the port (spec.access.allowedPorts; default 22 and 5900).\n"
      "Examples:\n"
      "  flotilla port-forward ci-mac-1 8022:22      # ssh -p 8022 admin@127.0.0.1\n"
      "  flotilla port-forward ci-mac-1 22           # a free local port, printed\n"
      "  ssh -o ProxyCommand='flotilla port-forward --stdio %n 22' admin@ci-mac-1");
  cmd->add_option("vm", options.vm, "The VM's name (managed or not)")->required();
  cmd->add_option("ports", options.ports,
                  "[LOCAL:]REMOTE: the local port (0 or none: any free one) "
                  "and the VM's port")
      ->required();
  cmd->add_flag("--stdio", options.stdio,
                "One tunnel on standard input and output instead of a local port");
  cmd->add_option("--address", options.address, "Where to listen")->capture_default_str();
  AddTunnelFlags(*cmd, options.host, options.api);
  return cmd;
}

CLI::App* AddSshCommand(CLI::App& app, SshOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "ssh",
      "Log in to a VM with the local OpenSSH client, through a running loop's API (a token\n"
      "with the access role): ssh runs with ProxyCommand 'flotilla port-forward --stdio VM 22',\n"
      "so your keys, agent and known_hosts work as usual (host keys are remembered under\n"
      "flotilla.VM). The user is --user, else the VM set's template access.sshUser, else\n"
      "ssh's default.\n"
      "Examples:\n"
      "  flotilla ssh ci-mac-1 --user admin\n"
      "  flotilla ssh ci-mac-1 --user admin -- uname -a");
  cmd->add_option("vm", options.vm, "The VM's name (managed or not)")->required();
  cmd->add_option("command", options.command, "A command to run instead of a login shell");
  cmd->add_option("-u,--user", options.user, "The guest user to log in as");
  cmd->add_option("-p,--port", options.port, "The VM's SSH port")->capture_default_str();
  cmd->add_option("-o,--ssh-option", options.ssh_options,
                  "An option for ssh (KEY=VALUE, as ssh -o takes it); repeatable");
  AddTunnelFlags(*cmd, options.host, options.api);
  return cmd;
}

CLI::App* AddVncCommand(CLI::App& app, VncOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "vnc",
      "Forward a local port to a VM's VNC port (macOS Screen Sharing, 5900) through a running\n"
      "loop's API (a token with the access role), and print the vnc:// URL to open. The guest\n"
      "must serve VNC (Screen Sharing on for macOS). With --open, the URL is opened in the\n"
      "desktop's VNC viewer (macOS: Screen Sharing). Ctrl-C stops.");
  cmd->add_option("vm", options.vm, "The VM's name (managed or not)")->required();
  cmd->add_option("--port", options.port, "The VM's VNC port")->capture_default_str();
  cmd->add_option("--local-port", options.local, "The local port (0: any free one)")
      ->capture_default_str();
  cmd->add_option("--address", options.address, "Where to listen")->capture_default_str();
  cmd->add_flag("--open", options.open,
                "Open the vnc:// URL with the desktop's handler (open on macOS, xdg-open "
                "elsewhere)");
  AddTunnelFlags(*cmd, options.host, options.api);
  return cmd;
}

int RunPortForward(const PortForwardOptions& options, const Context& context) {
  std::signal(SIGPIPE, SIG_IGN);  // a closed stdout is an error of the write, not a signal
  const size_t colon = options.ports.rfind(':');
  const std::optional<uint16_t> remote =
      ParsePort(colon == std::string::npos ? options.ports : options.ports.substr(colon + 1));
  const std::optional<uint16_t> local = colon == std::string::npos
                                            ? std::optional<uint16_t>(0)
                                            : ParsePort(options.ports.substr(0, colon));
  if (!remote || *remote == 0 || !local || (options.stdio && colon != std::string::npos)) {
    return Fail(context,
                Status::InvalidArgument(
                    options.stdio ? "with --stdio, give the VM's port alone (e.g. 22), not \"" +
                                        options.ports + "\""
                                  : "ports must be [LOCAL:]REMOTE, e.g. 8022:22 or 22, not \"" +
                                        options.ports + "\""));
  }
  Result<TunnelTarget> target = TargetOf(options.api, options.vm, options.host, *remote);
  if (!target.ok()) {
    return Fail(context, target.status());
  }
  if (options.stdio) {
    Result<std::unique_ptr<Tunnel>> tunnel = Tunnel::Open(*target);
    if (!tunnel.ok()) {
      return Fail(context, tunnel.status());
    }
    std::atomic<bool> stopping{false};
    const api::RelayOutcome outcome = (*tunnel)->Relay(STDIN_FILENO, STDOUT_FILENO, stopping);
    return outcome.end == "closed" ? 0 : 1;
  }
  return Forward(
      *target, options.address, *local,
      [&](const std::string& bound) {
        context.out << "Forwarding " << bound << " -> " << options.vm << ":" << *remote
                    << " through " << target->server << " (Ctrl-C stops)" << std::endl;
      },
      context);
}

int RunVnc(const VncOptions& options, const Context& context) {
  std::signal(SIGPIPE, SIG_IGN);
  Result<TunnelTarget> target = TargetOf(options.api, options.vm, options.host, options.port);
  if (!target.ok()) {
    return Fail(context, target.status());
  }
  return Forward(
      *target, options.address, options.local,
      [&](const std::string& bound) {
        context.out << "VNC of " << options.vm << " at vnc://" << bound
                    << (options.open ? " (Ctrl-C stops)"
                                     : " (open it in a VNC viewer; Ctrl-C stops)")
                    << std::endl;
        if (options.open) {
          OpenUrl("vnc://" + bound, context);
        }
      },
      context);
}

int RunSsh(const SshOptions& options, const Context& context) {
  Result<TunnelTarget> target = TargetOf(options.api, options.vm, options.host, options.port);
  if (!target.ok()) {
    return Fail(context, target.status());
  }
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) {
    return Fail(context, Status::Internal("cannot find the flotilla binary: " + ec.message()));
  }
  std::string proxy =
      ShellQuote(self.string()) + " port-forward --stdio --server " + ShellQuote(target->server);
  if (!options.api.token_file.empty()) {
    proxy += " --token-file " +
             ShellQuote(std::filesystem::absolute(options.api.token_file, ec).string());
  }
  if (!options.api.ca_file.empty()) {
    proxy +=
        " --ca-file " + ShellQuote(std::filesystem::absolute(options.api.ca_file, ec).string());
  }
  if (!options.host.empty()) {
    proxy += " --host " + ShellQuote(options.host);
  }
  proxy += " " + ShellQuote(options.vm) + " " + std::to_string(options.port);
  // The user: --user, else the VM set's template access.sshUser (asked of the API), else
  // ssh's own default.
  std::string user = options.user;
  if (user.empty()) {
    std::string path = "/api/v1/vms/" + EncodePathSegment(options.vm) + "/access";
    if (!options.host.empty()) {
      path += "?host=" + EncodePathSegment(options.host);
    }
    Result<nlohmann::json> access = GetFromApi(options.api, target->server, path);
    if (!access.ok()) {
      return Fail(context, access.status());
    }
    user = access->value("ssh_user", "");
  }
  std::vector<std::string> args = {"ssh", "-o", "ProxyCommand=" + proxy, "-o",
                                   "HostKeyAlias=flotilla." + options.vm};
  for (const std::string& option : options.ssh_options) {
    args.insert(args.end(), {"-o", option});
  }
  if (!user.empty()) {
    args.insert(args.end(), {"-l", user});
  }
  args.push_back(options.vm);
  args.insert(args.end(), options.command.begin(), options.command.end());
  std::vector<char*> argv;
  for (std::string& arg : args) {
    argv.push_back(arg.data());
  }
  argv.push_back(nullptr);
  context.out.flush();
  execvp("ssh", argv.data());
  return Fail(context, Status::FailedPrecondition(
                           std::string("cannot run ssh (the OpenSSH client; install it): ") +
                           std::strerror(errno)));
}

}  // namespace flotilla::cli
