#pragma once

// flotilla-hostsim in-process on 127.0.0.1 port 0, exercised with httplib::Client the way the
// Parallels provider talks to it: the fixture of hostsim_test.cc and hostsim_fidelity_test.cc.

#include <httplib.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "providers/hostsim/sim_options.h"
#include "providers/hostsim/sim_server.h"
#include "reconciler/model/text.h"

namespace flotilla::hostsim::testing {

using nlohmann::json;
using std::chrono::milliseconds;

// Base64 as clients send the API key (the model's encoder, not a second one).
inline std::string Base64(std::string_view in) { return EncodeBase64(in); }

struct Answer {
  int status = 0;  // 0: no answer (connection error, timeout)
  std::string body;
  std::string content_type;
  bool has_content_type = false;
  json Json() const { return json::parse(body, nullptr, false); }
};

inline SimOptions TestOptions() {
  SimOptions o;
  o.listen_port = 0;
  o.lookup_delay = Duration(0);
  o.username = "root";
  o.password = "Secret-Passw0rd";
  o.api_keys = {{"CI-KEY", "ci-secret"}};
  o.control = true;
  o.offline_hang = milliseconds(3000);
  o.threads = 8;
  return o;
}

class HostsimTest : public ::testing::Test {
 protected:
  void Start(SimOptions options = TestOptions()) {
    Result<std::unique_ptr<SimService>> sim = SimService::Start(std::move(options));
    ASSERT_TRUE(sim.ok()) << sim.status().ToString();
    sim_ = std::move(*sim);
  }

  // One request. `auth`: "key" sends the test API key, "" nothing, anything else is sent as
  // a bearer token.
  Answer Call(const std::string& method, const std::string& path, const std::string& body = "",
              const std::string& auth = "key", httplib::Headers headers = {},
              milliseconds timeout = milliseconds(20000)) {
    httplib::Client client("127.0.0.1", sim_->port());
    client.set_read_timeout(timeout);
    if (auth == "key") {
      headers.emplace("X-Api-Key", Base64("ci-key:ci-secret"));
    } else if (!auth.empty()) {
      headers.emplace("Authorization", "Bearer " + auth);
    }
    httplib::Request req;
    req.method = method;
    req.path = path;
    req.headers = headers;
    if (!body.empty()) {
      req.body = body;
      req.set_header("Content-Type", "application/json");
    }
    httplib::Result res = client.send(req);
    Answer answer;
    if (!res) {
      return answer;
    }
    answer.status = res->status;
    answer.body = res->body;
    answer.has_content_type = res->has_header("Content-Type");
    answer.content_type = res->get_header_value("Content-Type");
    return answer;
  }

  Answer Control(const std::string& method, const std::string& path, const json& body = {}) {
    return Call(method, "/_sim/" + path, body.is_null() ? "" : body.dump(), "");
  }

  // Adds a VM out of band on the single host `sim`.
  std::string AddVm(const std::string& name, const std::string& os, const std::string& state,
                    int cpu = 2, int memory_mb = 2048, int disk_mb = 10000,
                    const std::string& host = "sim") {
    Answer a = Control("POST", "hosts/" + host + "/vms",
                       {{"name", name},
                        {"os", os},
                        {"cpu", cpu},
                        {"memory_mb", memory_mb},
                        {"disk_mb", disk_mb},
                        {"state", state}});
    EXPECT_EQ(a.status, 201) << a.body;
    return a.Json().value("ID", "");
  }

  std::string StateOf(const std::string& name) {
    Answer a = Call("GET", "/api/v1/machines/" + name);
    return a.Json().value("State", "?");
  }

  std::string Login() {
    Answer a = Call("POST", "/api/v1/auth/token",
                    json{{"username", "root"}, {"password", "Secret-Passw0rd"}}.dump(), "");
    EXPECT_EQ(a.status, 200) << a.body;
    return a.Json().value("token", "");
  }

  static json CreateBody(const std::string& name, const std::string& catalog_id = "UBUNTU-22",
                         bool start = false) {
    return {{"name", name},
            {"start_on_create", start},
            {"catalog_manifest",
             {{"catalog_id", catalog_id},
              {"version", "1.0.0"},
              {"connection", "host=user:pass@catalog.example.com:443"},
              {"specs", {{"cpu", "4"}, {"memory", "8192"}}}}}};
  }

  // Polls a job until it leaves pending/running (zero latencies: a few scheduler ticks). Jobs
  // are read with a login token: the service answers API keys 401 there.
  json WaitJob(const std::string& id) {
    const std::string token = Login();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      json job = Call("GET", "/api/v1/jobs/" + id, "", token).Json();
      const std::string state = job.value("state", "");
      if (state == "completed" || state == "failed") {
        return job;
      }
      std::this_thread::sleep_for(milliseconds(5));
    }
    ADD_FAILURE() << "job " << id << " did not finish";
    return {};
  }

  std::unique_ptr<SimService> sim_;
};

}  // namespace flotilla::hostsim::testing
