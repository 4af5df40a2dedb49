#pragma once

// What core code may know about provider parallels (reconciler/model/provider_rules.h): its pool
// settings (catalog, tls), its checks on pools (credentials, http(s) addresses), its images
// (catalog://ID/VERSION, vm://NAME) and how its hosts key cached catalog images.

#include "reconciler/model/provider_rules.h"

namespace flotilla::providers::parallels {

class ParallelsRules final : public ProviderRules {
 public:
  std::string_view name() const override { return "parallels"; }
  std::string_view settings_schema() const override;
  void CheckPool(const HostPool& pool, std::vector<PoolProblem>& problems) const override;
  std::string CheckImage(std::string_view image) const override;
  std::string ImageCacheKey(std::string_view image) const override;
};

}  // namespace flotilla::providers::parallels
