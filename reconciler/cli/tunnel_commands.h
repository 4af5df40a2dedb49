#pragma once

// `flotilla port-forward`, `flotilla ssh` and `flotilla vnc`: reaching a VM's port through a
// running loop's API (docs/api.md, "Tunnels"), with a token that holds the access role.

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "reconciler/cli/context.h"
#include "reconciler/cli/read_commands.h"

namespace flotilla::cli {

struct PortForwardOptions {
  ServerFlags api;
  std::string vm;
  std::string ports;  // [LOCAL:]REMOTE; with --stdio, REMOTE
  bool stdio = false;
  std::string address = "127.0.0.1";  // where to listen
  std::string host;                   // the host to look on, when the name is on several
};

struct SshOptions {
  ServerFlags api;
  std::string vm;
  std::string user;
  std::string host;
  uint16_t port = 22;
  std::vector<std::string> ssh_options;  // -o KEY=VALUE, passed on
  std::vector<std::string> command;      // after --
};

struct VncOptions {
  ServerFlags api;
  std::string vm;
  std::string host;
  uint16_t port = 5900;
  std::string address = "127.0.0.1";
  uint16_t local = 0;
  bool open = false;  // hand the URL to the desktop's opener
};

CLI::App* AddPortForwardCommand(CLI::App& app, PortForwardOptions& options);
CLI::App* AddSshCommand(CLI::App& app, SshOptions& options);
CLI::App* AddVncCommand(CLI::App& app, VncOptions& options);

int RunPortForward(const PortForwardOptions& options, const Context& context);
int RunSsh(const SshOptions& options, const Context& context);
int RunVnc(const VncOptions& options, const Context& context);

}  // namespace flotilla::cli
