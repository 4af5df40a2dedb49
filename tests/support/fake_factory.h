#pragma once

// A "fake" provider factory whose every pool's provider forwards to one shared FakeProvider:
// a controller built on it observes and changes the in-memory world of that fake (controller
// tests, bench/pass).

#include <memory>
#include <string_view>

#include "providers/fake_provider.h"
#include "providers/registry.h"
#include "tests/support/forwarding_provider.h"

namespace flotilla::testing {

class FakeForwarderFactory : public providers::ProviderFactory {
 public:
  // `fake` must outlive the factory and every provider it builds.
  explicit FakeForwarderFactory(providers::FakeProvider& fake) : fake_(fake) {}
  std::string_view name() const override { return "fake"; }
  std::shared_ptr<const ProviderRules> rules() const override {
    return std::make_shared<providers::FakeRules>();
  }
  Result<std::unique_ptr<providers::Provider>> Build(
      const providers::ProviderContext& /*context*/) const override {
    return std::unique_ptr<providers::Provider>(std::make_unique<ForwardingProvider>(fake_));
  }

 private:
  providers::FakeProvider& fake_;
};

}  // namespace flotilla::testing
