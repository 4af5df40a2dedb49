#pragma once

// Real Git servers on loopback for integration tests: git daemon (git://), smart HTTP
// (git http-backend behind Python's HTTP server) and sshd, each started by the test on a port
// the OS chose, and stopped with it.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/loopback.h"
#include "tests/support/process.h"
#include "tests/support/shell.h"

extern char** environ;

namespace flotilla::testing {

namespace fs = std::filesystem;

// A bare repository served by the servers below, and a clone of it to commit and push from.
class FixtureRepo {
 public:
  FixtureRepo(const fs::path& root, const fs::path& seed) : root_(root) {
    bare_ = root / "served" / "fleet.git";
    work_ = root / "work";
    Sh("git init -q --bare -b main " + Quote(bare_.string()));
    Sh("git -C " + Quote(bare_.string()) + " config uploadpack.allowAnySHA1InWant true");
    Sh("git init -q -b main " + Quote(work_.string()));
    Sh("cp -r " + Quote(seed.string()) + " " + Quote((work_ / "fleet").string()));
    Git("remote add origin " + Quote(bare_.string()));
    CommitAll("Initial fleet");
    Git("push -q origin main");
  }

  std::string Git(const std::string& args) { return testing::Git(work_, args); }

  void Write(const std::string& relative, const std::string& content) {
    fs::create_directories((work_ / relative).parent_path());
    std::ofstream(work_ / relative, std::ios::binary) << content;
  }

  std::string Read(const std::string& relative) {
    std::ifstream in(work_ / relative);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  // Commits everything and returns the new SHA.
  std::string CommitAll(const std::string& message) { return testing::CommitAll(work_, message); }

  std::string CommitAndPush(const std::string& message) {
    std::string sha = CommitAll(message);
    Git("push -q origin main");
    return sha;
  }

  const fs::path& bare() const { return bare_; }
  fs::path served_root() const { return bare_.parent_path(); }
  const fs::path& work() const { return work_; }

 private:
  fs::path root_;
  fs::path bare_;
  fs::path work_;
};

// git daemon serving <root>/*.git at git://127.0.0.1:<port>/.
class GitDaemon {
 public:
  explicit GitDaemon(const fs::path& root) : port_(FreePort()) {
    process_ = std::make_unique<Process>(
        std::vector<std::string>{"/usr/bin/git", "daemon", "--reuseaddr", "--listen=127.0.0.1",
                                 "--port=" + std::to_string(port_), "--base-path=" + root.string(),
                                 "--export-all", root.string()});
    ready_ = WaitUntil([&] { return PortAccepts(port_); });
  }
  bool ready() const { return ready_; }
  int port() const { return port_; }
  std::string Url(const std::string& repo) const {
    return "git://127.0.0.1:" + std::to_string(port_) + "/" + repo;
  }
  void Stop() { process_->Stop(); }

 private:
  int port_;
  std::unique_ptr<Process> process_;
  bool ready_ = false;
};

// Smart HTTP with basic-auth token checking (tests/integration/git_http_server.py).
class HttpGitServer {
 public:
  HttpGitServer(const fs::path& root, const fs::path& scratch, const std::string& token) {
    const fs::path port_file = scratch / "http.port";
    process_ = std::make_unique<Process>(std::vector<std::string>{
        "/usr/bin/python3",
        std::string(FLOTILLA_SOURCE_DIR) + "/tests/integration/git_http_server.py", root.string(),
        port_file.string(), token});
    ready_ = WaitUntil([&] { return fs::exists(port_file); });
    if (ready_) {
      std::ifstream(port_file) >> port_;
    }
  }
  bool ready() const { return ready_; }
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/" + path;
  }

 private:
  std::unique_ptr<Process> process_;
  int port_ = 0;
  bool ready_ = false;
};

// sshd on loopback with a throwaway host key; logs in the current user with a throwaway key.
class SshServer {
 public:
  // `extra_config` is appended to sshd_config (SetEnv lines, say).
  explicit SshServer(const fs::path& dir, const std::string& extra_config = "")
      : dir_(dir), port_(FreePort()) {
    fs::create_directories(dir);
    Sh("ssh-keygen -q -t ecdsa -b 256 -N '' -f " + Quote((dir / "host_key").string()));
    Sh("ssh-keygen -q -t ecdsa -b 256 -m PEM -N '' -f " + Quote((dir / "user_key").string()));
    Sh("cp " + Quote((dir / "user_key.pub").string()) + " " +
       Quote((dir / "authorized_keys").string()));
    std::ofstream(dir / "sshd_config")
        << "Port " << port_ << "\nListenAddress 127.0.0.1\n"
        << "HostKey " << (dir / "host_key").string() << "\n"
        << "PidFile " << (dir / "sshd.pid").string() << "\n"
        << "AuthorizedKeysFile " << (dir / "authorized_keys").string() << "\n"
        << "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        << "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
        << "PermitRootLogin prohibit-password\nLogLevel ERROR\n"
        << extra_config;
    std::error_code ec;
    fs::create_directories("/run/sshd", ec);  // sshd's privilege-separation folder
    SetOnline(true);
    std::ifstream pub(dir / "host_key.pub");
    std::string type, key;
    pub >> type >> key;
    std::ofstream(dir / "known_hosts")
        << "[127.0.0.1]:" << port_ << " " << type << " " << key << "\n";
  }
  bool ready() const { return ready_; }
  int port() const { return port_; }
  // Offline: sshd stops listening and every connection it holds is cut (its per-connection
  // processes end). Online: it listens again, with the same keys and port.
  void SetOnline(bool online) {
    if (!online) {
      if (process_ != nullptr) {
        // The listener's children serve the connections.
        RunShell("pkill -KILL -P " + std::to_string(process_->pid()) + " 2>/dev/null");
      }
      process_.reset();
      ready_ = false;
      return;
    }
    if (process_ == nullptr) {
      process_ = std::make_unique<Process>(std::vector<std::string>{
          "/usr/sbin/sshd", "-D", "-e", "-f", (dir_ / "sshd_config").string()});
      ready_ = WaitUntil([&] { return PortAccepts(port_); });
    }
  }
  std::string Url(const fs::path& repo) const {
    return "ssh://" + Sh("id -un") + "@127.0.0.1:" + std::to_string(port_) + repo.string();
  }
  fs::path user_key() const { return dir_ / "user_key"; }
  fs::path known_hosts() const { return dir_ / "known_hosts"; }

 private:
  fs::path dir_;
  int port_;
  std::unique_ptr<Process> process_;
  bool ready_ = false;
};

}  // namespace flotilla::testing
