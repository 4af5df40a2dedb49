#pragma once

// The providers this build knows. Adding a provider to flotilla is one line here (and its
// library in providers/CMakeLists.txt's FLOTILLA_BUILTIN_PROVIDERS): nothing else outside its
// folder names it (docs/architecture.md, "Adding a provider").

#include "providers/registry.h"
#include "reconciler/model/provider_rules.h"
#include "reconciler/model/result.h"

namespace flotilla::providers {

// A registry with every built-in provider. Errors only on a bug in the list (a name twice, a
// factory without rules); main refuses to start then.
Result<ProviderRegistry> BuiltinProviders();

// Their rules, for tools and tests that validate manifests without driving hosts.
ProviderRulesList BuiltinRules();

}  // namespace flotilla::providers
