// `flotilla version` and `--version`: what a bug report needs, checked against the build and the
// libraries Debian installed.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/cli_runner.h"
#include "tests/support/process.h"
#include "tests/support/shell.h"

namespace flotilla {
namespace {

using testing::Outcome;
using testing::RunCommand;
using testing::ScratchDir;
using testing::Sh;

Outcome Flotilla(const std::string& args) {
  const ScratchDir scratch;
  return RunCommand(std::string(FLOTILLA_BIN) + " " + args, scratch.path());
}

std::string ModVersion(const std::string& module) {
  return Sh("pkg-config --modversion " + module);
}

TEST(VersionTest, SaysWhatABugReportNeeds) {
  Outcome text = Flotilla("version");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_EQ(text.out.rfind("flotilla " FLOTILLA_VERSION "\n", 0), 0u) << text.out;
  EXPECT_EQ(text.err, "");

  Outcome json_out = Flotilla("version -o json");
  ASSERT_EQ(json_out.exit_code, 0) << json_out.err;
  const nlohmann::json v = nlohmann::json::parse(json_out.out);
  EXPECT_EQ(v["version"], FLOTILLA_VERSION);
  // The commit of the sources this binary was built from (a build reads it every time).
  const std::string head = Sh("git -C " FLOTILLA_SOURCE_DIR " rev-parse HEAD");
  const std::string commit = v["commit"];
  EXPECT_TRUE(commit == head || commit == head + "-dirty") << commit << " vs " << head;
  EXPECT_EQ(v["buildType"], FLOTILLA_BUILD_TYPE);
  EXPECT_FALSE(v["compiler"].get<std::string>().empty());
  EXPECT_EQ(v["providers"], nlohmann::json::array({"parallels", "tart"}));
  // Run-time versions for the libraries that have a call for it, the build's for the others:
  // on Debian both are the -dev package's version.
  const nlohmann::json& libs = v["libraries"];
  EXPECT_EQ(libs["libgit2"]["version"], ModVersion("libgit2"));
  EXPECT_EQ(libs["SQLite"]["version"], ModVersion("sqlite3"));
  EXPECT_EQ(libs["OpenSSL"]["version"], ModVersion("openssl"));
  EXPECT_EQ(libs["yaml-cpp"]["version"], ModVersion("yaml-cpp"));
  EXPECT_EQ(libs["cpp-httplib"]["version"], ModVersion("cpp-httplib"));
  EXPECT_EQ(libs["libgit2"]["runtime"], true);
  EXPECT_EQ(libs["yaml-cpp"]["runtime"], false);
  // The text says the same, one fact per line.
  for (const std::string& line :
       std::vector<std::string>{"commit      " + commit + "\n", "providers   parallels, tart\n",
                                "libgit2     " + ModVersion("libgit2") + "\n",
                                "SQLite      " + ModVersion("sqlite3") + "\n",
                                "yaml-cpp    " + ModVersion("yaml-cpp") + " (built with)\n"}) {
    EXPECT_NE(text.out.find(line), std::string::npos) << line << "\n" << text.out;
  }
  EXPECT_NE(text.out.find("build       " FLOTILLA_BUILD_TYPE ", "), std::string::npos) << text.out;
}

TEST(VersionTest, TheVersionFlagPrintsTheSame) {
  Outcome flag = Flotilla("--version");
  ASSERT_EQ(flag.exit_code, 0) << flag.err;
  EXPECT_EQ(flag.out, Flotilla("version").out);
}

}  // namespace
}  // namespace flotilla
