#include "reconciler/api/view_cache.h"

#include <array>
#include <cstdio>
#include <exception>
#include <optional>
#include <random>
#include <stdexcept>
#include <utility>

#include "reconciler/api/gzip.h"
#include "reconciler/model/text.h"

namespace flotilla::api {
namespace {

// FNV-1a, 64 bits: the view's key in the ETag (a key may be long; it is not a secret).
uint64_t Fnv1a(std::string_view text) {
  uint64_t hash = 14695981039346656037ULL;
  for (const char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ULL;
  }
  return hash;
}

uint64_t RandomEpoch() {
  std::random_device device;
  return (uint64_t{device()} << 32) ^ uint64_t { device() };
}

bool Is2xx(const Reply& reply) { return reply.status.value_or(200) / 100 == 2; }

// What a request waiting for a warming gets when the warming stopped first: it renders the view
// itself.
struct NotWarmed : std::runtime_error {
  NotWarmed() : std::runtime_error("the view was not warmed") {}
};

}  // namespace

ViewCache::ViewCache(size_t max_views) : max_views_(max_views), epoch_(RandomEpoch()) {}

uint64_t ViewCache::Current(const std::shared_ptr<const Snapshot>& snapshot) {
  const bool same = !snapshot_.owner_before(snapshot) && !snapshot.owner_before(snapshot_);
  if (!same || generation_ == 0) {
    snapshot_ = snapshot;
    ++generation_;
    audience_.clear();
    for (auto& [key, entry] : views_) {
      if (!entry.asked) {
        continue;
      }
      bool gzip = false;
      if (entry.pending.wait_for(std::chrono::seconds{0}) == std::future_status::ready) {
        try {
          gzip = entry.pending.get()->WasGzipped();
        } catch (...) {  // NOLINT(bugprone-empty-catch): a failed rendering was asked all the same
        }
      }
      audience_.push_back(Audience{.key = key, .render = std::move(entry.render), .gzip = gzip});
    }
    views_.clear();  // answers being written hold their own reference
  }
  return generation_;
}

std::string ViewCache::MakeETag(uint64_t generation, std::string_view key) const {
  std::array<char, 64> text{};
  const int n = std::snprintf(
      text.data(), text.size(), "\"%016llx-%llu-%016llx\"", static_cast<unsigned long long>(epoch_),
      static_cast<unsigned long long>(generation), static_cast<unsigned long long>(Fnv1a(key)));
  return std::string(text.data(), static_cast<size_t>(n));
}

std::string ViewCache::ETag(const std::shared_ptr<const Snapshot>& snapshot, std::string_view key) {
  std::lock_guard lock(mu_);
  return MakeETag(Current(snapshot), key);
}

const std::string& CachedView::Gzipped() const {
  if (!reply.gzipped.empty()) {
    gzipped_made_ = true;
    return reply.gzipped;  // made with the rendering
  }
  std::call_once(gzip_once_, [this] {
    gzipped_ = Gzip(reply.parts != nullptr ? reply.parts->Joined() : reply.body);
    gzipped_made_ = true;
  });
  return gzipped_;
}

std::shared_ptr<const CachedView> ViewCache::Get(const std::shared_ptr<const Snapshot>& snapshot,
                                                 std::string_view key, const RenderView& render,
                                                 bool* rendered) {
  if (rendered != nullptr) {
    *rendered = false;
  }
  std::promise<std::shared_ptr<const CachedView>> promise;
  std::string etag;
  uint64_t generation = 0;
  bool keep = false;
  std::optional<Pending> pending;
  {
    std::lock_guard lock(mu_);
    generation = Current(snapshot);
    etag = MakeETag(generation, key);
    if (auto found = views_.find(key); found != views_.end()) {
      found->second.asked = true;
      pending = found->second.pending;
    } else if (views_.size() < max_views_) {
      views_.emplace(
          std::string(key),
          Entry{.pending = promise.get_future().share(), .render = render, .asked = true});
      keep = true;
    }
  }
  if (pending) {
    try {
      return pending->get();  // the kept rendering, or the one under way (waited for unlocked)
    } catch (const NotWarmed&) {
      if (rendered != nullptr) {
        *rendered = true;
      }
      return Render(*snapshot, key, render, generation, std::move(etag), nullptr);
    }
  }
  if (rendered != nullptr) {
    *rendered = true;
  }
  return Render(*snapshot, key, render, generation, std::move(etag), keep ? &promise : nullptr);
}

std::shared_ptr<const CachedView> ViewCache::Render(
    const Snapshot& snapshot, std::string_view key, const RenderView& render, uint64_t generation,
    std::string etag, std::promise<std::shared_ptr<const CachedView>>* kept) {
  // Renders without the lock; a failure reaches the waiting requests, and the entry goes.
  auto forget = [&] {
    std::lock_guard lock(mu_);
    if (generation_ == generation) {
      views_.erase(std::string(key));
    }
  };
  auto view = std::make_shared<CachedView>();
  try {
    view->reply = render(snapshot);
  } catch (...) {
    if (kept != nullptr) {
      kept->set_exception(std::current_exception());
      forget();
    }
    throw;
  }
  if (Is2xx(view->reply)) {
    view->etag = std::move(etag);
    view->reply.headers.emplace_back("ETag", view->etag);
  }
  if (kept != nullptr) {
    kept->set_value(view);
    if (view->etag.empty()) {
      forget();  // errors are rendered again, not kept
    }
  }
  return view;
}

size_t ViewCache::Warm(const std::shared_ptr<const Snapshot>& snapshot,
                       const std::atomic<bool>& stop) {
  struct Job {
    Audience view;
    std::string etag;
    std::promise<std::shared_ptr<const CachedView>> promise;
  };
  std::vector<Job> jobs;
  uint64_t generation = 0;
  {
    std::lock_guard lock(mu_);
    generation = Current(snapshot);
    for (Audience& view : std::exchange(audience_, {})) {
      if (views_.size() >= max_views_ || views_.contains(view.key)) {
        continue;  // a request is already at it
      }
      Job& job = jobs.emplace_back(Job{.view = std::move(view), .etag = {}, .promise = {}});
      job.etag = MakeETag(generation, job.view.key);
      views_.emplace(job.view.key, Entry{.pending = job.promise.get_future().share(),
                                         .render = job.view.render,
                                         .asked = false});
    }
  }
  size_t rendered = 0;
  for (Job& job : jobs) {
    if (stop) {
      // Not rendered: the entry goes; a request waiting for it renders it itself.
      job.promise.set_exception(std::make_exception_ptr(NotWarmed()));
      std::lock_guard lock(mu_);
      if (generation_ == generation) {
        views_.erase(job.view.key);
      }
      continue;
    }
    try {
      const std::shared_ptr<const CachedView> view = Render(
          *snapshot, job.view.key, job.view.render, generation, std::move(job.etag), &job.promise);
      if (job.view.gzip && !view->etag.empty()) {
        (void)view->Gzipped();
      }
      ++rendered;
    } catch (...) {  // NOLINT(bugprone-empty-catch): reached the waiting requests; left to the next
    }
  }
  return rendered;
}

bool IfNoneMatchHits(std::string_view if_none_match, std::string_view etag) {
  if (TrimAscii(if_none_match) == "*") {
    return true;
  }
  while (!if_none_match.empty()) {
    const size_t comma = if_none_match.find(',');
    std::string_view tag = TrimAscii(if_none_match.substr(0, comma));
    if (tag.starts_with("W/")) {
      tag.remove_prefix(2);
    }
    if (!tag.empty() && tag == etag) {
      return true;
    }
    if (comma == std::string_view::npos) {
      break;
    }
    if_none_match.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace flotilla::api
