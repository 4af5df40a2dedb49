// Installation and packaging, from this build folder: `cmake --install` places the binaries,
// schemas, man pages and systemd unit; `cpack -G DEB` makes a package whose contents and Debian
// dependencies are listed with dpkg-deb and which lintian accepts; the unit is hardened and
// systemd-analyze accepts it; the man pages render and name every command.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

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

  // The package, made by cpack from this build folder once per test process.
  static std::string Deb() {
    if (deb_.empty()) {
      const fs::path out = scratch_->path() / "deb";
      Sh(std::string(CPACK_COMMAND) + " -G DEB --config " +
         Quote(fs::path(FLOTILLA_BUILD_DIR) / "CPackConfig.cmake") + " -B " + Quote(out));
      deb_ = Sh("ls " + Quote(out) + "/flotilla_*.deb");
    }
    return deb_;
  }

  static ScratchDir* scratch_;
  static std::string deb_;
};

ScratchDir* PackageTest::scratch_ = nullptr;
std::string PackageTest::deb_;

// The commands a CLI11 help lists under "Subcommands:".
std::vector<std::string> Subcommands(const std::string& help) {
  std::vector<std::string> names;
  std::istringstream lines(help);
  bool inside = false;
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("Subcommands:")) {
      inside = true;
    } else if (inside && !line.empty() && line[0] != ' ') {
      inside = false;
    } else if (inside && line.size() > 2 && line.starts_with("  ") && line[2] != ' ') {
      names.push_back(line.substr(2, line.find(' ', 2) - 2));
    }
  }
  return names;
}

// The man page every command of `flotilla WORDS --help` should have, and theirs in turn:
// "flotilla-plan", "flotilla-store", "flotilla-store-backup", ...
void CommandPages(const fs::path& flotilla, const std::string& words, const std::string& page,
                  std::vector<std::string>& pages) {
  for (const std::string& name : Subcommands(Sh(Quote(flotilla) + words + " --help"))) {
    pages.push_back(page + "-" + name);
    CommandPages(flotilla, words + " " + name, page + "-" + name, pages);
  }
}

// The keys of the configuration schema, as flotilla.yaml(5) writes them: "source.url",
// "api.tokens[].roles"; objects by their keys, lists of objects by their items' keys.
void SchemaKeys(const nlohmann::json& root, const nlohmann::json& node, const std::string& path,
                std::set<std::string>& keys) {
  if (node.contains("$ref")) {
    const std::string ref = node["$ref"].get<std::string>();
    nlohmann::json merged = root.at(nlohmann::json::json_pointer(ref.substr(1)));
    for (const auto& [key, value] : node.items()) {
      if (key != "$ref") {
        merged[key] = value;
      }
    }
    SchemaKeys(root, merged, path, keys);
  } else if (node.contains("properties")) {
    for (const auto& [name, child] : node["properties"].items()) {
      SchemaKeys(root, child, path.empty() ? name : path + "." + name, keys);
    }
  } else if (node.contains("items") &&
             (node["items"].contains("properties") || node["items"].contains("$ref"))) {
    SchemaKeys(root, node["items"], path + "[]", keys);
  } else {
    keys.insert(path);
  }
}

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

TEST_F(PackageTest, ManPagesNameEveryCommandAndRender) {
  const fs::path flotilla = Prefix() / "bin" / "flotilla";
  std::vector<std::string> pages = {"flotilla", "flotilla-hostsim", "flotilla-tartsim"};
  CommandPages(flotilla, "", "flotilla", pages);
  // The commands of this release, at least; a new one needs no change here.
  for (const char* page : {"flotilla-validate", "flotilla-plan", "flotilla-apply", "flotilla-run",
                           "flotilla-store", "flotilla-store-backup", "flotilla-store-check"}) {
    EXPECT_NE(std::find(pages.begin(), pages.end(), page), pages.end()) << page;
  }
  std::vector<fs::path> files;
  for (const std::string& page : pages) {
    files.push_back(Prefix() / "share" / "man" / "man1" / (page + ".1.gz"));
  }
  files.push_back(Prefix() / "share" / "man" / "man5" / "flotilla.yaml.5.gz");
  const std::string flotilla_page = Sh("zcat " + Quote(files[0]));
  for (const fs::path& file : files) {
    ASSERT_TRUE(fs::exists(file)) << file;
    // gzip -9n: no file name and no time stamp in the header (Debian policy 12.3).
    const std::string header = Slurp(file).substr(0, 8);
    EXPECT_EQ(header[3] & 0x08, 0) << file << " carries its file name";
    EXPECT_EQ(header.substr(4, 4), std::string(4, '\0')) << file << " carries a time stamp";
    // man-db reads its NAME line for whatis and apropos.
    const std::string page = file.stem().stem().string();
    EXPECT_NE(Sh("lexgrog " + Quote(file)).find('"' + page + " - "), std::string::npos) << file;
    // It renders without a warning from groff or man, as lintian reads it but on a terminal of
    // 80 columns (lintian's is 120 wide).
    EXPECT_EQ(Sh("{ LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z " +
                 Quote(file) + " 2>&1 >/dev/null; }"),
              "")
        << file;
    // flotilla(1) points at every other page.
    if (page != "flotilla") {
      std::string escaped;
      for (char c : page) {
        escaped += c == '-' ? std::string("\\-") : std::string(1, c);
      }
      EXPECT_NE(flotilla_page.find(".BR " + escaped + " ("), std::string::npos)
          << page << " not in SEE ALSO of flotilla(1)";
    }
  }
  // A command's page is its --help.
  const std::string diff = Sh("zcat " + Quote(Prefix() / "share/man/man1/flotilla-diff.1.gz"));
  EXPECT_NE(diff.find("fail\\-on\\-unschedulable"), std::string::npos) << diff;
}

