#include "providers/tart/tartsim/fs_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

namespace flotilla::tartsim {
namespace {

[[noreturn]] void ThrowErrno(const std::string& what, const std::string& path) {
  const int saved = errno;
  throw FsError(what + " " + path + ": " + ErrnoText(saved), saved);
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) {
      close(fd_);
    }
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

void WriteAll(int fd, const char* data, size_t size, const std::string& path) {
  while (size > 0) {
    const ssize_t n = write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      ThrowErrno("cannot write", path);
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
}

}  // namespace

bool FsError::not_found() const { return error_number_ == ENOENT || error_number_ == ENOTDIR; }

std::string ErrnoText(int error_number) {
  // glibc and Darwin agree on the texts the fake can produce (ESRCH, EPERM, ENOENT, EACCES).
  return std::strerror(error_number);
}

bool PathExists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool IsSymlink(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

std::string ReadFile(const std::string& path) {
  std::optional<std::string> content = ReadFileIfExists(path);
  if (!content) {
    throw FsError("cannot open " + path + ": " + ErrnoText(ENOENT), ENOENT);
  }
  return *content;
}

std::optional<std::string> ReadFileIfExists(const std::string& path) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return std::nullopt;
    }
    ThrowErrno("cannot open", path);
  }
  std::string content;
  char buf[8192];
  for (;;) {
    const ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      ThrowErrno("cannot read", path);
    }
    if (n == 0) {
      break;
    }
    content.append(buf, static_cast<size_t>(n));
  }
  return content;
}

void WriteFileInPlace(const std::string& path, const std::string& content) {
  Fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) {
    ThrowErrno("cannot write", path);
  }
  WriteAll(fd.get(), content.data(), content.size(), path);
}

void WriteFileAtomic(const std::string& path, const std::string& content) {
  std::random_device random;
  const std::string tmp =
      path + ".tmp-" + std::to_string(getpid()) + "-" + std::to_string(random());
  {
    Fd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (fd.get() < 0) {
      ThrowErrno("cannot write", tmp);
    }
    WriteAll(fd.get(), content.data(), content.size(), tmp);
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    unlink(tmp.c_str());
    errno = saved;
    ThrowErrno("cannot rename onto", path);
  }
}

void MakeDirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec && !IsDirectory(path)) {
    throw FsError("cannot create directory " + path + ": " + ec.message(), ec.value());
  }
}

void RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec && ec.value() != ENOENT) {
    throw FsError("cannot remove " + path + ": " + ec.message(), ec.value());
  }
}

std::vector<std::string> ListDir(const std::string& path) {
  std::vector<std::string> names;
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) {
    ThrowErrno("cannot list", path);
  }
  while (const dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") {
      names.push_back(name);
    }
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

void CopyFileSparse(const std::string& from, const std::string& to) {
  Fd in(open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) {
    ThrowErrno("cannot open", from);
  }
  struct stat st {};
  if (fstat(in.get(), &st) != 0) {
    ThrowErrno("cannot stat", from);
  }
  Fd out(open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (out.get() < 0) {
    ThrowErrno("cannot create", to);
  }
  std::vector<char> buf(1 << 16);
  off_t offset = 0;
  while (offset < st.st_size) {
    off_t data = lseek(in.get(), offset, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) {
        break;  // only a hole remains
      }
      ThrowErrno("cannot seek", from);
    }
    off_t hole = lseek(in.get(), data, SEEK_HOLE);
    if (hole < 0) {
      ThrowErrno("cannot seek", from);
    }
    for (off_t pos = data; pos < hole;) {
      const size_t want =
          static_cast<size_t>(std::min<off_t>(hole - pos, static_cast<off_t>(buf.size())));
      const ssize_t n = pread(in.get(), buf.data(), want, pos);
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        ThrowErrno("cannot read", from);
      }
      if (n == 0) {
        break;
      }
      if (pwrite(out.get(), buf.data(), static_cast<size_t>(n), pos) != n) {
        ThrowErrno("cannot write", to);
      }
      pos += n;
    }
    offset = hole;
  }
  if (ftruncate(out.get(), st.st_size) != 0) {
    ThrowErrno("cannot resize", to);
  }
}

void ReplaceItem(const std::string& target, const std::string& replacement) {
  struct stat st {};
  if (lstat(target.c_str(), &st) != 0) {
    if (rename(replacement.c_str(), target.c_str()) != 0) {
      ThrowErrno("cannot move " + replacement + " to", target);
    }
    return;
  }
  // Swap the two, then remove what used to be the target (now at `replacement`).
  if (renameat2(AT_FDCWD, replacement.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) != 0) {
    ThrowErrno("cannot replace", target);
  }
  RemoveTree(replacement);
}

int64_t FileSize(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

int64_t AllocatedSize(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_blocks) * 512 : 0;
}

std::string SelfExecutable() {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) {
    throw FsError("cannot resolve /proc/self/exe: " + ec.message(), ec.value());
  }
  return self.string();
}

std::string Basename(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string Dirname(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) {
    return ".";
  }
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace flotilla::tartsim
