#pragma once

// An httplib::Stream over bytes in memory: reads give `input` (at most `chunk` bytes a call),
// writes collect in `written`. For the handlers that read their request themselves
// (reconciler/api/stream_io.h), in tests and fuzz targets.

#include <httplib.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>

namespace flotilla::testing {

class MemoryStream final : public httplib::Stream {
 public:
  explicit MemoryStream(std::string input, size_t chunk = 4096)
      : input_(std::move(input)), chunk_(std::max<size_t>(chunk, 1)) {}

  bool is_readable() const override { return read_ < input_.size(); }
  bool is_writable() const override { return true; }
  ssize_t read(char* ptr, size_t size) override {
    const size_t n = std::min({size, chunk_, input_.size() - read_});
    std::copy_n(input_.data() + read_, n, ptr);
    read_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    written_.append(ptr, size);
    return static_cast<ssize_t>(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 0;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 0;
  }
  socket_t socket() const override { return INVALID_SOCKET; }

  // What is left to read.
  std::string_view rest() const { return std::string_view(input_).substr(read_); }
  const std::string& written() const { return written_; }

 private:
  std::string input_;
  size_t chunk_;
  size_t read_ = 0;
  std::string written_;
};

}  // namespace flotilla::testing
