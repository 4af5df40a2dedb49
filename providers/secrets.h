#pragma once

// Where secrets come from, and how they are kept out of everything else.
//
// DESIGN section 8: a pool names a credentialsRef; its values live in files
// `<secretsDir>/<ref>/<key>` (the layout Kubernetes gives a mounted Secret) or in environment
// variables `FLOTILLA_SECRET_<REF>_<KEY>` (upper case, '-' and '.' as '_'). Files win.

#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "reconciler/model/result.h"

namespace flotilla::providers {

// Reads one secret value. Thread-safe.
class SecretSource {
 public:
  virtual ~SecretSource() = default;
  // The value, with one trailing newline removed; nullopt if the secret is not set. Errors
  // (unreadable file, a file over 64 KiB) name the file, never its contents.
  virtual Result<std::optional<std::string>> Read(std::string_view ref,
                                                  std::string_view key) const = 0;
};

// The value of (ref, key), or "" when it is not set; errors as SecretSource::Read.
Result<std::string> ReadSecretOrEmpty(const SecretSource& secrets, std::string_view ref,
                                      std::string_view key);

// Files under a directory, then environment variables.
class FileSecretSource final : public SecretSource {
 public:
  // An empty `dir` reads only the environment.
  explicit FileSecretSource(std::filesystem::path dir) : dir_(std::move(dir)) {}
  Result<std::optional<std::string>> Read(std::string_view ref,
                                          std::string_view key) const override;

  // The environment variable consulted for (ref, key).
  static std::string EnvName(std::string_view ref, std::string_view key);

 private:
  std::filesystem::path dir_;
};

// Fixed values, for tests.
class MapSecretSource final : public SecretSource {
 public:
  void Set(std::string ref, std::string key, std::string value);
  Result<std::optional<std::string>> Read(std::string_view ref,
                                          std::string_view key) const override;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, std::string> values_;
};

// Replaces every known secret value in a text with "[REDACTED]", whatever its length: values of
// kMinAnywhere characters or more wherever they occur, shorter ones wherever they are not part
// of a longer word (they would otherwise shred ordinary text). Thread-safe.
class Redactor {
 public:
  static constexpr size_t kMinAnywhere = 4;
  void Add(std::string_view secret);
  std::string Apply(std::string_view text) const;

 private:
  mutable std::mutex mu_;
  std::vector<std::string> secrets_;  // longest first, so overlapping values redact fully
};

}  // namespace flotilla::providers
