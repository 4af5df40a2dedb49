#include "reconciler/model/provider_rules.h"

namespace flotilla {

const ProviderRules* FindRules(const ProviderRulesList& rules, std::string_view name) {
  for (const std::shared_ptr<const ProviderRules>& r : rules) {
    if (r->name() == name) {
      return r.get();
    }
  }
  return nullptr;
}

}  // namespace flotilla
