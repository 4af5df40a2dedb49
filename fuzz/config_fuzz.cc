// The reconciler's configuration file (reconciler/manifest/config.h LoadConfigFile). A token
// lives in the environment variable FLOTILLA_FUZZ_TOKEN and in a token file; "@TOKEN_FILE@" in
// the input is replaced by that file's path, so inputs may point tokenFile,
// webhookSecretFile, ... at it. Invariants: no crash, no sanitizer report; every diagnostic
// names the file and a line >= 1; the result is an error exactly when there are error
// diagnostics; no message contains the token.

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include "fuzz/invariants.h"
#include "providers/builtin.h"
#include "reconciler/manifest/config.h"

namespace {

namespace fs = std::filesystem;
using flotilla::fuzz::Check;
using flotilla::fuzz::CheckNoSecret;

constexpr std::string_view kToken = "fuzz-config-token-Rm4XvQ9";

struct Setup {
  std::shared_ptr<const flotilla::manifest::SchemaValidator> validator;
  fs::path dir;
  std::string config_path;
  std::string token_path;
};

const Setup& Once() {
  static const Setup* setup = [] {
    auto* s = new Setup;
    auto validator =
        flotilla::manifest::SchemaValidator::Create(flotilla::providers::BuiltinRules());
    Check(validator.ok(), "the schemas do not load");
    s->validator = *validator;
    s->dir = fs::temp_directory_path() / ("flotilla-fuzz-config-" + std::to_string(::getpid()));
    fs::create_directories(s->dir);
    s->config_path = (s->dir / "flotilla.yaml").string();
    s->token_path = (s->dir / "token").string();
    std::ofstream(s->token_path, std::ios::binary) << kToken << "\n";
    ::setenv("FLOTILLA_FUZZ_TOKEN", std::string(kToken).c_str(), 1);
    // Removed at exit; a crash leaves a folder of two small files in the temporary folder.
    std::atexit([] { fs::remove_all(Once().dir); });
    return s;
  }();
  return *setup;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Setup& setup = Once();
  std::string text(reinterpret_cast<const char*>(data), size);
  if (text.find(kToken) != std::string::npos) {
    return 0;  // an input holding the token itself may be quoted back
  }
  constexpr std::string_view kPlaceholder = "@TOKEN_FILE@";
  for (size_t at = text.find(kPlaceholder); at != std::string::npos;
       at = text.find(kPlaceholder, at + setup.token_path.size())) {
    text.replace(at, kPlaceholder.size(), setup.token_path);
  }
  std::ofstream(setup.config_path, std::ios::binary | std::ios::trunc) << text;

  flotilla::manifest::Diagnostics diagnostics;
  flotilla::Result<flotilla::manifest::ReconcilerConfig> config =
      flotilla::manifest::LoadConfigFile(setup.config_path, *setup.validator, diagnostics);
  flotilla::fuzz::CheckLocated(diagnostics, {setup.config_path});
  Check(config.ok() == !diagnostics.HasErrors(), "the result and the diagnostics disagree");
  if (!config.ok()) {
    CheckNoSecret(config.status().ToString(), kToken);
  }
  for (const flotilla::manifest::Diagnostic& d : diagnostics.Sorted()) {
    CheckNoSecret(d.ToString(), kToken);
  }
  return 0;
}
