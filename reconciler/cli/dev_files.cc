#include "reconciler/cli/dev_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace flotilla::cli {

namespace fs = std::filesystem;

Status WriteDevFile(const fs::path& path, const std::string& text, bool secret) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  // Made private before the first byte: a secret is never readable by others, even briefly.
  const mode_t mode = secret ? S_IRUSR | S_IWUSR : S_IRUSR | S_IWUSR | S_IRGRP | S_IROTH;
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    // NOLINTNEXTLINE(concurrency-mt-unsafe)
    return Status::Unavailable("cannot write " + path.string() + ": " + std::strerror(errno));
  }
  bool ok = !secret || fchmod(fd, mode) == 0;  // a file that was there keeps its mode otherwise
  for (size_t done = 0; ok && done < text.size();) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    ok = n > 0;
    done += ok ? static_cast<size_t>(n) : 0;
  }
  ok = close(fd) == 0 && ok;
  if (!ok) {
    return Status::Unavailable("cannot write " + path.string());
  }
  return Status::Ok();
}

std::string ReadDevFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace flotilla::cli
