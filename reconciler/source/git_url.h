#pragma once

#include <string>
#include <string_view>

#include "reconciler/model/result.h"

namespace flotilla::source {

// A fleet repository location, as a user writes it in `source.url`.
struct GitUrl {
  enum class Kind { kLocal, kFile, kGit, kHttp, kHttps, kSsh };

  Kind kind = Kind::kLocal;
  std::string url;       // what libgit2 is given (credentials stripped)
  std::string host;      // empty for local and file
  int port = 0;          // the port written in the URL, or 0 for the scheme's default
  std::string user;      // ssh user, or the user part of an http URL (never a password)
  std::string redacted;  // safe to log: no password, no token

  bool IsRemote() const { return kind != Kind::kLocal && kind != Kind::kFile; }
  // The port actually used: the written one or the scheme's default (22, 9418, 80, 443).
  int EffectivePort() const;
};

// Parses local paths, file://, git://, http(s)://, ssh:// and scp-like "git@host:org/repo.git".
// A password embedded in an http(s) URL is removed from `url` and never kept (pass tokens
// through a token file or the environment). Errors: InvalidArgument naming what is wrong.
Result<GitUrl> ParseGitUrl(std::string_view text);

// `text` with every "user:password@" or "token@" of a URL replaced by "***@", for messages
// that may quote a URL (libgit2's errors do).
std::string RedactUrls(std::string text);

}  // namespace flotilla::source
