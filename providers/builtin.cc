#include "providers/builtin.h"

#include <memory>

#include "providers/parallels/provider.h"
#include "providers/tart/provider.h"

namespace flotilla::providers {

Result<ProviderRegistry> BuiltinProviders() {
  ProviderRegistry registry;
  if (Status s = registry.Register(std::make_unique<parallels::ParallelsProviderFactory>());
      !s.ok()) {
    return s;
  }
  if (Status s = registry.Register(std::make_unique<tart::TartProviderFactory>()); !s.ok()) {
    return s;
  }
  return registry;
}

ProviderRulesList BuiltinRules() {
  Result<ProviderRegistry> registry = BuiltinProviders();
  return registry.ok() ? registry->Rules() : ProviderRulesList{};
}

}  // namespace flotilla::providers
