#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "reconciler/manifest/diagnostics.h"
#include "reconciler/manifest/yaml_reader.h"
#include "reconciler/model/result.h"

namespace flotilla::manifest {

// Validates documents against the JSON Schemas compiled in from schemas/ (draft-07, checked by
// valijson), and turns each violation into a diagnostic a person can act on: located at the
// offending key or value, naming the value and what would be valid, e.g.
//   pools.yaml:12:5: error: unknown field "replica"; did you mean "replicas"? (/spec/replica)
//
// Thread-safety: Validate may be called from several threads at once; calls on one validator
// are serialised (valijson's validator keeps a cache of compiled patterns, shared by all calls
// so that each `pattern` is compiled once, not once per document).
class SchemaValidator {
 public:
  // Parses every embedded schema. An error here is a broken build (Internal).
  static Result<std::shared_ptr<const SchemaValidator>> Create();

  ~SchemaValidator();

  // Validates `doc` against the schema file `schema` ("vmset.v1.json"). Appends one diagnostic
  // per problem and returns true when there was none. Values at `redacted` pointers (secrets)
  // are never quoted in messages.
  // REQUIRES: `schema` is one of schemas::Names().
  bool Validate(std::string_view schema, const YamlDocument& doc, Diagnostics& diagnostics,
                const std::set<std::string>& redacted = {}) const;

  // The same for a JSON value with no source positions (diagnostics carry `file` and the
  // pointer only).
  bool Validate(std::string_view schema, const nlohmann::json& value, const std::string& file,
                Diagnostics& diagnostics) const;

 private:
  struct Compiled;
  SchemaValidator() = default;

  std::map<std::string, std::unique_ptr<Compiled>, std::less<>> schemas_;
  struct Engine;
  std::unique_ptr<Engine> engine_;  // valijson's validator and its regex cache, under a mutex
};

}  // namespace flotilla::manifest
