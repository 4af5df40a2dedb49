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
// Warming: the views requests asked of one snapshot (its audience) are the views they will ask of
// the next. Warm(next), called once the loop published it (by the server's own thread), renders
// those views for it, and compresses those some client took gzip for, so that the first request
// after a pass finds its view ready instead of rendering it on its own time; a request for a view
// being warmed waits for that rendering. A view only warmed and asked by no request is not warmed
// again for the snapshot after: views nobody reads any more stop costing a rendering per pass.
//
// Thread-safety: every call from any thread. A view not yet rendered is rendered by the first
// request that asks for it (outside the lock); requests for the same view meanwhile wait for that
// rendering instead of repeating it.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "reconciler/api/routes.h"

namespace flotilla::api {

// What the cache keeps of one view of one snapshot.
struct CachedView {
  Reply reply;       // as the handler rendered it, ETag included when it is a 2xx
  std::string etag;  // "\"...\"", quotes included; empty for an answer that is not 2xx

  // reply.body compressed with gzip (gzip.h), made by the first request that takes gzip and
  // kept: one compression per view and snapshot, whatever the number of clients. When the
  // rendering made it (reply.gzipped), that.
  const std::string& Gzipped() const;
  // Whether Gzipped() was asked for (a client took gzip).
  bool WasGzipped() const { return gzipped_made_.load(); }

 private:
  mutable std::once_flag gzip_once_;
  mutable std::string gzipped_;
  mutable std::atomic<bool> gzipped_made_{false};
};

// How a view is rendered for a snapshot. Self-contained (it owns copies of what it reads of the
// request): the cache keeps it with the view, and Warm calls it for the next snapshot, from
// another thread. It must not hold a snapshot (the cache keeps none alive).
using RenderView = std::function<Reply(const Snapshot&)>;

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

  // View `key` of `snapshot` for a request: the kept rendering, or `render(*snapshot)`'s, kept
  // when it is a 2xx (with its ETag added to its headers) and there is room. An exception of
  // `render` reaches every request waiting for that rendering, and nothing is kept. The view
  // joins the snapshot's audience (see Warm). `rendered`, if not null, is set to whether this
  // call rendered it.
  std::shared_ptr<const CachedView> Get(const std::shared_ptr<const Snapshot>& snapshot,
                                        std::string_view key, const RenderView& render,
                                        bool* rendered = nullptr);

  // Makes `snapshot` (REQUIRES: not null; the newest the loop published) the current one and
  // renders for it the audience of the snapshot before it that no request has asked for yet,
  // one view after another, each compressed too when a client took it compressed. Stops early,
  // between views, once `stop` is true. Returns how many views it rendered. A view that fails
  // to render is left to the next request (which renders it again and sees the error).
  size_t Warm(const std::shared_ptr<const Snapshot>& snapshot, const std::atomic<bool>& stop);

 private:
  using Pending = std::shared_future<std::shared_ptr<const CachedView>>;
  // A view of the current snapshot: its rendering (or the one under way) and how it was made.
  struct Entry {
    Pending pending;
    RenderView render;
    bool asked = false;  // by a request (not only warmed)
  };
  // A view the previous snapshot's requests asked for, to warm for the current one.
  struct Audience {
    std::string key;
    RenderView render;
    bool gzip = false;  // a client took it compressed
  };

  // REQUIRES: mu_ held. Makes `snapshot` the current one if it is not (its audience is taken
  // from the views asked of the one before); returns its generation.
  uint64_t Current(const std::shared_ptr<const Snapshot>& snapshot);
  std::string MakeETag(uint64_t generation, std::string_view key) const;
  // Renders view `key` of `snapshot` with `render` and settles `promise` (when `kept`: the
  // entry was made for it) with the rendering or the exception, which is then rethrown. A view
  // that is not a 2xx, or failed, is dropped from the current views.
  std::shared_ptr<const CachedView> Render(const Snapshot& snapshot, std::string_view key,
                                           const RenderView& render, uint64_t generation,
                                           std::string etag,
                                           std::promise<std::shared_ptr<const CachedView>>* kept);

  const size_t max_views_;
  const uint64_t epoch_;  // random, drawn once: ETags of another process never match
  std::mutex mu_;         // guards what follows
  // Whose renderings `views_` holds, compared by owner (its control block outlives it, so no
  // later snapshot can be taken for it); never kept alive by the cache.
  std::weak_ptr<const Snapshot> snapshot_;
  uint64_t generation_ = 0;
  std::map<std::string, Entry, std::less<>> views_;
  std::vector<Audience> audience_;  // of the previous snapshot, not yet warmed or asked
};

// Whether an If-None-Match header value (a list of entity tags, or "*") matches `etag`, with the
// weak comparison RFC 9110 asks for (a W/ prefix is ignored).
bool IfNoneMatchHits(std::string_view if_none_match, std::string_view etag);

}  // namespace flotilla::api
