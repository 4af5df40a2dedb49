// The flotilla binary as a user runs it: exit codes, output streams, help and errors.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/support/cli_runner.h"
#include "tests/support/process.h"

namespace {

namespace fs = std::filesystem;
using flotilla::testing::Contains;
using flotilla::testing::Outcome;
using flotilla::testing::Quote;
using flotilla::testing::RunCommand;
using flotilla::testing::ScratchDir;
using flotilla::testing::Slurp;

// Runs `flotilla <args>` from the source folder, stdin closed, NO_COLOR set unless `env` says
// otherwise.
Outcome Flotilla(const std::string& args, const std::string& env = "NO_COLOR=1") {
  const ScratchDir scratch;
  return RunCommand("cd " FLOTILLA_SOURCE_DIR " && env " + env + " " FLOTILLA_BIN " " + args,
                    scratch.path());
}

TEST(CliTest, ValidatesTheExampleFleet) {
  Outcome r = Flotilla("validate examples/fleet");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "3 pools, 9 hosts, 4 VM sets, 11 VMs desired: valid\n");
  EXPECT_EQ(r.err, "");
}

TEST(CliTest, InvalidManifestsExitOneWithLocatedMessages) {
  Outcome r = Flotilla("validate examples/invalid/unknown-field.yaml");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(r.out, "examples/invalid/unknown-field.yaml:")) << r.out;
  EXPECT_TRUE(Contains(r.out, ": error: unknown field \"replica\"; did you mean \"replicas\"?"));
  EXPECT_TRUE(Contains(r.out, ": invalid\n"));
}

TEST(CliTest, ValidateDefaultsToTheCurrentDirectory) {
  Outcome r = Flotilla("validate", "--chdir=examples/fleet NO_COLOR=1");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "3 pools, 9 hosts, 4 VM sets, 11 VMs desired: valid\n");
}

TEST(CliTest, JsonFormatIsParseable) {
  Outcome r = Flotilla("validate examples/invalid/bad-enum.yaml --format json");
  EXPECT_EQ(r.exit_code, 1);
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["valid"], false);
  ASSERT_GE(j["findings"].size(), 1u);
  const nlohmann::json& f = j["findings"][0];
  EXPECT_EQ(f["file"], "examples/invalid/bad-enum.yaml");
  EXPECT_GT(f["line"].get<int>(), 0);
  EXPECT_GT(f["column"].get<int>(), 0);
  EXPECT_EQ(f["severity"], "error");
  EXPECT_FALSE(f["pointer"].get<std::string>().empty());

  Outcome ok = Flotilla("validate examples/fleet --format=json");
  EXPECT_EQ(ok.exit_code, 0);
  nlohmann::json v = nlohmann::json::parse(ok.out);
  EXPECT_EQ(v["valid"], true);
  EXPECT_EQ(v["vms"], 11);
  EXPECT_EQ(v["hosts"], 9);
}

TEST(CliTest, MissingPathIsAnError) {
  Outcome r = Flotilla("validate does/not/exist");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "flotilla: no such file or directory: does/not/exist\n");
  EXPECT_EQ(r.out, "");
}

// Runs `flotilla <args>` in `dir`, with FLOTILLA_CONFIG unset.
Outcome FlotillaIn(const fs::path& dir, const std::string& args) {
  const ScratchDir scratch;
  return RunCommand(
      "cd " + Quote(dir) + " && env -u FLOTILLA_CONFIG NO_COLOR=1 " FLOTILLA_BIN " " + args,
      scratch.path());
}

