#include "reconciler/api/vms_pieces.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "reconciler/api/json_text.h"
#include "reconciler/api/views.h"

namespace flotilla::api {
namespace {

// The serialised values of a piece: every field length-prefixed or fixed-size, each host and
// row after a tag of its own, so that two different pieces never serialise alike.
void Put(std::string& out, uint64_t n) {
  std::array<char, sizeof n> bytes{};
  std::memcpy(bytes.data(), &n, sizeof n);
  out.append(bytes.data(), bytes.size());
}

void Put(std::string& out, std::string_view text) {
  Put(out, uint64_t{text.size()});
  out.append(text);
}

void PutRow(std::string& out, const VmRow& row) {
  out += 'V';
  Put(out, uint64_t{row.vm.cpu});
  Put(out, row.vm.disk_bytes);
  Put(out, row.vm.memory_bytes);
  Put(out, row.vm.id);
  Put(out, row.vm.ip);
  Put(out, row.vm.name);
  Put(out, row.os);
  Put(out, row.state);
  out += static_cast<char>((row.managed ? 1 : 0) | (row.outdated ? 2 : 0) |
                           (row.outdated.value_or(false) ? 4 : 0));
  Put(out, row.vmset);
  Put(out, row.template_hash);
}

// Raw deflate (no header), one stream reused for every piece of a rendering.
class RawDeflate {
 public:
  RawDeflate() {
    // -15: raw deflate with zlib's largest window; memory level 8 and the default level and
    // strategy are what Gzip (gzip.h) uses.
    if (deflateInit2(&stream_, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
      throw std::runtime_error("zlib: deflateInit2 failed");
    }
  }
  ~RawDeflate() { deflateEnd(&stream_); }
  RawDeflate(const RawDeflate&) = delete;
  RawDeflate& operator=(const RawDeflate&) = delete;

  // `text` compressed on its own (it refers to nothing compressed before it), ending on a byte
  // boundary with a sync flush, or with the final block when `last`.
  std::string Compress(std::string_view text, bool last) {
    if (text.size() > std::numeric_limits<uInt>::max()) {
      throw std::runtime_error("a piece of the VM list is too large to compress");
    }
    if (deflateReset(&stream_) != Z_OK) {
      throw std::runtime_error("zlib: deflateReset failed");
    }
    stream_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
    stream_.avail_in = static_cast<uInt>(text.size());
    std::string out(text.size() / 16 + 64, '\0');  // grown when it compresses worse
    size_t done = 0;
    for (;;) {
      const size_t room = std::min<size_t>(out.size() - done, std::numeric_limits<uInt>::max());
      stream_.next_out = reinterpret_cast<Bytef*>(out.data() + done);
      stream_.avail_out = static_cast<uInt>(room);
      const int rc = deflate(&stream_, last ? Z_FINISH : Z_SYNC_FLUSH);
      done += room - stream_.avail_out;
      if (rc == Z_STREAM_ERROR) {
        throw std::runtime_error("zlib: deflate failed");
      }
      // zlib asks to be called again, with more room, while it filled all it was given.
      if (last ? rc == Z_STREAM_END : stream_.avail_out != 0) {
        break;
      }
      out.resize(out.size() * 2);
    }
    out.resize(done);
    return out;
  }

 private:
  z_stream stream_{};
};

uint32_t Crc32(uint32_t crc, std::string_view text) {
  return static_cast<uint32_t>(
      crc32(crc, reinterpret_cast<const Bytef*>(text.data()), static_cast<uInt>(text.size())));
}

void PutLittleEndian32(std::string& out, uint32_t n) {
  for (int i = 0; i < 4; ++i) {
    out += static_cast<char>((n >> (8 * i)) & 0xff);
  }
}

}  // namespace

VmsPieces::Rendered VmsPieces::Render(const controller::Snapshot& snapshot) {
  const OwnerIndex owners(snapshot.ledger);
  const TemplateHashes current = CurrentTemplateHashes(snapshot);
  RawDeflate deflate;
  Rendered result;
  std::lock_guard lock(mu_);
  std::unordered_map<std::string, Piece> next;
  std::vector<const Piece*> order;
  std::vector<VmRow> rows;
  std::string values;
  std::string key;
  for (const HostPool& pool : snapshot.desired.pools) {
    for (size_t first = 0; first < pool.hosts.size(); first += kHostsPerPiece) {
      values.clear();
      rows.clear();
      Put(values, pool.meta.name);
      for (size_t i = first; i < std::min(first + kHostsPerPiece, pool.hosts.size()); ++i) {
        const HostSpec& spec = pool.hosts[i];
        const ObservedHost* host = snapshot.observed.FindHost(spec.name);
        if (host == nullptr) {
          continue;
        }
        const std::string_view host_state = HostState(host);
        values += 'H';
        Put(values, spec.name);
        Put(values, host_state);
        for (const VmInfo& vm : host->vms) {
          if (vm.pending_create_for.empty()) {
            rows.push_back(VmRowOf(vm, owners.Owner(vm, spec.name), current, pool.meta.name,
                                   spec.name, host_state));
            PutRow(values, rows.back());
          }
        }
      }
      key = pool.meta.name;
      key += '\0';
      key += std::to_string(first / kHostsPerPiece);
      auto kept = pieces_.extract(key);
      if (kept.empty() || kept.mapped().values != values) {
        Piece piece{.values = values, .text = nullptr, .deflated = {}, .crc = 0};
        if (!rows.empty()) {
          JsonText out(2);
          for (const VmRow& row : rows) {
            WriteVmRow(out, row);
          }
          auto text = std::make_shared<const std::string>(out.Piece());
          piece.crc = Crc32(0, *text);
          piece.deflated = deflate.Compress(*text, false);
          piece.text = std::move(text);
        }
        const auto placed = next.emplace(key, std::move(piece));
        order.push_back(&placed.first->second);
        ++result.rendered;
      } else {
        const auto placed = next.insert(std::move(kept));
        order.push_back(&placed.position->second);
      }
      ++result.pieces;
    }
  }

  JsonText head;
  head.BeginObject();
  head.Key("observed_at");
  head.String(FormatTime(snapshot.observed_at));
  head.Key("vms");
  head.BeginArray();
  auto header = std::make_shared<const std::string>(head.Piece());
  auto body = std::make_shared<BodyParts>();
  body->Add(header);
  size_t deflated = 0;
  for (const Piece* piece : order) {
    deflated += piece->deflated.size() + 8;
  }
  // RFC 1952: magic, deflate, no flags, no time, no extra flags, made on Unix.
  result.gzipped.reserve(deflated + 64);
  result.gzipped.assign("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10);
  result.gzipped += deflate.Compress(*header, false);
  uint32_t crc = Crc32(0, *header);
  const auto comma = std::make_shared<const std::string>(",");
  const std::string comma_deflated = deflate.Compress(*comma, false);
  bool any = false;
  for (const Piece* piece : order) {
    if (piece->text == nullptr) {
      continue;  // no row
    }
    if (any) {
      body->Add(comma);
      result.gzipped += comma_deflated;
      crc = Crc32(crc, *comma);
    }
    any = true;
    body->Add(piece->text);
    result.gzipped += piece->deflated;
    crc = static_cast<uint32_t>(
        crc32_combine(crc, piece->crc, static_cast<z_off_t>(piece->text->size())));
  }
  auto footer = std::make_shared<const std::string>(any ? "\n  ]\n}\n" : "]\n}\n");
  body->Add(footer);
  result.gzipped += deflate.Compress(*footer, true);
  crc = Crc32(crc, *footer);
  PutLittleEndian32(result.gzipped, crc);
  PutLittleEndian32(result.gzipped, static_cast<uint32_t>(body->size()));  // mod 2^32
  result.body = std::move(body);
  pieces_ = std::move(next);
  return result;
}

}  // namespace flotilla::api
