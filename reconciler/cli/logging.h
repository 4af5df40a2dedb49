#pragma once

#include <memory>
#include <ostream>
#include <string_view>

#include <spdlog/logger.h>

#include "reconciler/model/result.h"

namespace flotilla::cli {

enum class LogFormat { kText, kJson };

// A logger writing to `sink` (stderr in main): text lines
//   2026-11-23T14:23:15.123Z info  loaded 5 files
// or one JSON object per line ({"time":...,"level":...,"msg":...}) for log collectors.
// `level` is trace|debug|info|warn|error; anything else is InvalidArgument.
// The logger is created once in main and passed down; nothing registers it globally.
Result<std::shared_ptr<spdlog::logger>> MakeLogger(LogFormat format, std::string_view level,
                                                   std::ostream& sink);

}  // namespace flotilla::cli
