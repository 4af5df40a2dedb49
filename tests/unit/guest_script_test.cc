// The detached startup-script protocol (providers/parallels/guest_script.h), run for real: each
// command goes through ExecCommand's transport to /bin/sh, as the service's `prlctl exec` runs
// `env K='V' bash -c '<command>'`, with a scratch HOME standing in for the guest's.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "providers/parallels/guest_script.h"
#include "providers/parallels/wire.h"
#include "tests/support/process.h"
#include "tests/support/shell.h"

namespace flotilla::providers::parallels {
namespace {

using testing::ScratchDir;

// Runs `script` the way the service would: bash -c around ExecCommand's form, HOME = `home`.
std::string RunInGuest(const std::string& home, const std::string& script) {
  Result<std::string> command = ExecCommand(script, {});
  EXPECT_TRUE(command.ok());
  const std::string line = "HOME='" + home + "' env FLOTILLA_EXEC='1' bash -c '" + *command + "'";
  std::string out;
  FILE* pipe = ::popen(line.c_str(), "r");
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0;) {
    out.append(buffer, n);
  }
  ::pclose(pipe);
  return out;
}

ScriptState WaitDone(const std::string& home, const std::string& run) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    Result<ScriptState> state = ParsePoll(RunInGuest(home, PollScript(run)));
    EXPECT_TRUE(state.ok()) << state.status().ToString();
    if (!state.ok() || state->kind != ScriptState::Kind::kRunning) {
      return state.ok() ? *state : ScriptState{};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "the script did not finish";
  return {};
}

TEST(GuestScriptTest, ARunIsLaunchedOnceAndItsOutcomeKept) {
  ScratchDir home;
  const std::map<std::string, std::string> env = {{"TOKEN", "it's a secret"}};
  const std::string script = "echo \"start $TOKEN\"; read -r x || true; echo oops >&2; exit 3";
  const std::string run = ScriptRunId("vm-1", script, env);
  EXPECT_EQ(run.size(), 16u);
  EXPECT_NE(run, ScriptRunId("vm-2", script, env));
  EXPECT_NE(run, ScriptRunId("vm-1", script, {{"TOKEN", "other"}}));
  Result<std::string> launch = LaunchScript(run, script, env);
  ASSERT_TRUE(launch.ok());

  EXPECT_EQ(ParsePoll(RunInGuest(home.path().string(), PollScript(run)))->kind,
            ScriptState::Kind::kMissing);
  EXPECT_NE(RunInGuest(home.path().string(), *launch).find("launched"), std::string::npos);
  // A launch repeated (after a lost answer) finds the first run.
  EXPECT_NE(RunInGuest(home.path().string(), *launch).find("running"), std::string::npos);
  const ScriptState done = WaitDone(home.path().string(), run);
  EXPECT_EQ(done.kind, ScriptState::Kind::kDone);
  EXPECT_EQ(done.exit_code, 3);
  EXPECT_EQ(done.stdout_text, "start it's a secret\n");
  EXPECT_EQ(done.stderr_text, "oops\n");
  RunInGuest(home.path().string(), CleanScript(run));
  EXPECT_EQ(ParsePoll(RunInGuest(home.path().string(), PollScript(run)))->kind,
            ScriptState::Kind::kMissing);
}

TEST(GuestScriptTest, ALongScriptOutlivesTheCommandThatStartedIt) {
  ScratchDir home;
  const std::string script = "sleep 1; echo finished";
  const std::string run = ScriptRunId("vm", script, {});
  const auto started = std::chrono::steady_clock::now();
  EXPECT_NE(RunInGuest(home.path().string(), *LaunchScript(run, script, {})).find("launched"),
            std::string::npos);
  // The launch returns at once; the script runs on.
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(900));
  EXPECT_EQ(ParsePoll(RunInGuest(home.path().string(), PollScript(run)))->kind,
            ScriptState::Kind::kRunning);
  const ScriptState done = WaitDone(home.path().string(), run);
  EXPECT_EQ(done.exit_code, 0);
  EXPECT_EQ(done.stdout_text, "finished\n");
}

TEST(GuestScriptTest, PollAnswersWithoutAStatusLineAreRefused) {
  EXPECT_FALSE(ParsePoll("").ok());
  EXPECT_FALSE(ParsePoll("done x").ok());
  EXPECT_FALSE(ParsePoll("done 1 x!! x").ok());
  Result<ScriptState> with_banner = ParsePoll("Last login: today\ndone 0 xaGk= x\n");
  ASSERT_TRUE(with_banner.ok());
  EXPECT_EQ(with_banner->stdout_text, "hi");
  EXPECT_EQ(with_banner->stderr_text, "");
}

}  // namespace
}  // namespace flotilla::providers::parallels
