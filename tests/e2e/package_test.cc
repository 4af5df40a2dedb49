// Installation and packaging, from this build folder: `cmake --install` places the binaries,
// schemas and systemd unit; `cpack -G DEB` makes a package whose contents and Debian
// dependencies are listed with dpkg-deb; the unit is hardened and systemd-analyze accepts it.

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "providers/builtin.h"
#include "reconciler/manifest/diagnostics.h"
#include "reconciler/manifest/schema_validator.h"
#include "reconciler/manifest/yaml_reader.h"
#include "tests/support/cli_runner.h"
#include "tests/support/process.h"
#include "tests/support/shell.h"

namespace flotilla {
namespace {

namespace fs = std::filesystem;
using testing::Quote;
using testing::ScratchDir;
using testing::Sh;
using testing::Slurp;

// The installed tree, made once for every test of this file.
class PackageTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    scratch_ = new ScratchDir();
    Sh(std::string(CMAKE_COMMAND) + " --install " + Quote(FLOTILLA_BUILD_DIR) + " --prefix " +
       Quote(Prefix()));
  }
  static void TearDownTestSuite() {
    delete scratch_;
    scratch_ = nullptr;
  }
  static fs::path Prefix() { return scratch_->path() / "prefix"; }
  static fs::path Unit() { return Prefix() / "lib" / "systemd" / "system" / "flotilla.service"; }

