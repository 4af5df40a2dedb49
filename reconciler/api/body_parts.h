#pragma once

// An answer's body kept in parts (vms_pieces.h): written to the client one part after the other
// from where they are kept, never joined into one string, so that a large view put together from
// kept pieces costs no copy of itself (50 MB at 100,000 VMs, most of it page faults of a buffer
// that size). The parts are immutable and shared: an answer being written holds them.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace flotilla::api {

class BodyParts {
 public:
  void Add(std::shared_ptr<const std::string> part) {
    size_ += part->size();
    parts_.push_back(std::move(part));
  }
  size_t size() const { return size_; }
  const std::vector<std::shared_ptr<const std::string>>& parts() const { return parts_; }
  // The parts joined (for answers written whole, and for tests).
  std::string Joined() const {
    std::string out;
    out.reserve(size_);
    for (const auto& part : parts_) {
      out += *part;
    }
    return out;
  }

 private:
  std::vector<std::shared_ptr<const std::string>> parts_;
  size_t size_ = 0;
};

}  // namespace flotilla::api