TEST_F(PackageTest, ConfigurationManPageDescribesEverySchemaKey) {
  const nlohmann::json schema =
      nlohmann::json::parse(Slurp(fs::path(FLOTILLA_SOURCE_DIR) / "schemas" / "config.v1.json"));
  std::set<std::string> schema_keys;
  SchemaKeys(schema, schema, "", schema_keys);
  ASSERT_TRUE(schema_keys.contains("source.url"));
  ASSERT_TRUE(schema_keys.contains("api.tokens[].roles"));

  // The keys of flotilla.yaml(5): the ".B" line after each ".TP" of the KEYS section.
  std::set<std::string> page_keys;
  std::istringstream lines(Sh("zcat " + Quote(Prefix() / "share/man/man5/flotilla.yaml.5.gz")));
  bool in_keys = false;
  bool after_tp = false;
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with(".SH ")) {
      in_keys = line == ".SH KEYS";
    } else if (in_keys && after_tp && line.starts_with(".B ")) {
      std::string key = line.substr(3);
      EXPECT_TRUE(page_keys.insert(key).second) << key << " is described twice";
    }
    after_tp = line == ".TP";
  }
  for (const std::string& key : schema_keys) {
    EXPECT_TRUE(page_keys.contains(key))
        << key << ": in schemas/config.v1.json but not in packaging/man/flotilla.yaml.5";
  }
  for (const std::string& key : page_keys) {
    EXPECT_TRUE(schema_keys.contains(key))
        << key << ": in packaging/man/flotilla.yaml.5 but not in schemas/config.v1.json";
  }
  EXPECT_NE(Sh("zcat " + Quote(Prefix() / "share/man/man5/flotilla.yaml.5.gz"))
                .find("\"flotilla " FLOTILLA_VERSION "\""),
            std::string::npos);
}

TEST_F(PackageTest, LintianAcceptsThePackage) {
  const std::string deb = Deb();
  ASSERT_TRUE(fs::exists(deb)) << deb;
  // Errors and warnings fail (none is overridden); info tags are shown with them. Sh fails the
  // test with lintian's whole report when it exits non-zero.
  Sh("lintian --fail-on error,warning --tag-display-limit 0 --display-info " + Quote(deb));
}

TEST_F(PackageTest, DebianPackageHoldsTheFilesAndItsLibraries) {
  const std::string deb = Deb();
  ASSERT_TRUE(fs::exists(deb)) << deb;
  EXPECT_NE(deb.find("flotilla_" FLOTILLA_VERSION "_"), std::string::npos) << deb;

  std::set<std::string> files;
  std::istringstream listing(Sh("dpkg-deb --contents '" + deb + "' | awk '{print $6}'"));
  for (std::string line; std::getline(listing, line);) {
    files.insert(line);
  }
  for (const char* path : {"./usr/bin/flotilla",
                           "./usr/bin/flotilla-hostsim",
                           "./usr/bin/flotilla-tartsim",
                           "./usr/share/flotilla/schemas/vmset.v1.json",
                           "./usr/share/flotilla/schemas/config.v1.json",
                           "./usr/share/flotilla/schemas/hostpool-parallels.v1.json",
                           "./usr/share/flotilla/schemas/hostpool-tart.v1.json",
                           "./usr/lib/systemd/system/flotilla.service",
                           "./usr/lib/sysusers.d/flotilla.conf",
                           "./usr/share/doc/flotilla/examples/flotilla.yaml",
                           "./usr/share/doc/flotilla/copyright",
                           "./usr/share/doc/flotilla/changelog.gz",
                           "./usr/share/man/man1/flotilla.1.gz",
                           "./usr/share/man/man1/flotilla-plan.1.gz",
                           "./usr/share/man/man1/flotilla-hostsim.1.gz",
                           "./usr/share/man/man1/flotilla-tartsim.1.gz",
                           "./usr/share/man/man5/flotilla.yaml.5.gz",
                           "./usr/share/man/man1/flotilla-version.1.gz",
                           "./usr/share/man/man1/flotilla-completion.1.gz",
                           "./usr/share/bash-completion/completions/flotilla",
                           "./usr/share/zsh/vendor-completions/_flotilla",
                           "./usr/share/fish/vendor_completions.d/flotilla.fish"}) {
    EXPECT_TRUE(files.contains(path)) << path << " not in the package:\n"
                                      << Sh("dpkg-deb --contents '" + deb + "'");
  }
  // Every man page `cmake --install` places (one per command, ManPagesNameEveryCommandAndRender).
  const fs::path man = Prefix() / "share" / "man";
  for (const fs::directory_entry& page : fs::recursive_directory_iterator(man)) {
    if (page.is_regular_file()) {
      const std::string path = "./usr/share/man/" + fs::relative(page.path(), man).string();
      EXPECT_TRUE(files.contains(path)) << path << " not in the package";
    }
  }
  EXPECT_EQ(Sh("dpkg-deb --field '" + deb + "' Package"), "flotilla");
  EXPECT_EQ(Sh("dpkg-deb --field '" + deb + "' Version"), FLOTILLA_VERSION);
  // The changelog's newest entry is this version (dpkg-parsechangelog reads it as Debian does).
  EXPECT_EQ(Sh("dpkg-parsechangelog --show-field Version -l " +
               Quote(fs::path(FLOTILLA_SOURCE_DIR) / "packaging" / "debian" / "changelog")),
            FLOTILLA_VERSION);
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
