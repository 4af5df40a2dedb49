#pragma once

// flotilla-hostsim as a child process on a loopback port the OS chose, with its control API,
// for tests that drive a provider over real HTTP.

#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace flotilla::testing {

class Hostsim {
 public:
  // `flags` are added to: --listen 127.0.0.1:0 --port-file F --control --lookup-delay 0.
  explicit Hostsim(std::vector<std::string> flags, std::string scheme = "http") {
    scheme_ = std::move(scheme);
    const fs::path port_file = dir_.path() / "port";
    std::vector<std::string> argv = {
        FLOTILLA_HOSTSIM_BIN, "--listen",  "127.0.0.1:0",    "--port-file",
        port_file.string(),   "--control", "--lookup-delay", "0s"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    process_ = std::make_unique<Process>(argv);
    ready_ = WaitUntil([&] {
      std::ifstream in(port_file);
      return static_cast<bool>(in >> port_) && port_ > 0;
    });
  }

  bool ready() const { return ready_; }
  int port() const { return port_; }
  std::string origin() const { return scheme_ + "://127.0.0.1:" + std::to_string(port_); }
  // The address of one host: the origin in single-host mode, else "<origin>/h/<name>/api".
  std::string address(const std::string& host = "") const {
    return host.empty() ? origin() : origin() + "/h/" + host + "/api";
  }

  // Calls the control API; fails the test on a non-2xx answer.
  nlohmann::json Control(const std::string& method, const std::string& path,
                         const nlohmann::json& body = nlohmann::json::object()) {
    httplib::Client client(origin());
    client.enable_server_certificate_verification(false);
    const std::string payload = body.dump();
    httplib::Result result = method == "GET"      ? client.Get(path)
                             : method == "DELETE" ? client.Delete(path)
                             : method == "PATCH"  ? client.Patch(path, payload, "application/json")
                                                  : client.Post(path, payload, "application/json");
    if (!result) {
      ADD_FAILURE() << method << " " << path << ": " << httplib::to_string(result.error());
      return nullptr;
    }
    EXPECT_GE(result->status, 200) << method << " " << path << ": " << result->body;
    EXPECT_LT(result->status, 300) << method << " " << path << ": " << result->body;
    return nlohmann::json::parse(result->body, nullptr, false);
  }

  // Calls of one endpoint on one host that answered `status` ("calls" for all of them).
  int Count(const std::string& host, const std::string& endpoint,
            const std::string& status = "calls") {
    nlohmann::json counters = Control("GET", "/_sim/counters");
    if (!counters.is_object() || !counters.contains(host) || !counters[host].contains(endpoint) ||
        !counters[host][endpoint].contains(status)) {
      return 0;
    }
    return counters[host][endpoint][status].get<int>();
  }

  // Work under way on all hosts that goes on without its caller (create jobs, clones, state
  // changes and deletes waiting for their latency): GET /_sim/hosts, summed; -1 if unknown.
  int InFlight() {
    const nlohmann::json hosts = Control("GET", "/_sim/hosts");
    if (!hosts.is_array()) {
      return -1;
    }
    int n = 0;
    for (const nlohmann::json& host : hosts) {
      n += host.value("in_flight", 0);
    }
    return n;
  }

 private:
  ScratchDir dir_;
  std::unique_ptr<Process> process_;
  std::string scheme_;
  int port_ = 0;
  bool ready_ = false;
};

}  // namespace flotilla::testing
