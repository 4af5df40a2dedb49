#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "reconciler/model/types.h"

namespace flotilla::manifest {

enum class Severity { kError, kWarning };
std::string_view ToString(Severity severity);  // "error" | "warning"

// One problem found in the manifests, located in a file.
struct Diagnostic {
  Severity severity = Severity::kError;
  SourceLocation location;  // line/column 0 when the problem is about the file as a whole
  std::string message;      // never contains a secret value
  std::string pointer;      // JSON pointer inside the document ("/spec/replicas"); may be empty

  // "path/to/file.yaml:12:5: error: <message> (<pointer>)"; the ":line:column" part and the
  // pointer are left out when unknown.
  std::string ToString() const;
};

// Collects diagnostics; the manifest code reports everything it finds instead of stopping.
class Diagnostics {
 public:
  void Error(SourceLocation location, std::string message, std::string pointer = {});
  void Warning(SourceLocation location, std::string message, std::string pointer = {});
  void Add(Diagnostic diagnostic);
  void Append(const Diagnostics& other);
  // Appends `suffix` to the file name of every diagnostic.
  void AppendToFileNames(const std::string& suffix);
  // Replaces `from` by `to` in every message.
  void ReplaceInMessages(const std::string& from, const std::string& to);

  bool HasErrors() const { return error_count_ > 0; }
  size_t error_count() const { return error_count_; }
  size_t warning_count() const { return items_.size() - error_count_; }
  bool empty() const { return items_.empty(); }

  // All diagnostics ordered by file, line, column, then severity and message; duplicates
  // (same place, same message) appear once.
  std::vector<Diagnostic> Sorted() const;

 private:
  std::vector<Diagnostic> items_;
  size_t error_count_ = 0;
};

// The closest candidate within a small edit distance, for "did you mean" hints; empty if none.
std::string ClosestMatch(std::string_view word, const std::vector<std::string>& candidates);

// "a, b, c" style lists for messages.
std::string Join(const std::vector<std::string>& items, std::string_view separator = ", ");

}  // namespace flotilla::manifest
