// `flotilla completion bash|zsh|fish`: each script loaded by the real shell and asked for
// completions as the shell would ask (bash: COMP_WORDS and the function `complete -p` names;
// zsh: the completion function with the completion system's builtins replaced by recorders;
// fish: `complete -C`, fish's own completion engine).

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <sstream>
#include <string>

#include "tests/support/cli_runner.h"
#include "tests/support/process.h"
#include "tests/support/shell.h"

namespace flotilla {
namespace {

namespace fs = std::filesystem;
using testing::Outcome;
using testing::RunCommand;
using testing::ScratchDir;
using testing::Sh;

using Words = std::set<std::string>;

// `text` as one sh word, whatever quotes it holds.
std::string Quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return out + "'";
}
std::string Quote(const fs::path& path) { return Quote(path.string()); }

Words Lines(const std::string& text) {
  Words words;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) {
      words.insert(line.substr(0, line.find('\t')));  // fish: "word\tdescription"
    }
  }
  return words;
}

const Words kCommands = {"validate", "diff",  "plan",  "apply",   "run",       "status",
                         "history",  "hosts", "vms",   "dev",     "reconcile", "port-forward",
                         "ssh",      "vnc",   "store", "version", "completion"};

class CompletionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* shell : {"bash", "zsh", "fish"}) {
      Sh(std::string(FLOTILLA_BIN) + " completion " + shell + " > " +
         Quote(scratch_.path() / shell));
    }
    // A fleet repository's work tree: names complete there without naming a folder.
    Sh("cp -r " FLOTILLA_SOURCE_DIR "/examples/fleet " + Quote(repo_) + " && git -C " +
       Quote(repo_) + " init -q");
  }

  // PATH with flotilla first, as after installing it.
  std::string Env() const {
    return "env PATH=" + fs::path(FLOTILLA_BIN).parent_path().string() + ":/usr/bin:/bin ";
  }

  Outcome Shell(const std::string& command, const fs::path& cwd) const {
    const ScratchDir out;
    return RunCommand("cd " + Quote(cwd) + " && " + Env() + command, out.path());
  }

  // Completions bash offers for `line`, whose last word (maybe '') is the one completed.
  // `line` is bash words: "flotilla plan --format ''".
  Words Bash(const std::string& line, const fs::path& cwd = FLOTILLA_SOURCE_DIR) const {
    const std::string script = "source " + Quote(scratch_.path() / "bash") + "; COMP_WORDS=(" +
                               line +
                               "); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _flotilla; printf "
                               "'%s\\n' \"${COMPREPLY[@]}\"";
    Outcome r = Shell("bash --norc --noprofile -c " + Quote(script), cwd);
    EXPECT_EQ(r.exit_code, 0) << line << "\n" << r.err;
    EXPECT_EQ(r.err, "") << line;
    return Lines(r.out);
  }

  // The same through zsh: _describe, compadd, _files and compset record what they are given.
  Words Zsh(const std::string& line, const fs::path& cwd = FLOTILLA_SOURCE_DIR) const {
    const std::string stubs =
        "compdef() { :; }; "
        "_describe() { local name=${@[-1]}; print -l -- ${${(P)name}%%:*}; }; "
        "compadd() { while [[ $1 != -- ]]; do shift; done; shift; print -l -- $@; }; "
        "_files() { print -- '<files>'; }; compset() { return 1; }; ";
    const std::string script = stubs + "source " + Quote(scratch_.path() / "zsh") + "; words=(" +
                               line + "); CURRENT=${#words}; _flotilla";
    Outcome r = Shell("zsh -f -c " + Quote(script), cwd);
    EXPECT_EQ(r.exit_code, 0) << line << "\n" << r.err;
    EXPECT_EQ(r.err, "") << line;
    return Lines(r.out);
  }

  // fish's own engine: `complete -C LINE` (a plain string; the completed word is what follows
  // the last space).
  Words Fish(const std::string& line, const fs::path& cwd = FLOTILLA_SOURCE_DIR) const {
    const std::string script =
        "source " + Quote(scratch_.path() / "fish") + "; complete -C " + Quote(line);
    Outcome r = Shell("fish --no-config -c " + Quote(script), cwd);
    EXPECT_EQ(r.exit_code, 0) << line << "\n" << r.err;
    EXPECT_EQ(r.err, "") << line;
    return Lines(r.out);
  }

  ScratchDir scratch_;
  fs::path repo_ = scratch_.path() / "fleet";
};

TEST_F(CompletionTest, BashRegistersTheFunction) {
  Outcome r =
      Shell("bash --norc --noprofile -c " +
                Quote("source " + (scratch_.path() / "bash").string() + "; complete -p flotilla"),
            scratch_.path());
  EXPECT_EQ(r.out, "complete -F _flotilla flotilla\n") << r.err;
}

