#include "providers/registry.h"

#include <algorithm>

namespace flotilla::providers {

Status ProviderRegistry::Register(std::unique_ptr<ProviderFactory> factory) {
  if (factory == nullptr) {
    return Status::InvalidArgument("cannot register a null provider factory");
  }
  if (factory->rules() == nullptr || factory->rules()->name() != factory->name()) {
    return Status::InvalidArgument("provider \"" + std::string(factory->name()) +
                                   "\" has no rules of its own name");
  }
  for (const auto& known : factories_) {
    if (known->name() == factory->name()) {
      return Status::AlreadyExists("provider \"" + std::string(factory->name()) +
                                   "\" is registered twice");
    }
  }
  factories_.push_back(std::move(factory));
  return Status::Ok();
}

Result<const ProviderFactory*> ProviderRegistry::Find(std::string_view name) const {
  for (const auto& factory : factories_) {
    if (factory->name() == name) {
      return factory.get();
    }
  }
  std::string known;
  for (const std::string& n : Names()) {
    known += known.empty() ? "" : ", ";
    known += n;
  }
  return Status::NotFound("unknown provider \"" + std::string(name) +
                          "\"; known providers: " + (known.empty() ? "(none)" : known));
}

Result<std::unique_ptr<Provider>> ProviderRegistry::Build(const ProviderContext& context) const {
  Result<const ProviderFactory*> factory = Find(context.pool.provider);
  if (!factory.ok()) {
    return factory.status().WithContext("pool " + context.pool.meta.name);
  }
  return (*factory)->Build(context);
}

std::vector<std::string> ProviderRegistry::Names() const {
  std::vector<std::string> names;
  names.reserve(factories_.size());
  for (const auto& factory : factories_) {
    names.emplace_back(factory->name());
  }
  std::sort(names.begin(), names.end());
  return names;
}

ProviderRulesList ProviderRegistry::Rules() const {
  ProviderRulesList rules;
  for (const std::string& name : Names()) {
    for (const auto& factory : factories_) {
      if (factory->name() == name) {
        rules.push_back(factory->rules());
      }
    }
  }
  return rules;
}

}  // namespace flotilla::providers
