#pragma once

// Waiting for a condition in tests: readiness, not a fixed sleep.

#include <chrono>
#include <thread>

namespace flotilla::testing {

// Polls `ready` (every 20 ms) until it holds or `limit` passes; whether it held. Give `limit`
// room for a loaded machine under sanitizers: it bounds a failure, it does not time success.
template <typename F>
bool WaitUntil(F ready, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (ready()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return ready();
}

}  // namespace flotilla::testing
