#pragma once

#include <string_view>
#include <vector>

namespace flotilla::providers::tart::embedded {

// The text of a file of providers/tart compiled into the binary (cmake/EmbedFiles.cmake), by
// file name ("pool_settings.v1.json"); empty if there is no such file.
std::string_view Find(std::string_view name);

// Every embedded file name.
std::vector<std::string_view> Names();

}  // namespace flotilla::providers::tart::embedded
