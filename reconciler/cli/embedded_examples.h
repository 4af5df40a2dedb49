#pragma once

// The example fleet (examples/fleet), compiled into the binary for `flotilla dev`.

#include <string_view>
#include <vector>

namespace flotilla::cli::examples {

// The text of a file of examples/fleet by its path there ("pools/mac-builders.yaml"); empty if
// there is no such file.
std::string_view Find(std::string_view name);

// Every embedded path, sorted.
std::vector<std::string_view> Names();

}  // namespace flotilla::cli::examples
