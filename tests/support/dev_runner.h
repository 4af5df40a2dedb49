#pragma once

// `flotilla dev` as a child process for end-to-end tests (tests/e2e/dev_test.cc,
// tunnel_dev_test.cc): started in a scratch folder with its API on a free port, read through its
// API with the token it wrote.

#include <httplib.h>
#include <sys/wait.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/text_files.h"
#include "tests/support/wait_until.h"

namespace flotilla::testing {

// The example fleet: ios-runners 4, linux-runners 4, macos-golden 1 on the Parallels pools,
// xcode-runners 2 on the Tart pool.
inline constexpr size_t kExampleVms = 11;
inline constexpr size_t kTartVms = 2;

// `flotilla dev`, running until Terminate or the end of the object.
class Dev {
 public:
  // `flotilla dev` in `scratch`, with `env` ("PATH=/x") before the binary, `flotilla`.
  // `extra` is added to its command line ("--guest-port 22=127.0.0.1:2222").
  explicit Dev(const std::filesystem::path& scratch, const std::string& flotilla = FLOTILLA_BIN,
               const std::string& env = "", const std::string& extra = "")
      : scratch_(scratch) {
    // A previous start's output would otherwise be read before this one's shell truncates it.
    std::filesystem::remove(scratch / "dev.out");
    std::filesystem::remove(scratch / "dev.err");
    process_ = std::make_unique<Process>(std::vector<std::string>{
        "/bin/sh", "-c",
        "cd " + scratch.string() + " && exec env NO_COLOR=1 HOME=" + scratch.string() +
            " GIT_CONFIG_NOSYSTEM=1 " + env + " " + flotilla +
            " dev --listen 127.0.0.1:0 --latency none " + extra + " >dev.out 2>dev.err"});
    const std::regex api(R"(API +(http://127\.0\.0\.1:(\d+)))");
    WaitUntil(
        [&] {
          std::smatch m;
          const std::string out = Slurp(scratch_ / "dev.out");
          if (std::regex_search(out, m, api)) {
            port_ = std::stoi(m[2].str());
            return true;
          }
          return false;
        },
        std::chrono::seconds(30));
    std::ifstream in(scratch_ / ".flotilla-dev" / "api-token");
    std::getline(in, token_);
  }

  bool ok() const { return port_ > 0; }
  int port() const { return port_; }
  const std::string& token() const { return token_; }
  pid_t pid() const { return process_->pid(); }
  std::string out() const { return Slurp(scratch_ / "dev.out"); }
  std::string err() const { return Slurp(scratch_ / "dev.err"); }

  nlohmann::json Get(const std::string& path) {
    httplib::Client client("127.0.0.1", port_);
    auto r = client.Get(path, {{"Authorization", "Bearer " + token_}});
    if (!r || r->status != 200) {
      return nullptr;
    }
    return nlohmann::json::parse(r->body, nullptr, false);
  }

  size_t ManagedVms(const std::string& vmset = "", const std::string& state = "") {
    const nlohmann::json vms =
        Get("/api/v1/vms?managed=true" + (vmset.empty() ? "" : "&vmset=" + vmset) +
            (state.empty() ? "" : "&state=" + state));
    return vms.is_object() ? vms["vms"].size() : 0;
  }

  bool InSync() {
    const nlohmann::json plan = Get("/api/v1/plan");
    return plan.is_object() && plan["actions"].empty();
  }

  // The example fleet converged: every VM there, the Tart ones running, nothing left to do.
  bool Converged(size_t vms) {
    return ManagedVms() == vms && ManagedVms("xcode-runners", "running") == kTartVms && InSync();
  }

  // SIGTERM, then the exit code (-1 if it did not end within 30 s).
  int Terminate() {
    const pid_t pid = process_->pid();
    kill(pid, SIGTERM);
    int status = 0;
    if (!WaitUntil([&] { return waitpid(pid, &status, WNOHANG) == pid; },
                   std::chrono::seconds(30))) {
      return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
  }

 private:
  std::filesystem::path scratch_;
  std::unique_ptr<Process> process_;
  int port_ = 0;
  std::string token_;
};

}  // namespace flotilla::testing
