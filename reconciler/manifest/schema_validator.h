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
#include "reconciler/model/provider_rules.h"
#include "reconciler/model/result.h"

namespace flotilla::manifest {

// Validates documents against the JSON Schemas compiled in from schemas/ (draft-07, checked by
// valijson), and turns each violation into a diagnostic a person can act on: located at the
// offending key or value, naming the value and what would be valid, e.g.
//   pools.yaml:12:5: error: unknown field "replica"; did you mean "replicas"? (/spec/replica)
//
// Thread-safety: Validate may be called from several threads at once, and such calls run in
// parallel: each borrows one of a few valijson validators (each keeps a cache of compiled
// patterns, so that a `pattern` is compiled once per validator, not once per document).
//
// HostPools are checked against the pool schema merged with the settings schema of the pool's
// provider (ProviderRules::settings_schema), chosen by the document's spec.provider: each
// provider's keys are as closed as the neutral ones, and a provider that `rules` lacks is
// reported with the names of those it has.
class SchemaValidator {
 public:
  // Parses every embedded schema and merges each provider's pool settings into the pool
  // schema. An error here is a broken build (Internal), naming the provider at fault.
  static Result<std::shared_ptr<const SchemaValidator>> Create(ProviderRulesList rules);

  // The providers this validator knows, for the checks that span documents (CheckFleet).
  const ProviderRulesList& rules() const { return rules_; }

  // The HostPool schema as pools of `provider` are checked against it (the neutral keys and the
  // provider's), for editors; null when no provider of that name is known.
  const nlohmann::json* PoolSchemaOf(std::string_view provider) const;

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

  struct Compiled;  // one parsed schema; defined in the .cc

 private:
  SchemaValidator() = default;

  const Compiled* PoolSchema(const nlohmann::json& document) const;

  std::map<std::string, std::unique_ptr<Compiled>, std::less<>> schemas_;
  // The pool schema per provider name; schemas_ holds the one for a provider no rules name.
  std::map<std::string, std::unique_ptr<Compiled>, std::less<>> pool_schemas_;
  ProviderRulesList rules_;
  struct Engine;
  std::unique_ptr<Engine> engine_;  // valijson's validators and their regex caches
};

}  // namespace flotilla::manifest
