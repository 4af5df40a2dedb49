#pragma once

// The set of simulated hosts and what they share: the seeded random source, the scheduler that
// runs asynchronous work (create jobs) without holding an HTTP thread, interruptible sleeps,
// and the state file.
//
// Thread-safety: all public methods may be called from any thread once constructed. Hosts are
// created in the constructor and live as long as the world; the host list never changes.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <queue>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "providers/hostsim/sim_host.h"
#include "providers/hostsim/sim_options.h"

namespace flotilla::hostsim {

class SimWorld final : public SimEnv {
 public:
  // REQUIRES: Validate(options).ok(). Builds the hosts (one named options.name, or
  // options.hosts named sim-000..) and starts the scheduler thread. Call LoadState() before
  // serving requests to restore a state file.
  explicit SimWorld(SimOptions options);
  ~SimWorld() override;
  SimWorld(const SimWorld&) = delete;
  SimWorld& operator=(const SimWorld&) = delete;

  const SimOptions& options() const { return options_; }
  // True when hosts are served under /h/<name>/ (options.hosts >= 1).
  bool multi_host() const { return options_.hosts > 0; }
  const std::vector<std::unique_ptr<SimHost>>& hosts() const { return hosts_; }
  // nullptr when no host has that name.
  SimHost* FindHost(std::string_view name) const;

  // Makes the guests' folder (--guest-exec shell), loads the state file and starts the hosts'
  // periodic work. Call once, before serving requests.
  Status Open();
  // Loads options.state_file when it exists (a missing file is not an error). Hosts absent from
  // the file keep their initial state; entries for unknown hosts are ignored.
  Status LoadState();
  // Writes every host's snapshot to options.state_file atomically (temp file + rename).
  // OK and a no-op without a state file.
  Status SaveState();

  // Stops: wakes every sleeper and waiter (they return early), drops scheduled work, joins the
  // scheduler and saves the state. Idempotent; the destructor calls it.
  void Shutdown();
  bool shutting_down() const { return stopping_.load(); }

  // SimEnv.
  std::string NewUuid() override;
  std::string NewToken() override;
  Duration Latency(std::string_view op) override;
  bool Chance(double p) override;
  void Sleep(Duration d) override;
  void Schedule(Duration delay, std::function<void()> task) override;
  void OnMutation() override;
  const GuestShell* Guests() override { return guests_.get(); }

 private:
  struct Task {
    std::chrono::steady_clock::time_point due;
    uint64_t seq = 0;
    std::function<void()> fn;
    bool operator>(const Task& other) const {
      return due != other.due ? due > other.due : seq > other.seq;
    }
  };
  void RunScheduler();

  const SimOptions options_;
  std::unique_ptr<GuestShell> guests_;  // null with --guest-exec succeed
  std::vector<std::unique_ptr<SimHost>> hosts_;

  std::mutex rng_mu_;
  std::mt19937_64 rng_;        // seeded: UUIDs, jitter, random faults
  std::mt19937_64 token_rng_;  // from std::random_device: tokens

  std::atomic<bool> stopping_{false};
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;  // wakes Sleep() on shutdown

  std::mutex sched_mu_;
  std::condition_variable sched_cv_;
  std::priority_queue<Task, std::vector<Task>, std::greater<Task>> tasks_;
  uint64_t next_seq_ = 0;
  std::thread scheduler_;

  std::mutex save_mu_;  // one writer of the state file at a time
};

}  // namespace flotilla::hostsim
