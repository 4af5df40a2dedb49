#pragma once

// GET /api/v1/vms without a filter, the API's largest view (50 MB of JSON at 100,000 VMs),
// rendered in pieces that are kept from one snapshot to the next.
//
// The view cache (view_cache.h) renders a view once per snapshot, but every pass publishes a
// snapshot, so a dashboard that reads the VM list after each pass had it rendered (about 0.4 s
// of CPU at 100,000 VMs) and compressed (0.2 s) in full once per pass, beside the loop. Most
// passes change few VMs, if any. So the list is cut into pieces of up to kHostsPerPiece
// consecutive hosts of one pool, and each piece keeps, besides its text and its compressed
// form, the values its rows show (serialised). A piece is rendered again only when those
// values differ from the ones it was rendered from: it is byte for byte what a full rendering
// writes there, with no hash that could collide. The answer is then put together from the
// pieces: the text as parts written one after the other (body_parts.h), not copied; the gzip
// member by joining the pieces' raw deflate streams
// (each ends on a byte boundary, with no final block, and refers to nothing before it) under
// one gzip header, with the checksum combined from theirs (zlib's crc32_combine).
//
// Memory: the pieces' text and compressed form (about as much as one rendering), shared with
// the answers the view cache keeps.
//
// Thread-safety: Render may be called from any thread; calls are serialised.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "reconciler/api/body_parts.h"
#include "reconciler/controller/snapshot.h"

namespace flotilla::api {

class VmsPieces {
 public:
  // Hosts per piece, in the order of their pool's spec (hosts with no observation count, so a
  // host that goes or comes back moves no boundary of another pool).
  static constexpr size_t kHostsPerPiece = 16;

  struct Rendered {
    // Joined, the same bytes as VmsText(snapshot, {}); never null.
    std::shared_ptr<const BodyParts> body;
    std::string gzipped;  // `body` as one gzip member (RFC 1952); not Gzip(body)'s bytes
    size_t pieces = 0;    // how many pieces the answer was put together from
    size_t rendered = 0;  // how many of them were rendered (the others were kept)
  };

  // The answer of GET /api/v1/vms for `snapshot`. Throws std::runtime_error when zlib fails (out
  // of memory); the pieces kept before stay valid.
  Rendered Render(const controller::Snapshot& snapshot);

 private:
  struct Piece {
    std::string values;  // what its rows show, serialised (pool, hosts, then each row)
    std::shared_ptr<const std::string> text;  // its rows as VmsText writes them (JsonText(2))
    std::string deflated;                     // `text` as raw deflate, ending with a sync flush
    uint32_t crc = 0;                         // crc32 of `text`
  };

  std::mutex mu_;  // one Render at a time; guards what follows
  // By pool name, then a NUL, then the piece's number in its pool.
  std::unordered_map<std::string, Piece> pieces_;
};

}  // namespace flotilla::api
