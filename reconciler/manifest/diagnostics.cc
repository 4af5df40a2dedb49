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

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                        std::tolower(static_cast<unsigned char>(b[j - 1]));
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string ClosestMatch(std::string_view word, const std::vector<std::string>& candidates) {
  // Allow roughly one typo per three characters, at least one, at most three.
  const size_t allowed = std::clamp<size_t>(word.size() / 3, 1, 3);
  std::string best;
  size_t best_distance = allowed + 1;
  for (const std::string& candidate : candidates) {
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

std::string JoinQuoted(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) {
      out += (i + 1 == items.size()) ? " or " : ", ";
    }
    out += "\"" + items[i] + "\"";
  }
  return out;
}

}  // namespace flotilla::manifest