  // `Key=value` lines of the unit, the last value of each key.
  static std::map<std::string, std::string> UnitSettings() {
    std::map<std::string, std::string> settings;
    std::istringstream lines(Slurp(Unit()));
    for (std::string line; std::getline(lines, line);) {
      const size_t eq = line.find('=');
      if (line.empty() || line[0] == '#' || line[0] == '[' || eq == std::string::npos) {
        continue;
      }
      settings[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return settings;
  }

  static ScratchDir* scratch_;
};

ScratchDir* PackageTest::scratch_ = nullptr;

TEST_F(PackageTest, InstallPlacesBinariesSchemasAndUnit) {
  for (const char* bin : {"flotilla", "flotilla-hostsim", "flotilla-tartsim"}) {
    const fs::path path = Prefix() / "bin" / bin;
    ASSERT_TRUE(fs::exists(path)) << path;
    EXPECT_NE(fs::status(path).permissions() & fs::perms::owner_exec, fs::perms::none);
  }
  const std::string version = Sh(Quote(Prefix() / "bin" / "flotilla") + " --version");
  EXPECT_EQ(version.substr(0, version.find('\n')), "flotilla " FLOTILLA_VERSION);
  EXPECT_NE(version.find("providers   parallels, tart"), std::string::npos) << version;
  // Shell completion where each shell looks for a package's scripts.
  for (const auto& [shell, path] : std::map<std::string, std::string>{
           {"bash", "share/bash-completion/completions/flotilla"},
           {"zsh", "share/zsh/vendor-completions/_flotilla"},
           {"fish", "share/fish/vendor_completions.d/flotilla.fish"}}) {
    ASSERT_TRUE(fs::exists(Prefix() / path)) << path;
    EXPECT_EQ(Slurp(Prefix() / path),
              Sh(Quote(Prefix() / "bin" / "flotilla") + " completion " + shell) + "\n")
        << path;
  }
  const fs::path schemas = fs::path(FLOTILLA_SOURCE_DIR) / "schemas";
  for (const char* schema :
       {"config.v1.json", "hostpool.v1.json", "vmset.v1.json", "plan.v1.json"}) {
    const fs::path installed = Prefix() / "share" / "flotilla" / "schemas" / schema;
    ASSERT_TRUE(fs::exists(installed)) << installed;
    EXPECT_EQ(Slurp(installed), Slurp(schemas / schema)) << schema;
  }
  // The editors' pool schema of each built-in provider.
  for (const auto& rules : flotilla::providers::BuiltinRules()) {
    const std::string name(rules->name());
    const fs::path installed =
        Prefix() / "share" / "flotilla" / "schemas" / ("hostpool-" + name + ".v1.json");
    ASSERT_TRUE(fs::exists(installed)) << installed;
    EXPECT_EQ(Slurp(installed),
              Slurp(fs::path(FLOTILLA_SOURCE_DIR) / "providers" / name / "hostpool.v1.json"));
  }
  EXPECT_TRUE(fs::exists(Unit()));
  EXPECT_TRUE(fs::exists(Prefix() / "lib" / "sysusers.d" / "flotilla.conf"));
  EXPECT_TRUE(fs::exists(Prefix() / "share" / "doc" / "flotilla" / "operations.md"));
}

TEST_F(PackageTest, UnitRunsTheInstalledBinaryHardened) {
  const std::map<std::string, std::string> unit = UnitSettings();
  EXPECT_EQ(unit.at("ExecStart"),
            (Prefix() / "bin" / "flotilla").string() + " run --config /etc/flotilla/flotilla.yaml");
  const std::map<std::string, std::string> required = {
      {"User", "flotilla"},          {"StateDirectory", "flotilla"},
      {"ProtectSystem", "strict"},   {"NoNewPrivileges", "yes"},
      {"ProtectHome", "yes"},        {"PrivateTmp", "yes"},
      {"CapabilityBoundingSet", ""}, {"RestrictSUIDSGID", "yes"},
      {"KillSignal", "SIGTERM"},     {"MemoryDenyWriteExecute", "yes"},
  };
  for (const auto& [key, value] : required) {
    ASSERT_TRUE(unit.contains(key)) << key << " missing from the unit";
    EXPECT_EQ(unit.at(key), value) << key;
  }
  // SIGTERM waits reconcile.shutdownTimeout (60s by default) for actions under way.
  EXPECT_EQ(unit.at("TimeoutStopSec"), "90s");

  // systemd's own checks: the file parses and names an executable that exists.
  Sh("systemd-analyze verify --man=no " + Quote(Unit()));
  // The exposure score systemd assigns, 0 (locked down) to 10 (unprotected).
  const std::string security =
      Sh("systemd-analyze security --offline=yes --no-pager " + Quote(Unit()) + " | tail -n 1");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(security, m, std::regex(R"(exposure level .*: (\d+\.\d+))")))
      << security;
  EXPECT_LT(std::stod(m[1].str()), 2.0) << security;
}

TEST_F(PackageTest, ExampleConfigurationIsValid) {
  const fs::path example = Prefix() / "share" / "doc" / "flotilla" / "examples" / "flotilla.yaml";
  manifest::DocumentBudget budget;
  manifest::Diagnostics diagnostics;
  std::vector<manifest::YamlDocument> docs =
      manifest::ReadYamlDocuments(Slurp(example), "flotilla.yaml", budget, diagnostics);
  ASSERT_EQ(docs.size(), 1U);
  Result<std::shared_ptr<const manifest::SchemaValidator>> validator =
      manifest::SchemaValidator::Create(flotilla::providers::BuiltinRules());
  ASSERT_TRUE(validator.ok());
  EXPECT_TRUE((*validator)->Validate("config.v1.json", docs[0], diagnostics));
  for (const manifest::Diagnostic& d : diagnostics.Sorted()) {
    ADD_FAILURE() << d.ToString();
  }
}

TEST_F(PackageTest, DebianPackageHoldsTheFilesAndItsLibraries) {
  const fs::path out = scratch_->path() / "deb";
  Sh(std::string(CPACK_COMMAND) + " -G DEB --config " +
     Quote(fs::path(FLOTILLA_BUILD_DIR) / "CPackConfig.cmake") + " -B " + Quote(out));
  const std::string deb = Sh("ls " + Quote(out) + "/flotilla_*.deb");
  ASSERT_TRUE(fs::exists(deb)) << deb;
  EXPECT_NE(deb.find("flotilla_" FLOTILLA_VERSION "_"), std::string::npos) << deb;

  std::set<std::string> files;
  std::istringstream listing(Sh("dpkg-deb --contents '" + deb + "' | awk '{print $6}'"));
  for (std::string line; std::getline(listing, line);) {
    files.insert(line);
  }
  for (const char* path :
       {"./usr/bin/flotilla", "./usr/bin/flotilla-hostsim", "./usr/bin/flotilla-tartsim",
        "./usr/share/flotilla/schemas/vmset.v1.json", "./usr/share/flotilla/schemas/config.v1.json",
        "./usr/share/flotilla/schemas/hostpool-parallels.v1.json",
        "./usr/share/flotilla/schemas/hostpool-tart.v1.json",
        "./usr/lib/systemd/system/flotilla.service", "./usr/lib/sysusers.d/flotilla.conf",
        "./usr/share/doc/flotilla/examples/flotilla.yaml",
        "./usr/share/bash-completion/completions/flotilla",
        "./usr/share/zsh/vendor-completions/_flotilla",
        "./usr/share/fish/vendor_completions.d/flotilla.fish"}) {
    EXPECT_TRUE(files.contains(path)) << path << " not in the package:\n"
                                      << Sh("dpkg-deb --contents '" + deb + "'");
  }
  EXPECT_EQ(Sh("dpkg-deb --field '" + deb + "' Package"), "flotilla");
  EXPECT_EQ(Sh("dpkg-deb --field '" + deb + "' Version"), FLOTILLA_VERSION);
  // Read off the binaries by dpkg-shlibdeps: the Debian packages of every library linked.
  const std::string depends = Sh("dpkg-deb --field '" + deb + "' Depends");
  for (const char* package :
       {"libgit2-", "libsqlite3-0", "libyaml-cpp", "libssl3", "libcpp-httplib", "libstdc++6",
        "libc6", "adduser", "ca-certificates"}) {
    EXPECT_NE(depends.find(package), std::string::npos) << package << " not in: " << depends;
  }
  // The unit in the package runs /usr/bin/flotilla.
  const fs::path unpacked = scratch_->path() / "unpacked";
  Sh("dpkg-deb --extract '" + deb + "' " + Quote(unpacked));
  EXPECT_NE(Slurp(unpacked / "usr/lib/systemd/system/flotilla.service")
                .find("ExecStart=/usr/bin/flotilla run --config /etc/flotilla/flotilla.yaml"),
            std::string::npos);
  // The maintainer scripts create the user and keep the secrets folder to its group.
  const fs::path control = scratch_->path() / "control";
  Sh("dpkg-deb --control '" + deb + "' " + Quote(control));
  const std::string postinst = Slurp(control / "postinst");
  EXPECT_NE(postinst.find("systemd-sysusers"), std::string::npos);
  EXPECT_NE(postinst.find("-m 0750 -o root -g flotilla /etc/flotilla/secrets"), std::string::npos);
  Sh("sh -n " + Quote(control / "postinst") + " && sh -n " + Quote(control / "prerm") +
     " && sh -n " + Quote(control / "postrm"));
}

}  // namespace
}  // namespace flotilla
