// flotilla-hostsim's run-time chaos (POST /_sim/chaos): random 500s before a call runs, and
// answers lost after it ran (a connection broken mid-answer, an answer held back past the
// client's timeout).

#include <chrono>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/unit/hostsim_fixture.h"

namespace flotilla::hostsim {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using testing::Answer;
using testing::HostsimTest;

TEST_F(HostsimTest, ChaosFaultRateReplacesTheCommandLinesAndCanBeTurnedOff) {
  Start();
  ASSERT_EQ(Control("POST", "chaos", {{"fault_rate", 1.0}}).status, 200);
  EXPECT_EQ(Call("GET", "/api/v1/machines").status, 500);
  ASSERT_EQ(Control("POST", "chaos", json::object()).status, 200);
  EXPECT_EQ(Call("GET", "/api/v1/machines").status, 200);
  EXPECT_EQ(Control("POST", "chaos", {{"drop_rate", 2}}).status, 400);
  EXPECT_EQ(Control("POST", "chaos", {{"host", "nope"}}).status, 404);
}

TEST_F(HostsimTest, ADroppedAnswerBreaksTheConnectionButTheCallRan) {
  Start();
  AddVm("vm", "linux", "stopped");
  ASSERT_EQ(Control("POST", "chaos", {{"drop_rate", 1.0}}).status, 200);
  EXPECT_EQ(Call("PUT", "/api/v1/machines/vm/start").status, 0);  // no answer
  ASSERT_EQ(Control("POST", "chaos", json::object()).status, 200);
  EXPECT_EQ(StateOf("vm"), "running");
  EXPECT_EQ(Control("GET", "counters").Json()["sim"]["start"]["0"], 1);
}

TEST_F(HostsimTest, ASlowAnswerOutlivesTheClientsTimeoutButTheCallRan) {
  Start();
  AddVm("vm", "linux", "stopped");
  ASSERT_EQ(Control("POST", "chaos", {{"slow_rate", 1.0}, {"slow_ms", 1500}}).status, 200);
  EXPECT_EQ(Call("PUT", "/api/v1/machines/vm/start", "", "key", {}, milliseconds(200)).status, 0);
  ASSERT_EQ(Control("POST", "chaos", json::object()).status, 200);
  EXPECT_EQ(StateOf("vm"), "running");
}

}  // namespace
}  // namespace flotilla::hostsim
