#pragma once

// The web dashboard (web/, docs/dashboard.md) as the API serves it, without a token (the files
// hold no data; the page asks for the token and sends it with every data request):
//   GET /, /hosts, /vms, /plan, /runs, /runs/{id}, /events   index.html (the page routes by path)
//   GET /assets/{name}                                       a file of web/assets/
// The files are compiled into the binary (flotilla_web). For work on the dashboard,
// ServerOptions::dashboard_dir (`FLOTILLA_DASHBOARD_DIR`) serves them from that folder instead,
// read again on every request.
//
// Every answer of the server, API or dashboard, carries SecurityHeaders(): a strict
// Content-Security-Policy (no inline script or style, nothing from elsewhere, no framing),
// nosniff and no referrer.

#include <span>
#include <string_view>
#include <utility>

#include "reconciler/api/routes.h"

namespace flotilla::api {

// Whether `path` is one of the dashboard's (served without a token).
bool IsDashboardPath(std::string_view path);

Reply HandleDashboardPage(const httplib::Request& request, const Snapshot* snapshot,
                          RouteContext& context);
Reply HandleDashboardAsset(const httplib::Request& request, const Snapshot* snapshot,
                           RouteContext& context);

// The headers every answer carries.
std::span<const std::pair<std::string_view, std::string_view>> SecurityHeaders();

}  // namespace flotilla::api