// What a new user runs into first: each says what is wrong and changes nothing.
TEST(CliTest, FirstStepsSayWhatIsMissing) {
  const fs::path dir = fs::temp_directory_path() / ("flotilla-first-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "empty");
  // apply without any configuration creates no state before refusing.
  Outcome apply = FlotillaIn(dir / "empty", "apply --yes --state-dir " + (dir / "state").string());
  EXPECT_EQ(apply.exit_code, 1);
  EXPECT_TRUE(Contains(apply.err, "no configuration file: give --config FILE")) << apply.err;
  EXPECT_FALSE(fs::exists(dir / "state"));
  // A configuration file that is not there says why it cannot be read.
  Outcome missing = FlotillaIn(dir / "empty", "status --config nowhere.yaml");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(Contains(missing.err, "cannot read config file nowhere.yaml: no such file"))
      << missing.err;
  // A folder without manifests: validate warns, plan refuses.
  Outcome validate = FlotillaIn(dir / "empty", "validate");
  EXPECT_TRUE(Contains(validate.out, "no manifests found")) << validate.out;
  Outcome plan = FlotillaIn(dir / "empty", "plan");
  EXPECT_EQ(plan.exit_code, 1);
  EXPECT_TRUE(Contains(plan.err, "no manifests (*.yaml, *.yml) found in .")) << plan.err;
  // A folder that holds flotilla.yaml beside the manifests: the file is the configuration, not
  // a manifest with a missing apiVersion.
  fs::create_directories(dir / "fleet");
  std::ofstream(dir / "fleet" / "fleet.yaml")
      << "apiVersion: flotilla.dev/v1\nkind: HostPool\nmetadata: {name: mac-builders}\nspec:\n"
         "  credentialsRef: mac-builders\n  hosts:\n"
         "    - {name: mini-01, address: \"http://127.0.0.1:1\"}\n---\n"
         "apiVersion: flotilla.dev/v1\nkind: VMSet\nmetadata: {name: ci}\nspec:\n"
         "  pool: mac-builders\n  replicas: 1\n"
         "  template: {image: \"catalog://L/1\", os: linux, arch: arm64, cpu: 1, memory: 1Gi}\n";
  std::ofstream(dir / "fleet" / "flotilla.yaml")
      << "stateDir: " << (dir / "state").string() << "\nsecretsDir: " << (dir / "secrets").string()
      << "\n";
  fs::create_directories(dir / "secrets" / "mac-builders");
  std::ofstream(dir / "secrets" / "mac-builders" / "apiKey") << "S0VZOlNFQ1JFVA==\n";
  Outcome in_fleet = FlotillaIn(dir / "fleet", "validate");
  EXPECT_EQ(in_fleet.exit_code, 0) << in_fleet.out << in_fleet.err;
  EXPECT_TRUE(
      Contains(in_fleet.out + in_fleet.err, "a flotilla configuration file, not a manifest"))
      << in_fleet.out << in_fleet.err;
  Outcome plan_in_fleet = FlotillaIn(dir / "fleet", "plan --host-timeout 0.2");
  EXPECT_FALSE(Contains(plan_in_fleet.err, "apiVersion")) << plan_in_fleet.err;
  EXPECT_TRUE(Contains(plan_in_fleet.out, "Plan:")) << plan_in_fleet.out << plan_in_fleet.err;
  EXPECT_FALSE(fs::exists(dir / "state")) << "plan created a store";
  fs::remove_all(dir);
}

TEST(CliTest, HelpAndVersion) {
  Outcome help = Flotilla("--help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_TRUE(Contains(help.out, "validate")) << help.out;
  EXPECT_TRUE(Contains(help.out, "--log-format"));
  EXPECT_TRUE(Contains(help.out, "Exit status"));

  Outcome sub = Flotilla("validate --help");
  EXPECT_EQ(sub.exit_code, 0);
  EXPECT_TRUE(Contains(sub.out, "--format")) << sub.out;
  EXPECT_TRUE(Contains(sub.out, "FILE:LINE:COLUMN"));

  // Each command states its own exit status, once.
  for (const char* command : {"plan", "diff", "apply", "status"}) {
    const std::string text = Flotilla(std::string(command) + " --help").out;
    const size_t first = text.find("Exit status");
    ASSERT_NE(first, std::string::npos) << command << "\n" << text;
    EXPECT_EQ(text.find("Exit status", first + 1), std::string::npos) << command << "\n" << text;
  }
  EXPECT_TRUE(Contains(Flotilla("plan --help").out, "3 no action"));
  // reconcile never reads the store.
  EXPECT_FALSE(Contains(Flotilla("reconcile --help").out, "the store is read"));

  Outcome version = Flotilla("--version");
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out.rfind("flotilla ", 0), 0u);
}

// SIGPIPE is ignored: a reader, API client or server that goes away makes a write fail, never
// ends the process (an HTTPS client refusing the API's certificate once died of it, exit 141).
TEST(CliTest, AClosedPipeNeverKillsTheProcess) {
  const ScratchDir scratch;
  // `true` exits at once, so flotilla writes its script into a pipe nobody reads.
  Outcome r = RunCommand(
      "bash -c " + Quote("set -o pipefail; " FLOTILLA_BIN " completion bash | true; echo \"$?\""),
      scratch.path());
  EXPECT_NE(r.out, "141\n") << "flotilla was killed by SIGPIPE";
}

TEST(CliTest, UnknownCommandsAndFlagsExitOneWithAHint) {
  Outcome typo = Flotilla("valdate examples/fleet");
  EXPECT_EQ(typo.exit_code, 1);
  EXPECT_TRUE(Contains(typo.err, "unknown command \"valdate\"; did you mean \"validate\"?"))
      << typo.err;

  Outcome flag = Flotilla("validate --frmat json");
  EXPECT_EQ(flag.exit_code, 1);
  EXPECT_TRUE(Contains(flag.err, "unknown flag --frmat; did you mean --format?")) << flag.err;
  EXPECT_TRUE(Contains(flag.err, "flotilla validate --help"));
  Outcome global = Flotilla("--log-levl debug status");
  EXPECT_TRUE(Contains(global.err, "unknown flag --log-levl; did you mean --log-level?"))
      << global.err;

  Outcome format = Flotilla("validate --format yaml");
  EXPECT_EQ(format.exit_code, 1);
  EXPECT_TRUE(Contains(format.err, "--format: yaml not in {text,json}")) << format.err;
  EXPECT_EQ(Flotilla("validate --format 1").exit_code, 1);  // no hidden numeric spellings

  Outcome none = Flotilla("");
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_TRUE(Contains(none.err, "validate"));
}

TEST(CliTest, LogsGoToStderrAsTextOrJson) {
  Outcome text = Flotilla("--log-level debug validate examples/fleet");
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_EQ(text.out, "3 pools, 9 hosts, 4 VM sets, 11 VMs desired: valid\n");
  EXPECT_TRUE(Contains(text.err, "debug read 7 files, 7 documents below examples/fleet"))
      << text.err;

  Outcome json = Flotilla("--log-format json --log-level debug validate examples/fleet");
  EXPECT_EQ(json.exit_code, 0);
  std::istringstream lines(json.err);
  std::string line;
  ASSERT_TRUE(std::getline(lines, line));
  nlohmann::json entry = nlohmann::json::parse(line);
  EXPECT_EQ(entry["level"], "debug");
  EXPECT_EQ(entry["msg"], "read 7 files, 7 documents below examples/fleet");
  EXPECT_TRUE(entry.contains("time"));

  Outcome bad = Flotilla("--log-level loud validate examples/fleet");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(Contains(bad.err, "--log-level: loud not in {trace,debug,info,warn,error}"))
      << bad.err;
}

// apply and run take flotilla.yaml's log settings; the command-line flags take precedence.
TEST(CliTest, ConfigLogSettingsApplyUnlessAFlagIsGiven) {
  const fs::path dir =
      fs::temp_directory_path() / ("flotilla-cli-log-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path config = dir / "flotilla.yaml";
  std::ofstream(config) << "source: {url: " << (dir / "no-such-repo").string() << "}\n"
                        << "stateDir: " << (dir / "state").string() << "\n"
                        << "log: {format: json, level: debug}\n";

  Outcome json = Flotilla("apply --yes --config " + config.string());
  EXPECT_EQ(json.exit_code, 1);
  std::istringstream lines(json.err);
  std::string line;
  ASSERT_TRUE(std::getline(lines, line)) << json.err;
  const nlohmann::json entry = nlohmann::json::parse(line, nullptr, false);
  ASSERT_TRUE(entry.is_object()) << json.err;
  EXPECT_EQ(entry["level"], "warning");
  EXPECT_TRUE(Contains(entry.value("msg", ""), "no-such-repo")) << line;

  Outcome text = Flotilla("--log-format text apply --yes --config " + config.string());
  EXPECT_EQ(text.exit_code, 1);
  EXPECT_FALSE(text.err.starts_with("{")) << text.err;
  EXPECT_TRUE(Contains(text.err, " warning cannot read ")) << text.err;
  fs::remove_all(dir);
}

TEST(CliTest, NoColourWhenNotATerminal) {
  Outcome r = Flotilla("validate examples/invalid/bad-enum.yaml", "-u NO_COLOR");
  EXPECT_FALSE(Contains(r.out, "\033[")) << r.out;
}

}  // namespace

// Colour needs a terminal, which a test cannot give the child; drive the CLI in-process.
#include "providers/builtin.h"
#include "reconciler/cli/app.h"

namespace {

TEST(CliTest, ColourOnlyWhenAsked) {
  const std::string file = std::string(FLOTILLA_SOURCE_DIR) + "/examples/invalid/bad-enum.yaml";
  const char* argv[] = {"flotilla", "validate", file.c_str()};
  const flotilla::providers::ProviderRegistry providers =
      std::move(*flotilla::providers::BuiltinProviders());
  std::ostringstream out, err;
  EXPECT_EQ(flotilla::cli::RunCli(3, argv, out, err, /*color=*/true, providers), 1);
  EXPECT_TRUE(Contains(out.str(), "\033[31merror\033[0m: ")) << out.str();

  std::ostringstream plain, err2;
  EXPECT_EQ(flotilla::cli::RunCli(3, argv, plain, err2, /*color=*/false, providers), 1);
  EXPECT_FALSE(Contains(plain.str(), "\033["));
}

}  // namespace

namespace {

// `validate --repo` reads a revision straight from Git, naming files path@short-sha.
TEST(CliTest, ValidatesARevisionOfARepository) {
  const fs::path repo =
      fs::temp_directory_path() / ("flotilla-cli-repo-" + std::to_string(::getpid()));
  fs::remove_all(repo);
  const std::string git =
      "git -C " + repo.string() + " -c user.name=T -c user.email=t@example.com ";
  ASSERT_EQ(
      std::system(("git init -q -b main " + repo.string() +
                   " && cp -r " FLOTILLA_SOURCE_DIR "/examples/fleet " + repo.string() +
                   "/fleet && " + git + "add -A && " + git +
                   "commit -q -m good && sed -i 's/replicas: 4/replicas: four/' " + repo.string() +
                   "/fleet/vmsets/ios-runners.yaml && " + git + "commit -q -am bad")
                      .c_str()),
      0);
  FILE* p = popen((git + "rev-parse --short=7 HEAD").c_str(), "r");
  char sha[16] = {0};
  ASSERT_NE(fgets(sha, sizeof(sha), p), nullptr);
  pclose(p);
  const std::string short_sha = std::string(sha).substr(0, 7);

  Outcome bad = Flotilla("validate --repo " + repo.string() + " --rev main --path fleet");
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  EXPECT_TRUE(Contains(bad.out, "fleet/vmsets/ios-runners.yaml@" + short_sha +
                                    ":12:13: error: replicas must be an integer"))
      << bad.out;

  Outcome good = Flotilla("validate --repo " + repo.string() + " --rev main~1 --path fleet");
  EXPECT_EQ(good.exit_code, 0) << good.out << good.err;
  EXPECT_EQ(good.out, "3 pools, 9 hosts, 4 VM sets, 11 VMs desired: valid\n");

  Outcome missing = Flotilla("validate --repo " + repo.string() + " --rev nope --path fleet");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(Contains(missing.err, "revision \"nope\" not found")) << missing.err;

  Outcome remote =
      Flotilla("validate --repo file://" + repo.string() + " --rev main~1 --path fleet");
  EXPECT_EQ(remote.exit_code, 0) << remote.out << remote.err;
  fs::remove_all(repo);
}

}  // namespace
