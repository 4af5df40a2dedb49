// Tunnels to VM ports over `flotilla dev` (docs/api.md, "Tunnels"): the CLI's port-forward and ssh
// through the loop's API, to the simulated VMs of both providers: a Parallels pool's VM through
// flotilla-hostsim's reverse proxy, a Tart pool's VM through the simulated Mac's real sshd
// (ssh -W) to flotilla-tartsim's listener on the VM's address. The simulated guests echo on 22
// and 5900, or relay a port to a real sshd (--guest-port) standing in for the guest.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <future>
#include <iterator>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/servers.h"
#include "tests/support/dev_runner.h"
#include "tests/support/loopback.h"
#include "tests/support/process.h"
#include "tests/support/shell.h"

namespace flotilla {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Dev;
using testing::DialLoopback;
using testing::kExampleVms;
using testing::ScratchDir;
using testing::Sh;
using testing::WaitUntil;

// A running managed VM of `vmset`, as the API lists it; empty when there is none.
std::string RunningVm(Dev& dev, const std::string& vmset) {
  const json vms = dev.Get("/api/v1/vms?managed=true&state=running&vmset=" + vmset);
  return vms.is_object() && !vms["vms"].empty() ? vms["vms"][0]["name"].get<std::string>() : "";
}

// FLOTILLA_SERVER and FLOTILLA_TOKEN (`token`, or else the loop's) of `dev`, as assignments
// before a command of the shell.
std::string ApiEnv(Dev& dev, const std::string& token = "") {
  return "FLOTILLA_SERVER=http://127.0.0.1:" + std::to_string(dev.port()) +
         " FLOTILLA_TOKEN=" + (token.empty() ? dev.token() : token) + " ";
}

// `flotilla ARGS` with FLOTILLA_SERVER and FLOTILLA_TOKEN of `dev` and `input` on stdin: its
// exit status, stdout and stderr.
struct Ran {
  int status = -1;
  std::string out;
  std::string err;
};
Ran Flotilla(Dev& dev, const fs::path& scratch, const std::string& args, const std::string& input,
             const std::string& token = "") {
  const fs::path in = scratch / "stdin";
  std::ofstream(in, std::ios::binary) << input;
  const std::string command = ApiEnv(dev, token) + FLOTILLA_BIN + " " + args + " <" + in.string() +
                              " >" + (scratch / "stdout").string() + " 2>" +
                              (scratch / "stderr").string();
  Ran ran;
  ran.status = testing::RunShell(command);
  ran.out = testing::Slurp(scratch / "stdout");
  ran.err = testing::Slurp(scratch / "stderr");
  return ran;
}

// The local port a `flotilla port-forward` or `vnc` writing to `out` says it listens on, once
// its line matches `pattern` (the port in its first group); 0 when it never does.
int ListeningPort(const fs::path& out, const std::string& pattern) {
  int port = 0;
  WaitUntil([&] {
    std::smatch m;
    const std::string text = testing::Slurp(out);
    if (std::regex_search(text, m, std::regex(pattern))) {
      port = std::stoi(m[1].str());
      return true;
    }
    return false;
  });
  return port;
}

// `text` through a connection to 127.0.0.1:`port`, sent whole and half-closed: what comes back
// until the other side closes.
std::string EchoedThrough(int port, const std::string& text) {
  const int fd = DialLoopback(port);
  if (fd < 0 ||
      send(fd, text.data(), text.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(text.size())) {
    if (fd >= 0) {
      close(fd);
    }
    return "(not sent)";
  }
  shutdown(fd, SHUT_WR);
  std::string back;
  std::vector<char> buffer(256);
  for (ssize_t n = 0; (n = read(fd, buffer.data(), buffer.size())) > 0;) {
    back.append(buffer.data(), static_cast<size_t>(n));
  }
  close(fd);
  return back;
}

class TunnelDevTest : public ::testing::Test {
 protected:
  // `flotilla dev` converged on the example fleet, with `extra` on its command line.
  void StartDev(const std::string& extra = "") {
    dev_ = std::make_unique<Dev>(scratch_.path(), FLOTILLA_BIN, "", extra);
    ASSERT_TRUE(dev_->ok()) << dev_->err();
    ASSERT_TRUE(WaitUntil([&] { return dev_->Converged(kExampleVms); }, std::chrono::minutes(4)))
        << dev_->out() << dev_->err();
    parallels_vm_ = RunningVm(*dev_, "linux-runners");
    tart_vm_ = RunningVm(*dev_, "xcode-runners");
    ASSERT_FALSE(parallels_vm_.empty());
    ASSERT_FALSE(tart_vm_.empty());
  }
  void TearDown() override {
    if (dev_ != nullptr) {
      EXPECT_EQ(dev_->Terminate(), 0);
    }
  }

  // `flotilla ARGS` running with the loop's API and token, its output in `out`; `first` runs
  // before it in its shell (a ulimit, an export).
  std::unique_ptr<testing::Process> StartFlotilla(const std::string& args, const fs::path& out,
                                                  const std::string& first = "") {
    return std::make_unique<testing::Process>(
        std::vector<std::string>{"/bin/sh", "-c",
                                 first + ApiEnv(*dev_) + "exec " + FLOTILLA_BIN + " " + args +
                                     " >" + out.string() + " 2>&1"});
  }

  // The messages of the tunnel events, a line each.
  std::string TunnelEvents() const {
    const json events = dev_->Get("/api/v1/events?kind=tunnel");
    EXPECT_TRUE(events.is_object());
    std::string all;
    for (const json& e : events.value("events", json::array())) {
      all += e["message"].get<std::string>() + "\n";
    }
    return all;
  }

  ScratchDir scratch_;
  std::unique_ptr<Dev> dev_;
  std::string parallels_vm_;
  std::string tart_vm_;
};

TEST_F(TunnelDevTest, PortForwardStdioReachesTheSimulatedGuestsOfBothProvidersAndIsRecorded) {
  StartDev();
  for (const std::string& vm : {parallels_vm_, tart_vm_}) {
    const std::string hello = "SSH-2.0-flotilla-e2e " + vm + "\r\n";
    const Ran ran = Flotilla(*dev_, scratch_.path(), "port-forward --stdio " + vm + " 22", hello);
    EXPECT_EQ(ran.status, 0) << vm << ": " << ran.err;
    EXPECT_EQ(ran.out, hello) << vm << ": " << ran.err;
  }
  const std::string all = TunnelEvents();
  for (const std::string& vm : {parallels_vm_, tart_vm_}) {
    EXPECT_NE(all.find("tunnel opened to port 22 of VM " + vm), std::string::npos) << all;
    EXPECT_TRUE(std::regex_search(all, std::regex("tunnel to port 22 of VM " + vm +
                                                  " on host [^ ]+ for token default closed")))
        << all;
  }
  EXPECT_EQ(all.find(dev_->token()), std::string::npos);
  // The example Tart set says who flotilla ssh logs in as (Cirrus Labs' images: admin).
  EXPECT_EQ(dev_->Get("/api/v1/vms/" + tart_vm_ + "/access").value("ssh_user", ""), "admin");
}

TEST_F(TunnelDevTest, AWrongTokenAndADisallowedPortAreRefused) {
  StartDev();
  const Ran wrong =
      Flotilla(*dev_, scratch_.path(), "port-forward --stdio " + tart_vm_ + " 22", "x", "wrong");
  EXPECT_EQ(wrong.status, 1);
  EXPECT_NE(wrong.err.find("refused the token"), std::string::npos) << wrong.err;
  EXPECT_EQ(wrong.out, "");
  const Ran port =
      Flotilla(*dev_, scratch_.path(), "port-forward --stdio " + parallels_vm_ + " 8080", "x");
  EXPECT_EQ(port.status, 1);
  EXPECT_NE(port.err.find("allows tunnels to ports 22, 5900 (its spec.access.allowedPorts), not "
                          "to 8080"),
            std::string::npos)
      << port.err;
  EXPECT_EQ(port.out, "");
}

// `flotilla vnc VM` forwards a local port to the VM's VNC port (5900; the simulated guests echo
// on it) and prints the vnc:// URL; a client of that URL reaches the VM, on both providers.
// With --open, the desktop's opener (an xdg-open on PATH that writes down what it was given)
// gets the URL.
TEST_F(TunnelDevTest, VncForwardsALocalPortToEachVmsVncPortAndPrintsItsUrl) {
  StartDev();
  const fs::path opener = scratch_.path() / "desktop" / "xdg-open";
  const fs::path opened = scratch_.path() / "opened";
  fs::create_directories(opener.parent_path());
  std::ofstream(opener) << "#!/bin/sh\nprintf '%s\\n' \"$*\" >>'" << opened.string() << "'\n";
  fs::permissions(opener, fs::perms::owner_all);
  for (const std::string& vm : {parallels_vm_, tart_vm_}) {
    const bool open = vm == tart_vm_;
    const fs::path out = scratch_.path() / (vm + ".vnc.out");
    const std::unique_ptr<testing::Process> vnc =
        StartFlotilla("vnc " + vm + (open ? " --open" : ""), out,
                      "PATH=" + opener.parent_path().string() + ":$PATH; export PATH; ");
    const int port = ListeningPort(out, "VNC of " + vm + R"( at vnc://127\.0\.0\.1:(\d+) )");
    ASSERT_NE(port, 0) << testing::Slurp(out);
    const std::string hello = "RFB 003.008\n";
    EXPECT_EQ(EchoedThrough(port, hello), hello) << vm << ": " << testing::Slurp(out);
    if (open) {
      const std::string url = "vnc://127.0.0.1:" + std::to_string(port) + "\n";
      EXPECT_TRUE(WaitUntil([&] { return testing::Slurp(opened) == url; }))
          << testing::Slurp(opened) << testing::Slurp(out);
    }
    vnc->Signal(SIGINT);  // Ctrl-C
    EXPECT_TRUE(vnc->Wait(std::chrono::seconds(30)).has_value()) << testing::Slurp(out);
  }
  const std::string all = TunnelEvents();
  for (const std::string& vm : {parallels_vm_, tart_vm_}) {
    EXPECT_NE(all.find("tunnel opened to port 5900 of VM " + vm), std::string::npos) << all;
  }
}

// Fifty connections to one local port of `flotilla port-forward` at once, each its own tunnel
// to the Parallels VM's port 22 (hostsim's reverse proxy, then the guest's echo): 10 MiB each
// way, intact.
TEST_F(TunnelDevTest, FiftyConcurrentTunnelsCarryTenMebibytesEachIntact) {
  StartDev();
  const fs::path out = scratch_.path() / "forward.out";
  const std::unique_ptr<testing::Process> forward =
      StartFlotilla("port-forward " + parallels_vm_ + " 0:22", out);
  const int port = ListeningPort(out, R"(Forwarding 127\.0\.0\.1:(\d+) -> )");
  ASSERT_NE(port, 0) << testing::Slurp(out);
  constexpr int kTunnels = 50;
  constexpr size_t kBytes = size_t{10} << 20;
  std::vector<std::future<std::string>> results;
  for (int i = 0; i < kTunnels; ++i) {
    results.push_back(std::async(std::launch::async, [port, i]() -> std::string {
      const int fd = DialLoopback(port);
      if (fd < 0) {
        return "connect failed";
      }
      std::string data(kBytes, '\0');
      std::mt19937_64 random(static_cast<uint64_t>(i));
      for (size_t at = 0; at < kBytes; at += 8) {
        const uint64_t word = random();
        std::memcpy(data.data() + at, &word, 8);
      }
      std::thread writer([&] {
        for (size_t sent = 0; sent < data.size();) {
          const ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
          if (n <= 0) {
            break;
          }
          sent += static_cast<size_t>(n);
        }
        shutdown(fd, SHUT_WR);
      });
      std::string back;
      std::vector<char> buffer(1 << 16);
      for (ssize_t n = 0; (n = read(fd, buffer.data(), buffer.size())) > 0;) {
        back.append(buffer.data(), static_cast<size_t>(n));
      }
      writer.join();
      close(fd);
      return back == data ? "" : "got " + std::to_string(back.size()) + " bytes back, not the same";
    }));
  }
  int intact = 0;
  for (auto& r : results) {
    const std::string problem = r.get();
    EXPECT_EQ(problem, "");
    intact += problem.empty() ? 1 : 0;
  }
  EXPECT_EQ(intact, kTunnels) << testing::Slurp(out);
}

// Out of descriptors (ulimit -n), `flotilla port-forward` says so for the connections it cannot
// serve (not "connection refused"), does not spin on accept, and serves again once the crowd
// has gone.
TEST_F(TunnelDevTest, PortForwardOutOfDescriptorsWaitsAndServesAgain) {
#ifdef __SANITIZE_ADDRESS__
  // The sanitizer build (ASan with UBSan) cannot run out of descriptors soundly: UBSan's vptr
  // check, on a miss of its type cache, makes a pipe to test whether an object's vtable pointer
  // can be read (sanitizer_common's IsAccessibleMemoryRange); with no descriptor left it takes a
  // sound object (a finished connection thread's std::thread state) for one with an invalid
  // vptr and ends the process, and such reports cannot be suppressed. The plain build runs it.
  GTEST_SKIP() << "needs a build without sanitizers (UBSan's vptr check needs descriptors)";
#endif
  StartDev();
  const fs::path out = scratch_.path() / "forward.out";
  const std::unique_ptr<testing::Process> forward =
      StartFlotilla("port-forward " + parallels_vm_ + " 0:22", out, "ulimit -n 32; ");
  const int port = ListeningPort(out, R"(Forwarding 127\.0\.0\.1:(\d+) -> )");
  ASSERT_NE(port, 0) << testing::Slurp(out);
  std::vector<int> held;  // each holds a tunnel (two descriptors) or waits to be accepted
  for (int i = 0; i < 40; ++i) {
    held.push_back(DialLoopback(port));
  }
  // The process's CPU time (user and system, in clock ticks) over three seconds.
  auto cpu_ticks = [&forward] {
    std::ifstream stat("/proc/" + std::to_string(forward->pid()) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    std::istringstream fields(text.substr(text.rfind(')') + 2));
    std::vector<std::string> f{std::istream_iterator<std::string>(fields), {}};
    return f.size() > 12 ? std::stoll(f[11]) + std::stoll(f[12]) : -1;
  };
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const long long before = cpu_ticks();
  std::this_thread::sleep_for(std::chrono::seconds(3));
  const long long spent = cpu_ticks() - before;

  EXPECT_LT(spent, sysconf(_SC_CLK_TCK) * 3 / 2) << "ticks of CPU in 3 s";
  // Connections it could not serve were told why, in the system's words.
  const std::string said = testing::Slurp(out);
  EXPECT_NE(said.find("Too many open files"), std::string::npos) << said;
  EXPECT_EQ(said.find("connection refused"), std::string::npos) << said;
  for (const int fd : held) {
    if (fd >= 0) {
      close(fd);
    }
  }
  const std::string hello = "SSH-2.0-after-the-crowd\r\n";
  EXPECT_TRUE(WaitUntil([&] { return EchoedThrough(port, hello) == hello; }))
      << testing::Slurp(out);
}

// `flotilla ssh` runs the local OpenSSH client, whose ProxyCommand is `flotilla port-forward
// --stdio`; the simulated guests relay port 22 to a real sshd on loopback.
TEST_F(TunnelDevTest, SshRunsACommandThroughARealSshdStandingInForTheGuest) {
  testing::SshServer guest(scratch_.path() / "guest-sshd");
  ASSERT_TRUE(guest.ready());
  StartDev("--guest-port 22=127.0.0.1:" + std::to_string(guest.port()));
  const std::string user = Sh("id -un");
  for (const std::string& vm : {parallels_vm_, tart_vm_}) {
    const Ran ran = Flotilla(*dev_, scratch_.path(),
                             "ssh " + vm + " --user " + user +
                                 " -o BatchMode=yes -o StrictHostKeyChecking=no"
                                 " -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
                                 " -o IdentitiesOnly=yes -o IdentityFile=" +
                                 guest.user_key().string() + " -- echo guest-says-hello",
                             "");
    EXPECT_EQ(ran.status, 0) << vm << ": " << ran.err;
    EXPECT_EQ(ran.out, "guest-says-hello\n") << vm << ": " << ran.err;
  }
}

}  // namespace
}  // namespace flotilla
