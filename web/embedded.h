#pragma once

#include <string_view>
#include <vector>

namespace flotilla::web {

// The text of a dashboard file by its path below web/ ("index.html", "assets/app.js"),
// compiled into the binary; empty if there is no such file.
std::string_view Find(std::string_view name);

// Every embedded file's path.
std::vector<std::string_view> Names();

}  // namespace flotilla::web
