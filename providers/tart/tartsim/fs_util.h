#pragma once

// Small POSIX file helpers for flotilla-tartsim. Every call reports failure by throwing
// FsError (a std::runtime_error whose text names the path and errno), which the command layer
// turns into Tart's "Error: ..." output. Not thread-safe only in the sense that the file system
// is shared: several tartsim processes use these at once, and the locks in vm_storage.h order them.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace flotilla::tartsim {

// A failed system call on a path. `error_number` is the errno (ENOENT for a missing file).
class FsError : public std::runtime_error {
 public:
  FsError(const std::string& what, int error_number)
      : std::runtime_error(what), error_number_(error_number) {}
  int error_number() const { return error_number_; }
  bool not_found() const;

 private:
  int error_number_;
};

// The text of errno `error_number` as macOS prints it through Swift's Errno (e.g. "No such
// process").
std::string ErrnoText(int error_number);

bool PathExists(const std::string& path);   // follows symlinks
bool IsDirectory(const std::string& path);  // follows symlinks
bool IsSymlink(const std::string& path);
std::string ReadFile(const std::string& path);
// The whole file, or nullopt when it does not exist.
std::optional<std::string> ReadFileIfExists(const std::string& path);
// Creates or truncates `path` IN PLACE (same inode, like Foundation's non-atomic Data.write):
// a `tart run` holding an fcntl lock on config.json keeps it across `tart set`.
void WriteFileInPlace(const std::string& path, const std::string& content);
// Writes a sibling temporary file and renames it over `path` (for fake-only state).
void WriteFileAtomic(const std::string& path, const std::string& content);
void MakeDirs(const std::string& path);    // mkdir -p
void RemoveTree(const std::string& path);  // rm -rf; a missing path is fine
// Directory entries without "." and "..", sorted by byte order.
std::vector<std::string> ListDir(const std::string& path);
// Copies a regular file keeping holes (SEEK_DATA/SEEK_HOLE), so a sparse 100 GB disk.img stays
// sparse, then sets the same length.
void CopyFileSparse(const std::string& from, const std::string& to);
// FileManager.replaceItemAt: `replacement` takes the place of `target` (which may exist, and is
// then removed), by one rename(2) or renameat2(RENAME_EXCHANGE).
void ReplaceItem(const std::string& target, const std::string& replacement);
// Apparent size (st_size) and allocated size (st_blocks * 512); 0 for a missing file.
int64_t FileSize(const std::string& path);
int64_t AllocatedSize(const std::string& path);
// The absolute path of the running executable (/proc/self/exe).
std::string SelfExecutable();
std::string Basename(const std::string& path);
std::string Dirname(const std::string& path);

}  // namespace flotilla::tartsim
