#pragma once

// A running `flotilla run` of a FleetFixture whose configuration serves the API with a token
// from the environment (`tokenEnv`): the loop's URL read from its log, authenticated requests,
// and waits for readiness and convergence.
//
// REQUIRES: FLOTILLA_BIN and FLOTILLA_HOSTSIM_BIN compile definitions (fleet_fixture.h).

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "tests/support/fleet_fixture.h"
#include "tests/support/process.h"

namespace flotilla::testing {

class ApiLoop {
 public:
  // Starts `flotilla run <flags>` with `token_env=token` (and `env`, VAR=value words) in its
  // environment, and waits for the API's URL in its log.
  ApiLoop(FleetFixture& fx, std::string token, const std::string& token_env,
          const std::string& env = "", const std::string& flags = "")
      : fx_(fx), token_(std::move(token)) {
    loop_ = fx.StartLoop(flags, token_env + "=" + token_ + " " + env);
    const std::regex api(R"(API (http://127\.0\.0\.1:(\d+)))");
    WaitUntil([&] {
      std::smatch m;
      const std::string log = fx_.LoopLog();
      if (std::regex_search(log, m, api)) {
        url_ = m[1].str();
        port_ = std::stoi(m[2].str());
        return true;
      }
      return false;
    });
  }

  bool ok() const { return port_ > 0; }
  const std::string& url() const { return url_; }
  int port() const { return port_; }
  const std::string& token() const { return token_; }

  // GET with the loop's token.
  httplib::Result Get(const std::string& path) { return Get(path, token_); }
  // GET with `token` ("" sends no Authorization header).
  httplib::Result Get(const std::string& path, const std::string& token) {
    httplib::Client client("127.0.0.1", port_);
    client.set_read_timeout(std::chrono::seconds{60});
    httplib::Headers headers;
    if (!token.empty()) {
      headers.emplace("Authorization", "Bearer " + token);
    }
    return client.Get(path, headers);
  }

  // POST with the loop's token.
  httplib::Result Post(const std::string& path, const std::string& body) {
    return Post(path, body, {{"Authorization", "Bearer " + token_}});
  }
  httplib::Result Post(const std::string& path, const std::string& body,
                       const httplib::Headers& headers) {
    httplib::Client client("127.0.0.1", port_);
    client.set_read_timeout(std::chrono::seconds{60});
    return client.Post(path, headers, body, "application/json");
  }

  // The JSON of an authenticated GET; fails the test unless it answers 200 or 202.
  nlohmann::json GetJson(const std::string& path) {
    httplib::Result r = Get(path);
    if (!r) {
      ADD_FAILURE() << "GET " << path << ": no answer";
      return nullptr;
    }
    EXPECT_TRUE(r->status == 200 || r->status == 202)
        << path << ": " << r->status << " " << r->body;
    return nlohmann::json::parse(r->body, nullptr, false);
  }

  // Waits until the first observation is served.
  bool Ready() {
    return WaitUntil([&] {
      httplib::Result r = Get("/readyz", "");
      return r && r->status == 200;
    });
  }

  nlohmann::json Runs() { return GetJson("/api/v1/runs?limit=100")["runs"]; }

  // The newest run with this trigger, or null.
  nlohmann::json RunWithTrigger(const std::string& trigger) {
    for (const nlohmann::json& run : Runs()) {
      if (run.value("trigger", "") == trigger) {
        return run;
      }
    }
    return nullptr;
  }

  // Waits (up to `limit`) until the plan of the latest observation is empty and the loop has run.
  bool Converged(std::chrono::milliseconds limit = std::chrono::seconds(60)) {
    return WaitUntil(
        [&] {
          httplib::Result r = Get("/api/v1/plan");
          if (!r || r->status != 200) {
            return false;
          }
          const nlohmann::json plan = nlohmann::json::parse(r->body, nullptr, false);
          return plan.is_object() && plan["actions"].empty() && !Runs().empty();
        },
        limit);
  }

  Process& process() { return *loop_; }

 private:
  FleetFixture& fx_;
  std::string token_;
  std::unique_ptr<Process> loop_;
  std::string url_;
  int port_ = 0;
};

}  // namespace flotilla::testing
