#pragma once

// A loop for API server tests and benchmarks: its latest snapshot is whatever was last
// published, and a reconcile request is accepted and does nothing (run id 0).

#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "reconciler/api/server.h"

namespace flotilla::testing {

class SnapshotBackend final : public api::Backend {
 public:
  std::shared_ptr<const controller::Snapshot> Latest() const override {
    std::lock_guard lock(mu_);
    return latest_;
  }
  std::shared_future<int64_t> Reconcile(std::string /*reason*/,
                                        std::optional<PassApproval> /*approval*/,
                                        std::string /*actor*/) override {
    std::promise<int64_t> none;
    none.set_value(0);
    return none.get_future().share();
  }
  void Publish(std::shared_ptr<const controller::Snapshot> snapshot) {
    std::lock_guard lock(mu_);
    latest_ = std::move(snapshot);
  }
  void Publish(controller::Snapshot snapshot) {
    Publish(std::make_shared<const controller::Snapshot>(std::move(snapshot)));
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const controller::Snapshot> latest_;
};

}  // namespace flotilla::testing
