#pragma once

// What a pass tells whoever watches it (metrics, in `flotilla run`): the controller calls these
// as things happen and knows nothing of how they are kept. api::Telemetry implements it, so the
// API depends on the controller and never the reverse.
//
// Thread-safety: implementations accept calls from any thread.

#include <chrono>
#include <cstddef>
#include <string_view>

namespace flotilla::controller {

class PassObserver {
 public:
  virtual ~PassObserver() = default;

  // One poll of the source: outcome "success", "failure" (unreadable), or "rejected" (the
  // newest revision cannot be used).
  virtual void GitFetch(std::string_view outcome) = 0;
  // A revision was rejected (once per revision).
  virtual void RevisionRejected() = 0;
  // Whether the loop fails static after this poll (the newest revision cannot be used).
  virtual void FailStatic(bool on) = 0;
  // Ledger rows whose provider id the host of the row did not report in the latest pass, while
  // it reports a VM of that name (repaired or not).
  virtual void LedgerMismatches(size_t count) = 0;
  // A run ended: outcome as the store spells it ("succeeded", "failed", ...).
  virtual void RunFinished(std::string_view outcome, std::chrono::milliseconds duration) = 0;
  // An action ended: kind "create", ...; outcome "succeeded", "failed" or "abandoned".
  virtual void ActionFinished(std::string_view kind, std::string_view outcome,
                              std::chrono::milliseconds elapsed) = 0;
  // Deletions the plan of a run held back (deletion budget, fail static).
  virtual void DeletionsDeferred(size_t count) = 0;
};

}  // namespace flotilla::controller
