#include "reconciler/controller/loop.h"

#include <utility>

namespace flotilla::controller {

using std::chrono::steady_clock;

Loop::Loop(Controller& controller, LoopOptions options, std::shared_ptr<spdlog::logger> logger,
           executor::Progress* progress)
    : controller_(controller),
      options_(std::move(options)),
      logger_(std::move(logger)),
      progress_(progress),
      rng_(std::random_device{}()) {}

Loop::~Loop() {
  if (execution_.joinable()) {
    execution_.join();
  }
}

steady_clock::time_point Loop::Jittered(std::chrono::milliseconds period) {
  std::uniform_real_distribution<double> factor(0.9, 1.1);
  return steady_clock::now() + std::chrono::duration_cast<steady_clock::duration>(
                                   std::chrono::duration<double, std::milli>(
                                       static_cast<double>(period.count()) * factor(rng_)));
}

std::shared_future<int64_t> Loop::Trigger(std::string reason, std::string actor) {
  std::lock_guard lock(mu_);
  if (!trigger_) {
    trigger_ = std::move(reason);
    trigger_actor_ = std::move(actor);
  }
  if (!trigger_run_) {
    trigger_run_ = std::make_shared<std::promise<int64_t>>();
    trigger_future_ = trigger_run_->get_future().share();
  }
  fetch_now_ = true;
  cv_.notify_all();
  return trigger_future_;
}

void Loop::Stop() {
  std::lock_guard lock(mu_);
  stopping_ = true;
  execution_stop_.request_stop();
  cv_.notify_all();
}

uint64_t Loop::passes() const {
  std::lock_guard lock(mu_);
  return passes_;
}

bool Loop::WaitForPasses(uint64_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return passes_ >= n; });
}

bool Loop::Run() {
  std::unique_lock lock(mu_);
  auto next_fetch = steady_clock::now();
  auto next_resync = steady_clock::now();
  bool changed = false;  // a revision came into force that no pass has acted on yet
  while (!stopping_) {
    const bool fetch = fetch_now_ || steady_clock::now() >= next_fetch;
    if (fetch) {
      fetch_now_ = false;
      lock.unlock();
      const SyncResult sync = controller_.Sync();
      lock.lock();
      next_fetch = Jittered(options_.interval);
      if (sync.changed) {
        changed = true;
        if (executing_) {
          logger_->info("revision {} supersedes the pass under way; cancelling it",
                        sync.sha.substr(0, 12));
          execution_stop_.request_stop();
        }
      }
    }
    if (verify_now_ && !executing_) {
      verify_now_ = false;
      next_resync = steady_clock::now();
    }
    const bool due = changed || trigger_.has_value() || steady_clock::now() >= next_resync;
    if (!stopping_ && !executing_ && due) {
      const std::string reason = trigger_.has_value() ? *trigger_
                                 : changed            ? std::string("change")
                                                      : options_.trigger_name;
      const bool explicit_pass = trigger_.has_value() || changed;
      const std::string actor = std::exchange(trigger_actor_, std::string());
      trigger_.reset();
      std::shared_ptr<std::promise<int64_t>> told = std::move(trigger_run_);
      trigger_run_.reset();
      changed = false;
      lock.unlock();
      if (options_.before_pass) {
        options_.before_pass();
      }
      Result<Prepared> prepared = controller_.Prepare();
      if (prepared.ok()) {
        prepared->actor = actor;
        if (options_.published) {
          options_.published();
        }
      }
      lock.lock();
      next_resync = Jittered(options_.resync_interval);
      if (stopping_) {
        if (told) {
          told->set_value(0);
        }
        break;  // Stop() came while observing: start nothing
      }
      if (!prepared.ok()) {
        logger_->error("cannot reconcile: {}", prepared.status().message());
        if (explicit_pass) {
          const int64_t run = controller_.RecordFailedRun(reason, prepared.status().message());
          if (told) {
            told->set_value(run);
          }
        }
        ++passes_;
        cv_.notify_all();
      } else if (!prepared->HasWork() && !explicit_pass) {
        logger_->debug("in sync at {}", prepared->sha.substr(0, 12));
        ++passes_;
        cv_.notify_all();
      } else {
        if (execution_.joinable()) {
          execution_.join();  // the previous pass has finished; reap its thread
        }
        executing_ = true;
        execution_stop_ = std::stop_source();
        execution_ =
            std::thread([this, reason, told, token = execution_stop_.get_token(),
                         pass = std::make_shared<Prepared>(std::move(*prepared))]() mutable {
              const PassResult result = controller_.Execute(*pass, reason, progress_,
                                                            std::move(token), [&told](int64_t run) {
                                                              if (told) {
                                                                told->set_value(run);
                                                              }
                                                            });
              logger_->info("run {} ({}): {}: {}", result.run_id, reason,
                            store::ToString(result.outcome), result.message);
              std::lock_guard done(mu_);
              executing_ = false;
              // A pass that changed the fleet is looked at again at once: that confirms it
              // (and publishes what the hosts now hold), and the next step of a rolling update
              // starts without waiting for the timer. A pass that failed keeps the timer, so
              // a failing action is not retried in a tight loop.
              verify_now_ =
                  result.outcome == store::RunOutcome::kSucceeded && !pass->plan.actions.empty();
              ++passes_;
              cv_.notify_all();
            });
      }
      continue;  // look again at once: a fetch may be due, or a superseded pass may be over
    }
    const uint64_t seen = passes_;
    const auto wake = executing_ ? next_fetch : std::min(next_fetch, next_resync);
    cv_.wait_until(lock, wake, [&] {
      return stopping_ || fetch_now_ || passes_ != seen || (!executing_ && trigger_.has_value());
    });
  }
  if (trigger_run_) {
    trigger_run_->set_value(0);  // asked for, never started
    trigger_run_.reset();
  }
  // Shutting down: the pass under way was cancelled in Stop(); give its actions time to end.
  const bool drained = cv_.wait_for(lock, options_.shutdown_timeout, [&] { return !executing_; });
  lock.unlock();
  if (drained) {
    if (execution_.joinable()) {
      execution_.join();
    }
  } else {
    logger_->error(
        "actions still running after {} s; leaving them to the next start",
        std::chrono::duration_cast<std::chrono::seconds>(options_.shutdown_timeout).count());
    execution_.detach();
  }
  return drained;
}

}  // namespace flotilla::controller
