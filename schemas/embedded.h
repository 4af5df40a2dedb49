#pragma once

#include <string_view>
#include <vector>

namespace flotilla::schemas {

// The text of a schema file of this folder, by file name ("vmset.v1.json"), compiled into the
// binary; empty if there is no such file.
std::string_view Find(std::string_view name);

// Every embedded file name.
std::vector<std::string_view> Names();

}  // namespace flotilla::schemas
