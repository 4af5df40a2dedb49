#pragma once

// Shell commands for tests: a command that fails fails the test.

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "tests/support/process.h"

namespace flotilla::testing {

// Runs a shell command; fails the test (and returns its output anyway) when it exits non-zero.
inline std::string Sh(const std::string& command) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "cannot run: " << command;
    return output;
  }
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
    output.append(buffer, n);
  }
  const int status = pclose(pipe);
  EXPECT_EQ(status, 0) << command << "\n" << output;
  while (!output.empty() && output.back() == '\n') {
    output.pop_back();
  }
  return output;
}

}  // namespace flotilla::testing
