#pragma once

// `flotilla run`: the control loop (DESIGN section 6).
//
// The source is fetched every `interval` (with +-10% jitter, so many loops do not fetch in
// step) and hosts are observed every `resync_interval`. A pass (observe, plan, execute) runs
// when a new revision came into force, when the resync timer fires, or on Trigger(). Only one
// pass executes at a time; fetching goes on while it does, and a new revision cancels the pass
// under way (its unstarted actions are abandoned, waiting creates let go), so the newest
// desired state always wins and a stuck action never blocks a fix. Passes whose plan is empty
// are not recorded as runs unless they were asked for (Trigger) or a revision changed.
//
// A pass whose actions all succeeded is followed at once by another observation (recorded as a
// run only if it finds work, such as the next step of a rolling update), so that what the API
// serves reflects the change without waiting for the resync timer.
//
// Stop() (SIGTERM/SIGINT) stops starting actions, cancels the pass and waits up to
// `shutdown_timeout` for actions under way to finish; Run() then returns.
//
// Thread-safety: Trigger and Stop may be called from any thread while Run runs.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stop_token>
#include <string>
#include <thread>

#include <spdlog/logger.h>

#include "reconciler/controller/controller.h"

namespace flotilla::controller {

struct LoopOptions {
  std::chrono::milliseconds interval{std::chrono::seconds{60}};         // fetch
  std::chrono::milliseconds resync_interval{std::chrono::seconds{30}};  // observe and plan
  std::chrono::milliseconds shutdown_timeout{std::chrono::seconds{60}};
  std::string trigger_name = "timer";  // the trigger recorded for timer passes
  // Called on the loop's thread before each pass prepares (the run command re-reads the API's
  // rotated secrets there); may be empty.
  std::function<void()> before_pass;
  // Called on the loop's thread after each pass prepared, once the controller published the
  // pass's snapshot (the API renders the views clients read for it); may be empty.
  std::function<void()> published;
};

class Loop {
 public:
  // `controller` and `progress` (may be null) must outlive the loop.
  Loop(Controller& controller, LoopOptions options, std::shared_ptr<spdlog::logger> logger,
       executor::Progress* progress = nullptr);
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Runs until Stop(). True when every action under way finished before the shutdown timeout;
  // false when some were still running (they are settled by the next start's recovery).
  bool Run();

  // Asks for a pass now (and a fetch first). `reason` is recorded as the run's trigger, `actor`
  // (the API token's name, if one asked) as who asked. Triggers that arrive before the pass
  // starts share it (the first reason and actor win). The future yields the id of the run
  // recorded for that pass as soon as it is recorded (before its actions run), or 0 if none was
  // (the loop stopped first, or the store failed).
  std::shared_future<int64_t> Trigger(std::string reason, std::string actor = {});
  void Stop();

  // Passes executed so far (recorded or not), for tests and the API.
  uint64_t passes() const;
  // Waits until passes() >= n or the timeout; true if reached.
  bool WaitForPasses(uint64_t n, std::chrono::milliseconds timeout) const;

 private:
  std::chrono::steady_clock::time_point Jittered(std::chrono::milliseconds period);

  Controller& controller_;
  LoopOptions options_;
  std::shared_ptr<spdlog::logger> logger_;
  executor::Progress* progress_;
  std::mt19937_64 rng_;

  mutable std::mutex mu_;  // guards everything below
  mutable std::condition_variable cv_;
  bool stopping_ = false;
  std::optional<std::string> trigger_;  // a pass was asked for (runs once none is under way)
  std::string trigger_actor_;           // by this API token (name); empty: not by a token
  std::shared_ptr<std::promise<int64_t>> trigger_run_;  // told the run id of that pass
  std::shared_future<int64_t> trigger_future_;
  bool fetch_now_ = false;  // a fetch was asked for
  bool executing_ = false;
  bool verify_now_ = false;  // the pass that just ended changed the fleet: observe again now
  std::stop_source execution_stop_;
  uint64_t passes_ = 0;
  std::thread execution_;
};

}  // namespace flotilla::controller
