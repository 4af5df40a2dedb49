#pragma once

// The answers of the API's snapshot views (GET /api/v1/hosts, /vms, ...: the routes whose Route
// has a `view`), rendered once per snapshot and shared by every request. A snapshot is immutable
// once published (controller/snapshot.h), so its rendering of a view with given query parameters
// never changes: the cache keeps the renderings of the current snapshot only and drops them when
// a request brings a newer one (memory: at most `max_views` renderings of one snapshot, besides
// the answers being written).
//
// Every view answer carries a strong ETag made of a random number drawn when the cache is made
// (so an ETag of an earlier process never matches), the generation the cache gave the snapshot
// (1, 2, ... in the order the cache first saw each snapshot) and a hash of the view's key (its
// path and the query parameters it reads). An ETag is the same exactly when the bytes are: one
// generation is one snapshot. The ETag is known without rendering, so an If-None-Match that
// matches is answered 304 without rendering.
//
// Authorization is not the cache's: the server admits a request (routes.h Admit) before it asks
// the cache for anything, a 304 included.
//
// Thread-safety: every call from any thread. A view not yet rendered is rendered by the first
// request that asks for it (outside the lock); requests for the same view meanwhile wait for that
// rendering instead of repeating it.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "reconciler/api/routes.h"

namespace flotilla::api {

// What the cache keeps of one view of one snapshot.
struct CachedView {
  Reply reply;       // as the handler rendered it, ETag included when it is a 2xx
  std::string etag;  // "\"...\"", quotes included; empty for an answer that is not 2xx

  // reply.body compressed with gzip (gzip.h), made by the first request that takes gzip and
  // kept: one compression per view and snapshot, whatever the number of clients.
  const std::string& Gzipped() const;

 private:
  mutable std::once_flag gzip_once_;
  mutable std::string gzipped_;
};

class ViewCache {
 public:
  // `max_views`: renderings kept per snapshot (distinct filters); a view beyond them is rendered
  // for each request (still with its ETag and 304s).
  explicit ViewCache(size_t max_views = 32);
  ViewCache(const ViewCache&) = delete;
  ViewCache& operator=(const ViewCache&) = delete;

  // The ETag of view `key` of `snapshot` (REQUIRES: not null). When `snapshot` is not the one
  // whose renderings are kept, it becomes it: it gets the next generation and the renderings of
  // the previous one are dropped.
  std::string ETag(const std::shared_ptr<const Snapshot>& snapshot, std::string_view key);

  // View `key` of `snapshot`: the kept rendering, or `render()`'s, kept when it is a 2xx (with
  // its ETag added to its headers) and there is room. An exception of `render` reaches every
  // request waiting for that rendering, and nothing is kept.
  std::shared_ptr<const CachedView> Get(const std::shared_ptr<const Snapshot>& snapshot,
                                        std::string_view key, const std::function<Reply()>& render);

 private:
  using Pending = std::shared_future<std::shared_ptr<const CachedView>>;

  // REQUIRES: mu_ held. Makes `snapshot` the current one if it is not; returns its generation.
  uint64_t Current(const std::shared_ptr<const Snapshot>& snapshot);
  std::string MakeETag(uint64_t generation, std::string_view key) const;

  const size_t max_views_;
  const uint64_t epoch_;  // random, drawn once: ETags of another process never match
  std::mutex mu_;         // guards what follows
  // Whose renderings `views_` holds, compared by owner (its control block outlives it, so no
  // later snapshot can be taken for it); never kept alive by the cache.
  std::weak_ptr<const Snapshot> snapshot_;
  uint64_t generation_ = 0;
  std::map<std::string, Pending, std::less<>> views_;
};

// Whether an If-None-Match header value (a list of entity tags, or "*") matches `etag`, with the
// weak comparison RFC 9110 asks for (a W/ prefix is ignored).
bool IfNoneMatchHits(std::string_view if_none_match, std::string_view etag);

}  // namespace flotilla::api
