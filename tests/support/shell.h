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

// Runs `git -C repo args` as the committer Fleet <fleet@example.com>, whatever this machine's
// Git configuration says; fails the test when git fails; returns its output. `env`
// ("env VAR=value ... ") goes in front of the command.
inline std::string Git(const fs::path& repo, const std::string& args, const std::string& env = "") {
  return Sh(env + "git -C " + Quote(repo) + " -c user.name=Fleet -c user.email=fleet@example.com " +
            args);
}

// Commits everything in `repo` (an empty commit when nothing changed); the new commit's SHA.
inline std::string CommitAll(const fs::path& repo, const std::string& message,
                             const std::string& env = "") {
  Git(repo, "add -A", env);
  Git(repo, "commit -q --allow-empty -m " + Quote(message), env);
  return Git(repo, "rev-parse HEAD", env);
}

}  // namespace flotilla::testing
