#include "reconciler/api/view_cache.h"

#include <array>
#include <cstdio>
#include <exception>
#include <optional>
#include <random>
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

}  // namespace

ViewCache::ViewCache(size_t max_views) : max_views_(max_views), epoch_(RandomEpoch()) {}

uint64_t ViewCache::Current(const std::shared_ptr<const Snapshot>& snapshot) {
  const bool same = !snapshot_.owner_before(snapshot) && !snapshot.owner_before(snapshot_);
  if (!same || generation_ == 0) {
    snapshot_ = snapshot;
    ++generation_;
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
  std::call_once(gzip_once_, [this] { gzipped_ = Gzip(reply.body); });
  return gzipped_;
}

std::shared_ptr<const CachedView> ViewCache::Get(const std::shared_ptr<const Snapshot>& snapshot,
                                                 std::string_view key,
                                                 const std::function<Reply()>& render) {
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
      pending = found->second;
    } else if (views_.size() < max_views_) {
      views_.emplace(std::string(key), promise.get_future().share());
      keep = true;
    }
  }
  if (pending) {
    return pending->get();  // the kept rendering, or the one under way (waited for unlocked)
  }
  // Renders without the lock; a failure reaches the waiting requests, and the entry goes.
  auto forget = [&] {
    std::lock_guard lock(mu_);
    if (generation_ == generation) {
      views_.erase(std::string(key));
    }
  };
  auto view = std::make_shared<CachedView>();
  try {
    view->reply = render();
  } catch (...) {
    if (keep) {
      promise.set_exception(std::current_exception());
      forget();
    }
    throw;
  }
  if (Is2xx(view->reply)) {
    view->etag = std::move(etag);
    view->reply.headers.emplace_back("ETag", view->etag);
  }
  if (keep) {
    promise.set_value(view);
    if (view->etag.empty()) {
      forget();  // errors are rendered again, not kept
    }
  }
  return view;
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
