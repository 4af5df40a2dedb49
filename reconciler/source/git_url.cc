#include "reconciler/source/git_url.h"

#include <algorithm>
#include <cctype>

namespace flotilla::source {
namespace {

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

struct Authority {
  std::string user;
  bool had_password = false;
  std::string host;
  int port = 0;
  bool ok = true;
};

// "user:pass@host:port" (no path).
Authority ParseAuthority(std::string_view a) {
  Authority out;
  const size_t at = a.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = a.substr(0, at);
    const size_t colon = userinfo.find(':');
    out.user = std::string(userinfo.substr(0, colon));
    out.had_password = colon != std::string_view::npos;
    a = a.substr(at + 1);
  }
  std::string_view host = a;
  std::string_view port;
  if (StartsWith(a, "[")) {
    const size_t close = a.find(']');
    if (close == std::string_view::npos) {
      out.ok = false;
      return out;
    }
    host = a.substr(0, close + 1);
    if (close + 1 < a.size() && a[close + 1] != ':') {
      out.ok = false;  // "[::1]x": nothing but a port may follow the bracket
      return out;
    }
    if (close + 1 < a.size()) {
      port = a.substr(close + 2);
    }
  } else if (const size_t colon = a.rfind(':'); colon != std::string_view::npos) {
    host = a.substr(0, colon);
    port = a.substr(colon + 1);
  }
  out.host = std::string(host);
  if (!port.empty()) {
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit)) {
      out.ok = false;
      return out;
    }
    out.port = std::stoi(std::string(port));
    out.ok = out.port > 0 && out.port < 65536;
  }
  // A colon left in a host outside brackets ("a:b:") is no host name; libgit2 would read it
  // as a port.
  out.ok = out.ok && !out.host.empty() &&
           (out.host.front() == '[' || out.host.find(':') == std::string::npos);
  return out;
}

}  // namespace

int GitUrl::EffectivePort() const {
  if (port != 0) {
    return port;
  }
  switch (kind) {
    case Kind::kSsh:
      return 22;
    case Kind::kGit:
      return 9418;
    case Kind::kHttp:
      return 80;
    case Kind::kHttps:
      return 443;
    default:
      return 0;
  }
}

Result<GitUrl> ParseGitUrl(std::string_view text) {
  if (text.empty()) {
    return Status::InvalidArgument("the repository URL is empty");
  }
  GitUrl url;
  const size_t scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) {
    // scp-like "user@host:path" (a colon before any slash), else a local path.
    const size_t colon = text.find(':');
    const size_t slash = text.find('/');
    if (colon != std::string_view::npos && (slash == std::string_view::npos || colon < slash) &&
        colon > 1) {
      Authority a = ParseAuthority(text.substr(0, colon));
      if (!a.ok || a.had_password) {
        return Status::InvalidArgument("cannot read the repository address (user@host:path)");
      }
      url.kind = GitUrl::Kind::kSsh;
      url.host = a.host;
      url.user = a.user;
      url.url = std::string(text);
      url.redacted = url.url;
      return url;
    }
    url.kind = GitUrl::Kind::kLocal;
    url.url = std::string(text);
    url.redacted = url.url;
    return url;
  }
  const std::string scheme(text.substr(0, scheme_end));
  if (scheme == "file") {
    url.kind = GitUrl::Kind::kFile;
    url.url = std::string(text);
    url.redacted = url.url;
    return url;
  }
  if (scheme == "git") {
    url.kind = GitUrl::Kind::kGit;
  } else if (scheme == "http") {
    url.kind = GitUrl::Kind::kHttp;
  } else if (scheme == "https") {
    url.kind = GitUrl::Kind::kHttps;
  } else if (scheme == "ssh" || scheme == "git+ssh" || scheme == "ssh+git") {
    url.kind = GitUrl::Kind::kSsh;
  } else {
    return Status::InvalidArgument("unsupported repository URL scheme \"" + scheme +
                                   "\" (use https, http, ssh, git, file or a local path)");
  }
  // Credentials may hold '/' (base64 tokens do): the user part runs to the last '@', and the
  // host to the first '/' after it.
  const std::string_view rest = text.substr(scheme_end + 3);
  const size_t at = rest.rfind('@');
  const size_t host_start = at == std::string_view::npos ? 0 : at + 1;
  const size_t path_start = rest.find('/', host_start);
  const std::string_view authority = rest.substr(0, path_start);
  const std::string_view path =
      path_start == std::string_view::npos ? std::string_view() : rest.substr(path_start);
  Authority a = ParseAuthority(authority);
  if (!a.ok) {
    // Redacted by this parse, not RedactUrls: that one ends a URL at white space, which a
    // pasted password may hold.
    return Status::InvalidArgument("cannot read the host and port of the repository URL " + scheme +
                                   "://" + (at == std::string_view::npos ? "" : "***@") +
                                   std::string(rest.substr(host_start)));
  }
  url.host = a.host;
  url.port = a.port;
  const std::string host_port = a.host + (a.port != 0 ? ":" + std::to_string(a.port) : "");
  if (url.kind == GitUrl::Kind::kSsh) {
    // The ssh user name is no secret; a password written after it is dropped (keys only).
    url.user = a.user;
    const std::string user_part = a.user.empty() ? "" : a.user + "@";
    url.url = scheme + "://" + user_part + host_port + std::string(path);
    url.redacted = url.url;
  } else {
    // In http(s) and git URLs the user part is often a token itself: never send, keep or show
    // it. Tokens come from a token file or the environment.
    url.url = scheme + "://" + host_port + std::string(path);
    url.redacted = scheme + "://" + (a.user.empty() ? "" : "***@") + host_port + std::string(path);
  }
  return url;
}

std::string RedactUrls(std::string text) {
  size_t pos = 0;
  while ((pos = text.find("://", pos)) != std::string::npos) {
    const size_t start = pos + 3;
    size_t end = start;  // the URL runs to white space or a quote
    while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end])) &&
           text[end] != '\'' && text[end] != '"') {
      ++end;
    }
    // Everything before the URL's last '@' may be a credential, '/' and all.
    const size_t at = text.rfind('@', end - 1);
    if (at != std::string::npos && at >= start) {
      text.replace(start, at - start, "***");
      pos = start + 4;
    } else {
      pos = end;
    }
  }
  return text;
}

}  // namespace flotilla::source
