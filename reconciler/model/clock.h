#pragma once

#include <chrono>
#include <mutex>

namespace flotilla {

// Wall-clock time, behind an interface so that tests drive it (token expiry, host-lost timers,
// retention). Deadlines for I/O use std::chrono::steady_clock directly: they bound waiting and
// are never compared with times that came from outside the process.
//
// Thread-safety: implementations are safe to call from any thread.
class Clock {
 public:
  using TimePoint = std::chrono::system_clock::time_point;

  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
};

// The real clock.
class SystemClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::system_clock::now(); }
};

// A clock that moves only when told to.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start = TimePoint{std::chrono::seconds{1'800'000'000}})
      : now_(start) {}

  TimePoint Now() const override {
    std::lock_guard lock(mu_);
    return now_;
  }
  void Advance(std::chrono::system_clock::duration by) {
    std::lock_guard lock(mu_);
    now_ += by;
  }
  void Set(TimePoint to) {
    std::lock_guard lock(mu_);
    now_ = to;
  }

 private:
  mutable std::mutex mu_;
  TimePoint now_;
};

}  // namespace flotilla
