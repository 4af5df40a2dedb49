#pragma once

// Building providers by name from typed configuration (the Envoy extension pattern, with an
// explicit registry object instead of static registration).
//
//   ProviderRegistry registry;                        // built in main, or by a test
//   registry.Register(std::make_unique<ParallelsProviderFactory>());
//   Result<std::unique_ptr<Provider>> p = registry.Build("parallels", context);
//
// A factory turns a ProviderContext (the pool, its secrets, a logger and a clock) into its own
// typed config once, through TypedProviderFactory; the provider itself only ever sees that type.
// It also owns everything else provider-specific that core code needs, as ProviderRules
// (reconciler/model/provider_rules.h): the schema of its pool settings, its pool checks, the
// images it takes and how its hosts key cached ones. The registry hands those to the manifest
// layer (ProviderRegistry::Rules), so core code never names a provider.

#include <spdlog/logger.h>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "providers/provider.h"
#include "providers/secrets.h"
#include "reconciler/model/clock.h"
#include "reconciler/model/provider_rules.h"
#include "reconciler/model/result.h"
#include "reconciler/model/types.h"

namespace flotilla::providers {

// What a factory may read to build a provider for one pool. All references outlive the
// provider built from them.
struct ProviderContext {
  const HostPool& pool;
  const SecretSource& secrets;
  std::shared_ptr<spdlog::logger> logger;  // never null
  const Clock& clock;
  RequestObserver* requests = nullptr;  // may be null; outlives the provider
};

class ProviderFactory {
 public:
  virtual ~ProviderFactory() = default;
  virtual std::string_view name() const = 0;
  // This provider's rules for manifests and planning; never null, and named name().
  virtual std::shared_ptr<const ProviderRules> rules() const = 0;
  // Builds a provider for `context.pool`. Errors name the pool and what is wrong with its
  // configuration (a missing credential file, an unreadable CA file); never a secret.
  virtual Result<std::unique_ptr<Provider>> Build(const ProviderContext& context) const = 0;
};

// Does the config step once: ParseConfig checks everything and yields a Config; Create only
// ever sees a valid Config.
template <typename Config>
class TypedProviderFactory : public ProviderFactory {
 public:
  Result<std::unique_ptr<Provider>> Build(const ProviderContext& context) const final {
    Result<Config> config = ParseConfig(context);
    if (!config.ok()) {
      return config.status().WithContext("pool " + context.pool.meta.name);
    }
    return Create(std::move(*config), context);
  }

 protected:
  virtual Result<Config> ParseConfig(const ProviderContext& context) const = 0;
  virtual Result<std::unique_ptr<Provider>> Create(Config config,
                                                   const ProviderContext& context) const = 0;
};

// Factories by name. Not thread-safe for registration; lookups after set-up are read-only.
class ProviderRegistry {
 public:
  // AlreadyExists if a factory of that name is registered.
  Status Register(std::unique_ptr<ProviderFactory> factory);

  // NotFound listing the known names if `name` is unknown.
  Result<const ProviderFactory*> Find(std::string_view name) const;

  // Find(context.pool.provider), then Build.
  Result<std::unique_ptr<Provider>> Build(const ProviderContext& context) const;

  std::vector<std::string> Names() const;  // sorted

  // Every registered factory's rules, in the order of Names().
  ProviderRulesList Rules() const;

 private:
  std::vector<std::unique_ptr<ProviderFactory>> factories_;
};

}  // namespace flotilla::providers
