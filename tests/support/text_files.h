#pragma once

// Reading files and checking text in tests, and the update mode of the tests that keep a file in
// the tree (golden files, generated docs) equal to what the code produces.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

namespace flotilla::testing {

// The whole file, or "" when it cannot be read.
inline std::string Slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Whether the environment variable `variable` (FLOTILLA_UPDATE_GOLDEN, FLOTILLA_UPDATE_DOCS) is
// set to 1: the test should rewrite its file instead of only comparing.
inline bool UpdateRequested(const char* variable) {
  const char* value = std::getenv(variable);
  return value != nullptr && std::string_view(value) == "1";
}

// Update mode for a file that differs from what the code produces: writes `content` to `path` and
// still fails the current test, so that a run with the update variable set never passes while a
// file changed. Review the diff, then rerun without the variable.
inline void RewriteAndFail(const std::filesystem::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) {
    ADD_FAILURE() << "cannot rewrite " << path;
    return;
  }
  ADD_FAILURE() << "rewrote " << path << "; review the diff and rerun";
}

}  // namespace flotilla::testing
