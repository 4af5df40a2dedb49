#include "reconciler/api/dashboard.h"

#include <httplib.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "web/embedded.h"

namespace flotilla::api {
namespace {

constexpr std::array kViews = {std::string_view("/hosts"), std::string_view("/vms"),
                               std::string_view("/plan"), std::string_view("/runs"),
                               std::string_view("/events")};

constexpr std::array kSecurityHeaders = {
    std::pair<std::string_view, std::string_view>{
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"},
    std::pair<std::string_view, std::string_view>{"X-Content-Type-Options", "nosniff"},
    std::pair<std::string_view, std::string_view>{"Referrer-Policy", "no-referrer"},
    std::pair<std::string_view, std::string_view>{"X-Frame-Options", "DENY"},
    std::pair<std::string_view, std::string_view>{"Cross-Origin-Opener-Policy", "same-origin"},
};

std::string_view ContentType(std::string_view name) {
  constexpr std::array kTypes = {
      std::pair<std::string_view, std::string_view>{".html", "text/html; charset=utf-8"},
      std::pair<std::string_view, std::string_view>{".js", "text/javascript; charset=utf-8"},
      std::pair<std::string_view, std::string_view>{".css", "text/css; charset=utf-8"},
      std::pair<std::string_view, std::string_view>{".svg", "image/svg+xml"},
      std::pair<std::string_view, std::string_view>{".png", "image/png"},
      std::pair<std::string_view, std::string_view>{".json", "application/json"},
      std::pair<std::string_view, std::string_view>{".woff2", "font/woff2"},
  };
  for (const auto& [suffix, type] : kTypes) {
    if (name.ends_with(suffix)) {
      return type;
    }
  }
  return "application/octet-stream";
}

// The file `name` (a path below web/): from the development folder when one is set, else from
// the binary. Nullopt when there is none.
std::optional<std::string> ReadFile(const std::string& dir, std::string_view name) {
  if (dir.empty()) {
    const std::string_view text = web::Find(name);
    return text.empty() ? std::nullopt : std::optional<std::string>(text);
  }
  std::ifstream in(std::filesystem::path(dir) / name, std::ios::binary);
  if (!in) {
    return std::nullopt;
  }
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

Reply FileReply(const RouteContext& context, std::string_view name) {
  std::optional<std::string> text = ReadFile(context.options.dashboard_dir, name);
  if (!text) {
    return ErrorReply(404, "no such file: /" + std::string(name));
  }
  Reply reply{.body = std::move(*text), .content_type = std::string(ContentType(name))};
  // Revalidated on every load: a new binary serves new files under the same names.
  reply.headers.emplace_back("Cache-Control", "no-cache");
  return reply;
}

}  // namespace

bool IsDashboardPath(std::string_view path) {
  if (path == "/" || path.starts_with("/assets/")) {
    return true;
  }
  for (std::string_view view : kViews) {
    if (path == view) {
      return true;
    }
  }
  if (path.starts_with("/runs/") && path.size() > 6) {
    return path.substr(6).find_first_not_of("0123456789") == std::string_view::npos;
  }
  return false;
}

Reply HandleDashboardPage(const httplib::Request& /*request*/, const Snapshot* /*snapshot*/,
                          RouteContext& context) {
  return FileReply(context, "index.html");
}

Reply HandleDashboardAsset(const httplib::Request& request, const Snapshot* /*snapshot*/,
                           RouteContext& context) {
  // The route's pattern allows one name of letters, digits, '.', '_' and '-' that does not start
  // with a dot: nothing outside assets/ can be named.
  return FileReply(context, "assets/" + request.matches[1].str());
}

std::span<const std::pair<std::string_view, std::string_view>> SecurityHeaders() {
  return kSecurityHeaders;
}

}  // namespace flotilla::api
