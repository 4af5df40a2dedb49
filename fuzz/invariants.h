#pragma once

// What the fuzz targets check beyond "no crash": a broken invariant aborts with its reason, so
// that libFuzzer (and the replay tests) report the input.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "reconciler/manifest/diagnostics.h"

namespace flotilla::fuzz {

// Aborts with `what` unless `ok`.
inline void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
    std::abort();
  }
}

// Aborts, printing `text`, when `text` contains `secret`.
inline void CheckNoSecret(std::string_view text, std::string_view secret) {
  if (!secret.empty() && text.find(secret) != std::string_view::npos) {
    std::fprintf(stderr, "fuzz invariant broken: a secret in the text: %.*s\n",
                 static_cast<int>(text.size()), text.data());
    std::abort();
  }
}

// Messages about a file as a whole, the only ones that may carry no line.
inline bool IsFileLevel(const manifest::Diagnostic& d) {
  return d.message.starts_with("file is ") || d.message.starts_with("too many documents");
}

// Every diagnostic names one of `files` and, unless it is about a whole file, a line >= 1 and
// a column >= 1.
inline void CheckLocated(const manifest::Diagnostics& diagnostics,
                         const std::vector<std::string>& files) {
  for (const manifest::Diagnostic& d : diagnostics.Sorted()) {
    bool known = false;
    for (const std::string& f : files) {
      known = known || d.location.file == f;
    }
    if (!known || (!IsFileLevel(d) && (d.location.line < 1 || d.location.column < 1))) {
      std::fprintf(stderr, "fuzz invariant broken: a diagnostic without a place: %s\n",
                   d.ToString().c_str());
      std::abort();
    }
  }
}

}  // namespace flotilla::fuzz
