#include "providers/tart/factory.h"

namespace flotilla::providers::tart {

Result<std::unique_ptr<Provider>> TartProviderFactory::Build(const ProviderContext& context) const {
  return Status::FailedPrecondition("pool " + context.pool.meta.name +
                                    ": provider tart: not built yet");
}

}  // namespace flotilla::providers::tart
