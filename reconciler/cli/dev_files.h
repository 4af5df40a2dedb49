#pragma once

// Whole-file reads and writes for `flotilla dev`'s data folder.

#include <filesystem>
#include <string>

#include "reconciler/model/status.h"

namespace flotilla::cli {

// Writes `text` to `path` (its folders made first), replacing what was there. `secret`: mode
// 0600. Unavailable naming the file when it cannot be written.
Status WriteDevFile(const std::filesystem::path& path, const std::string& text,
                    bool secret = false);

// The file's bytes; empty when it cannot be read.
std::string ReadDevFile(const std::filesystem::path& path);

}  // namespace flotilla::cli
