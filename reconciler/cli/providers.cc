#include <memory>

#include "providers/parallels/provider.h"
#include "reconciler/cli/app.h"

namespace flotilla::cli {

providers::ProviderRegistry BuiltinProviders() {
  providers::ProviderRegistry registry;
  // Registration only fails on a duplicate name, which would be a bug in this list.
  const Status status =
      registry.Register(std::make_unique<providers::parallels::ParallelsProviderFactory>());
  (void)status;
  return registry;
}

}  // namespace flotilla::cli
