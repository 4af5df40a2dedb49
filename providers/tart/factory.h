#pragma once

// PROVISIONAL: registers provider tart's rules, so that manifests with `provider: tart`
// validate, plan and show their settings while the provider itself is written. Building a
// provider for a pool fails until then. Replaced by the real factory (config and provider).

#include <memory>

#include "providers/registry.h"
#include "providers/tart/rules.h"

namespace flotilla::providers::tart {

class TartProviderFactory final : public ProviderFactory {
 public:
  std::string_view name() const override { return "tart"; }
  std::shared_ptr<const ProviderRules> rules() const override { return rules_; }
  // FailedPrecondition naming the pool: there is no provider yet.
  Result<std::unique_ptr<Provider>> Build(const ProviderContext& context) const override;

 private:
  std::shared_ptr<const TartRules> rules_ = std::make_shared<TartRules>();
};

}  // namespace flotilla::providers::tart