TEST_F(CompletionTest, BashCompletesCommandsFlagsAndValues) {
  EXPECT_EQ(Bash("flotilla ''"), kCommands);
  EXPECT_EQ(Bash("flotilla pl"), Words({"plan"}));
  EXPECT_EQ(Bash("flotilla plan --for"), Words({"--format"}));
  EXPECT_EQ(Bash("flotilla plan --format ''"), Words({"text", "json", "markdown"}));
  EXPECT_EQ(Bash("flotilla plan --format = j"), Words({"json"}));  // bash splits at '='
  EXPECT_EQ(Bash("flotilla --log-level ''"), Words({"trace", "debug", "info", "warn", "error"}));
  EXPECT_EQ(Bash("flotilla store ''"), Words({"backup", "check"}));
  EXPECT_EQ(Bash("flotilla store check -o ''"), Words({"table", "json"}));
  EXPECT_EQ(Bash("flotilla completion ''"), Words({"bash", "zsh", "fish"}));
  // A flag without a value leaves the next word to the command; one with a value takes it.
  EXPECT_EQ(Bash("flotilla completion --help ''"), Words({"bash", "zsh", "fish"}));
  EXPECT_EQ(Bash("flotilla --log-level debug st"), Words({"status", "store"}));
  // The hidden flags the scripts use are not offered.
  EXPECT_EQ(Bash("flotilla completion --n"), Words({}));
  // Operands that are paths complete as files.
  EXPECT_EQ(Bash("flotilla validate examples/fl"), Words({"examples/fleet"}));
}

TEST_F(CompletionTest, BashCompletesNamesFromTheManifests) {
  // From the line's folder of manifests...
  EXPECT_EQ(Bash("flotilla plan examples/fleet --pools ''"),
            Words({"linux-builders", "mac-builders", "tart-minis"}));
  EXPECT_EQ(Bash("flotilla plan examples/fleet --pools linux-builders,mac"),
            Words({"linux-builders,mac-builders"}));
  // ... or of the current folder when it is a Git work tree.
  EXPECT_EQ(Bash("flotilla vms --vmset ''", repo_),
            Words({"ios-runners", "linux-runners", "macos-golden", "xcode-runners"}));
  EXPECT_EQ(Bash("flotilla vms --host mini-0", repo_),
            Words({"mini-01", "mini-02", "mini-03", "mini-04"}));
  // Elsewhere: nothing, and nothing printed.
  EXPECT_EQ(Bash("flotilla vms --pool ''", scratch_.path()), Words({}));
}

TEST_F(CompletionTest, ZshCompletesTheSame) {
  EXPECT_EQ(Zsh("flotilla ''"), kCommands);
  EXPECT_EQ(Zsh("flotilla plan --format ''"), Words({"text", "json", "markdown"}));
  EXPECT_EQ(Zsh("flotilla store ''"), Words({"backup", "check"}));
  EXPECT_TRUE(Zsh("flotilla plan -").contains("--format"));
  EXPECT_EQ(Zsh("flotilla validate ''"), Words({"<files>"}));
  EXPECT_EQ(Zsh("flotilla plan examples/fleet --pools ''"),
            Words({"linux-builders", "mac-builders", "tart-minis"}));
  Outcome syntax = Shell("zsh -n " + Quote(scratch_.path() / "zsh"), scratch_.path());
  EXPECT_EQ(syntax.exit_code, 0) << syntax.err;
}

TEST_F(CompletionTest, FishCompletesTheSame) {
  EXPECT_EQ(Fish("flotilla "), kCommands);
  EXPECT_EQ(Fish("flotilla plan --format "), Words({"text", "json", "markdown"}));
  EXPECT_EQ(Fish("flotilla store "), Words({"backup", "check"}));
  EXPECT_EQ(Fish("flotilla store check --output "), Words({"table", "json"}));
  EXPECT_TRUE(Fish("flotilla plan --").contains("--format"));
  EXPECT_EQ(Fish("flotilla completion "), Words({"bash", "zsh", "fish"}));
  EXPECT_EQ(Fish("flotilla plan examples/fleet --pools "),
            Words({"linux-builders", "mac-builders", "tart-minis"}));
  EXPECT_EQ(Fish("flotilla plan examples/fleet --pools linux-builders,m"),
            Words({"linux-builders,mac-builders"}));
  EXPECT_EQ(Fish("flotilla vms --vmset ", repo_),
            Words({"ios-runners", "linux-runners", "macos-golden", "xcode-runners"}));
}

}  // namespace
}  // namespace flotilla
