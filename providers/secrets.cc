#include "providers/secrets.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <system_error>

namespace flotilla::providers {
namespace {

constexpr uintmax_t kMaxSecretBytes = uintmax_t{64} * 1024;

bool IsSafeComponent(std::string_view part) {
  return !part.empty() && part != "." && part != ".." && part.find('/') == std::string_view::npos &&
         part.find('\0') == std::string_view::npos;
}

void TrimOneNewline(std::string& value) {
  if (!value.empty() && value.back() == '\n') {
    value.pop_back();
    if (!value.empty() && value.back() == '\r') {
      value.pop_back();
    }
  }
}

}  // namespace

std::string FileSecretSource::EnvName(std::string_view ref, std::string_view key) {
  std::string name = "FLOTILLA_SECRET_";
  auto append = [&name](std::string_view part) {
    for (char c : part) {
      const auto u = static_cast<unsigned char>(c);
      name += std::isalnum(u) != 0 ? static_cast<char>(std::toupper(u)) : '_';
    }
  };
  append(ref);
  name += '_';
  append(key);
  return name;
}

Result<std::optional<std::string>> FileSecretSource::Read(std::string_view ref,
                                                          std::string_view key) const {
  if (!IsSafeComponent(ref) || !IsSafeComponent(key)) {
    return Status::InvalidArgument("secret reference \"" + std::string(ref) + "/" +
                                   std::string(key) + "\" is not a plain name");
  }
  if (!dir_.empty()) {
    const std::filesystem::path file = dir_ / std::string(ref) / std::string(key);
    std::error_code ec;
    if (std::filesystem::exists(file, ec)) {
      const uintmax_t size = std::filesystem::file_size(file, ec);
      if (ec) {
        return Status::FailedPrecondition("cannot read secret file " + file.string() + ": " +
                                          ec.message());
      }
      if (size > kMaxSecretBytes) {
        return Status::FailedPrecondition("secret file " + file.string() +
                                          " is larger than 64 KiB");
      }
      std::ifstream in(file, std::ios::binary);
      if (!in) {
        return Status::FailedPrecondition("cannot read secret file " + file.string());
      }
      std::ostringstream buffer;
      buffer << in.rdbuf();
      std::string value = buffer.str();
      TrimOneNewline(value);
      if (value.empty()) {
        // Never a silent fallback to the environment, nor an empty credential.
        return Status::FailedPrecondition("secret file " + file.string() +
                                          " is empty; write the value into it, or remove the "
                                          "file to use " +
                                          EnvName(ref, key));
      }
      return std::optional<std::string>(std::move(value));
    }
  }
  // getenv is read-only here; nothing in the process sets variables after start-up.
  if (const char* value =
          std::getenv(EnvName(ref, key).c_str())) {  // NOLINT(concurrency-mt-unsafe)
    std::string text(value);
    TrimOneNewline(text);
    if (text.empty()) {
      return Status::FailedPrecondition("the variable " + EnvName(ref, key) + " is empty");
    }
    return std::optional<std::string>(std::move(text));
  }
  return std::optional<std::string>();
}

void MapSecretSource::Set(std::string ref, std::string key, std::string value) {
  std::lock_guard lock(mu_);
  values_[{std::move(ref), std::move(key)}] = std::move(value);
}

Result<std::optional<std::string>> MapSecretSource::Read(std::string_view ref,
                                                         std::string_view key) const {
  std::lock_guard lock(mu_);
  auto it = values_.find({std::string(ref), std::string(key)});
  if (it == values_.end()) {
    return std::optional<std::string>();
  }
  return std::optional<std::string>(it->second);
}

void Redactor::Add(std::string_view secret) {
  if (secret.empty()) {
    return;
  }
  std::lock_guard lock(mu_);
  if (std::find(secrets_.begin(), secrets_.end(), secret) != secrets_.end()) {
    return;
  }
  secrets_.emplace_back(secret);
  std::stable_sort(secrets_.begin(), secrets_.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::string Redactor::Apply(std::string_view text) const {
  std::string out(text);
  std::lock_guard lock(mu_);
  constexpr std::string_view kMark = "[REDACTED]";
  const auto is_word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  for (const std::string& secret : secrets_) {
    // A short value is replaced where it stands alone, so that a 3-character password is
    // hidden in "password=abc" but ordinary words that contain it stay readable.
    const bool whole_word_only = secret.size() < kMinAnywhere;
    size_t at = 0;
    while ((at = out.find(secret, at)) != std::string::npos) {
      const size_t end = at + secret.size();
      if (whole_word_only && ((at > 0 && is_word(out[at - 1]) && is_word(secret.front())) ||
                              (end < out.size() && is_word(out[end]) && is_word(secret.back())))) {
        ++at;
        continue;
      }
      out.replace(at, secret.size(), kMark);
      at += kMark.size();
    }
  }
  return out;
}

Result<std::string> ReadSecretOrEmpty(const SecretSource& secrets, std::string_view ref,
                                      std::string_view key) {
  Result<std::optional<std::string>> value = secrets.Read(ref, key);
  if (!value.ok()) {
    return value.status();
  }
  return value->value_or("");
}

}  // namespace flotilla::providers
