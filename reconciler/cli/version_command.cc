#include "reconciler/cli/version_command.h"

#include <sstream>

#include <openssl/crypto.h>

#include "reconciler/cli/read_commands.h"
#include "reconciler/source/git_source.h"
#include "reconciler/store/sqlite.h"

#ifndef FLOTILLA_VERSION
#define FLOTILLA_VERSION "unknown"
#endif
#ifndef FLOTILLA_BUILD_TYPE
#define FLOTILLA_BUILD_TYPE "unknown"
#endif
#ifndef FLOTILLA_YAML_CPP_VERSION
#define FLOTILLA_YAML_CPP_VERSION "unknown"
#endif
#ifndef FLOTILLA_SANITIZERS
#define FLOTILLA_SANITIZERS ""
#endif
#ifndef FLOTILLA_HTTPLIB_VERSION
#define FLOTILLA_HTTPLIB_VERSION "unknown"
#endif

namespace flotilla::cli {

// Written at build time by cmake/BuildInfo.cmake.
const char* BuildCommit();

namespace {

std::string Compiler() {
#if defined(__clang__)
  return "clang " __clang_version__;
#elif defined(__GNUC__)
  return "gcc " __VERSION__;
#else
  return "unknown";
#endif
}

// FLOTILLA_SANITIZERS: "address,undefined" in a sanitizer build (reconciler/cli/CMakeLists.txt).
std::vector<std::string> Sanitizers() {
  std::vector<std::string> found;
  std::stringstream words(FLOTILLA_SANITIZERS);
  for (std::string word; std::getline(words, word, ',');) {
    found.push_back(word);
  }
  return found;
}

// "OpenSSL 3.0.19 1 Jul 2025" -> "3.0.19".
std::string OpenSslVersion() {
  std::string text = OpenSSL_version(OPENSSL_VERSION);
  if (text.starts_with("OpenSSL ")) {
    text = text.substr(8);
  }
  return text.substr(0, text.find(' '));
}

}  // namespace

VersionReport CurrentVersion(const providers::ProviderRegistry& providers) {
  return VersionReport{
      .version = FLOTILLA_VERSION,
      .commit = BuildCommit(),
      .build_type = FLOTILLA_BUILD_TYPE,
      .compiler = Compiler(),
      .sanitizers = Sanitizers(),
      .providers = providers.Names(),
      .libraries = {{.name = "libgit2", .version = source::GitLibrary::Version()},
                    {.name = "SQLite", .version = store::sqlite::SqliteVersion()},
                    {.name = "OpenSSL", .version = OpenSslVersion()},
                    {.name = "yaml-cpp", .version = FLOTILLA_YAML_CPP_VERSION, .runtime = false},
                    {.name = "cpp-httplib", .version = FLOTILLA_HTTPLIB_VERSION, .runtime = false}},
  };
}

std::string VersionText(const VersionReport& report) {
  auto join = [](const std::vector<std::string>& words) {
    std::string text;
    for (const std::string& word : words) {
      text += (text.empty() ? "" : ", ") + word;
    }
    return text;
  };
  std::string text = "flotilla " + report.version + "\n";
  auto line = [&text](const std::string& key, const std::string& value) {
    text += key + std::string(key.size() < 12 ? 12 - key.size() : 1, ' ') + value + "\n";
  };
  line("commit", report.commit);
  line("build", report.build_type + ", " + report.compiler +
                    (report.sanitizers.empty() ? "" : ", sanitizers: " + join(report.sanitizers)));
  line("providers", join(report.providers));
  for (const VersionReport::Library& library : report.libraries) {
    line(library.name, library.version + (library.runtime ? "" : " (built with)"));
  }
  return text;
}

nlohmann::json VersionJson(const VersionReport& report) {
  nlohmann::json libraries = nlohmann::json::object();
  for (const VersionReport::Library& library : report.libraries) {
    libraries[library.name] = {{"version", library.version}, {"runtime", library.runtime}};
  }
  return {{"version", report.version},       {"commit", report.commit},
          {"buildType", report.build_type},  {"compiler", report.compiler},
          {"sanitizers", report.sanitizers}, {"providers", report.providers},
          {"libraries", libraries}};
}

CLI::App* AddVersionCommand(CLI::App& app, VersionOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "version",
      "Print the version, the Git commit it was built from, the build type, the providers built "
      "in and the versions of the libraries it runs with: what a bug report needs.");
  AddOutputFlags(*cmd, options.json);
  return cmd;
}

int RunVersion(const VersionOptions& options, const Context& context) {
  const VersionReport report = CurrentVersion(context.providers);
  if (options.json) {
    context.out << VersionJson(report).dump(2) << "\n";
  } else {
    context.out << VersionText(report);
  }
  return 0;
}

}  // namespace flotilla::cli
