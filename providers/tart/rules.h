#pragma once

// What core code may know about provider tart (reconciler/model/provider_rules.h): its pool
// settings (tart, ssh), its checks on pools (credentials, SSH addresses, an unchecked host key),
// its images (oci://REGISTRY/REPO[:TAG|@DIGEST], vm://NAME) and how its hosts name cached
// images. The vocabulary itself is in settings.h.

#include "reconciler/model/provider_rules.h"

namespace flotilla::providers::tart {

class TartRules final : public ProviderRules {
 public:
  std::string_view name() const override { return "tart"; }
  std::string_view settings_schema() const override;
  void CheckPool(const HostPool& pool, std::vector<PoolProblem>& problems) const override;
  std::string CheckImage(std::string_view image) const override;
  std::string ImageCacheKey(std::string_view image) const override;
};

}  // namespace flotilla::providers::tart
