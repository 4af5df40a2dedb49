#include "reconciler/manifest/diagnostics.h"

#include <algorithm>
#include <cctype>
#include <tuple>
#include <utility>

namespace flotilla::manifest {

std::string_view ToString(Severity severity) {
  return severity == Severity::kError ? "error" : "warning";
}

std::string Diagnostic::ToString() const {
  std::string out = location.file;
  if (location.line > 0) {
    out += ":" + std::to_string(location.line) + ":" + std::to_string(location.column);
  }
  out += ": ";
  out += manifest::ToString(severity);
  out += ": ";
  out += message;
  if (!pointer.empty()) {
    out += " (" + pointer + ")";
  }
  return out;
}

void Diagnostics::Error(SourceLocation location, std::string message, std::string pointer) {
  Add({Severity::kError, std::move(location), std::move(message), std::move(pointer)});
}

void Diagnostics::Warning(SourceLocation location, std::string message, std::string pointer) {
  Add({Severity::kWarning, std::move(location), std::move(message), std::move(pointer)});
}

void Diagnostics::Add(Diagnostic diagnostic) {
  if (diagnostic.severity == Severity::kError) {
    ++error_count_;
  }
  items_.push_back(std::move(diagnostic));
}

void Diagnostics::Append(const Diagnostics& other) {
  for (const Diagnostic& d : other.items_) {
    Add(d);
  }
}

void Diagnostics::ReplaceInMessages(const std::string& from, const std::string& to) {
  for (Diagnostic& d : items_) {
    for (size_t at = 0; (at = d.message.find(from, at)) != std::string::npos; at += to.size()) {
      d.message.replace(at, from.size(), to);
    }
  }
}

void Diagnostics::AppendToFileNames(const std::string& suffix) {
  for (Diagnostic& d : items_) {
    d.location.file += suffix;
  }
}

std::vector<Diagnostic> Diagnostics::Sorted() const {
  auto key = [](const Diagnostic& d) {
    return std::tie(d.location.file, d.location.line, d.location.column, d.severity, d.message,
                    d.pointer);
  };
  std::vector<Diagnostic> sorted = items_;
  std::sort(sorted.begin(), sorted.end(),
            [&](const Diagnostic& a, const Diagnostic& b) { return key(a) < key(b); });
  sorted.erase(
      std::unique(sorted.begin(), sorted.end(),
                  [&](const Diagnostic& a, const Diagnostic& b) { return key(a) == key(b); }),
      sorted.end());
  return sorted;
}

namespace {

bool SameLetter(char a, char b) {
  return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
}

// Edits (insert, delete, substitute, swap two neighbours) from a to b, ignoring case.
size_t EditDistance(std::string_view a, std::string_view b) {
  const size_t width = b.size() + 1;
  std::vector<size_t> d((a.size() + 1) * width);
  auto at = [&](size_t i, size_t j) -> size_t& { return d[i * width + j]; };
  for (size_t i = 0; i <= a.size(); ++i) {
    at(i, 0) = i;
  }
  for (size_t j = 0; j <= b.size(); ++j) {
    at(0, j) = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = SameLetter(a[i - 1], b[j - 1]) ? 0 : 1;
      at(i, j) = std::min({at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost});
      if (i > 1 && j > 1 && SameLetter(a[i - 1], b[j - 2]) && SameLetter(a[i - 2], b[j - 1])) {
        at(i, j) = std::min(at(i, j), at(i - 2, j - 2) + 1);
      }
    }
  }
  return at(a.size(), b.size());
}

}  // namespace

std::string ClosestMatch(std::string_view word, const std::vector<std::string>& candidates) {
  // Allow roughly one typo per three characters, at least one, at most three.
  const size_t allowed = std::clamp<size_t>(word.size() / 3, 1, 3);
  std::string best;
  size_t best_distance = allowed + 1;
  for (const std::string& candidate : candidates) {
    const size_t longer = std::max(word.size(), candidate.size());
    if (longer - std::min(word.size(), candidate.size()) > allowed) {
      continue;  // cannot be close; skips the table for a huge word too
    }
    const size_t d = EditDistance(word, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

std::string Join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) {
      out += separator;
    }
    out += items[i];
  }
  return out;
}

}  // namespace flotilla::manifest
