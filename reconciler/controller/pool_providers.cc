// The providers of the pools, one per pool, built from the pool's manifest and its secrets, and
// built again when either changes: a rotated credential is used from the next pass on, without
// a restart.

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "reconciler/controller/controller.h"

namespace flotilla::controller {

// (Not in an anonymous namespace: PoolProvider, a member type of Controller, holds one.)
// Reads through to the controller's secrets and remembers each value a provider read, so that a
// change (a rotated password, a Secret updated in place) can be noticed.
class RememberingSecrets final : public providers::SecretSource {
 public:
  explicit RememberingSecrets(const providers::SecretSource& inner) : inner_(inner) {}

  Result<std::optional<std::string>> Read(std::string_view ref,
                                          std::string_view key) const override {
    Result<std::optional<std::string>> value = inner_.Read(ref, key);
    std::lock_guard lock(mu_);
    seen_[{std::string(ref), std::string(key)}] = Of(value);
    return value;
  }

  // Any value read so far now reads differently (or no longer reads).
  bool Changed() const {
    Seen seen;
    {
      std::lock_guard lock(mu_);
      seen = seen_;
    }
    for (const auto& [ref_key, before] : seen) {
      Result<std::optional<std::string>> now = inner_.Read(ref_key.first, ref_key.second);
      if (Of(now) != before) {
        return true;
      }
    }
    return false;
  }

 private:
  // What a read gave: nullopt when it failed, else the value (itself nullopt when not set).
  using Outcome = std::optional<std::optional<std::string>>;
  using Seen = std::map<std::pair<std::string, std::string>, Outcome>;
  static Outcome Of(const Result<std::optional<std::string>>& read) {
    return read.ok() ? Outcome(*read) : Outcome();
  }

  const providers::SecretSource& inner_;
  mutable std::mutex mu_;
  mutable Seen seen_;
};

struct Controller::PoolProvider {
  std::unique_ptr<HostPool> pool;               // providers may keep a reference to their pool
  std::unique_ptr<RememberingSecrets> secrets;  // and to their secrets
  std::unique_ptr<providers::Provider> provider;
};

Result<providers::Provider*> Controller::ProviderFor(const HostPool& pool) {
  std::lock_guard lock(providers_mu_);
  Result<std::shared_ptr<PoolProvider>> entry = EntryFor(pool);
  if (!entry.ok()) {
    return entry.status();
  }
  return (*entry)->provider.get();
}

Result<std::shared_ptr<Controller::PoolProvider>> Controller::EntryFor(const HostPool& pool) {
  auto it = providers_.find(pool.meta.name);
  if (it != providers_.end()) {
    HostPool& kept = *it->second->pool;
    if (kept.allowed_ports != pool.allowed_ports) {
      // The ports tunnels may reach are the API's to check, never read by a provider: a change
      // of them alone keeps the provider and its connections to the hosts.
      HostPool other_ports = pool;
      other_ports.allowed_ports = kept.allowed_ports;
      if (kept == other_ports) {
        kept.allowed_ports = pool.allowed_ports;
        return it->second;
      }
    } else if (kept == pool) {
      return it->second;
    }
  }
  auto entry = std::make_shared<PoolProvider>();
  entry->pool = std::make_unique<HostPool>(pool);
  entry->secrets = std::make_unique<RememberingSecrets>(secrets_);
  Result<std::unique_ptr<providers::Provider>> built =
      registry_.Build(providers::ProviderContext{.pool = *entry->pool,
                                                 .secrets = *entry->secrets,
                                                 .logger = logger_,
                                                 .clock = clock_,
                                                 .requests = options_.requests});
  if (!built.ok()) {
    return built.status();
  }
  entry->provider = std::move(*built);
  providers_[pool.meta.name] = entry;
  return entry;
}

Result<KeptFd> Controller::OpenTunnel(const std::string& pool, const std::string& host,
                                      const VmInfo& vm, uint16_t port,
                                      providers::Deadline deadline) {
  const std::shared_ptr<const Snapshot> latest = snapshot();
  const HostPool* spec = nullptr;
  const HostSpec* host_spec = nullptr;
  if (latest != nullptr) {
    auto p = std::find_if(latest->desired.pools.begin(), latest->desired.pools.end(),
                          [&](const HostPool& candidate) { return candidate.meta.name == pool; });
    spec = p != latest->desired.pools.end() ? &*p : nullptr;
  }
  if (spec != nullptr) {
    auto h = std::find_if(spec->hosts.begin(), spec->hosts.end(),
                          [&](const HostSpec& candidate) { return candidate.name == host; });
    host_spec = h != spec->hosts.end() ? &*h : nullptr;
  }
  if (host_spec == nullptr) {
    return Status::NotFound("host " + host + " is not in pool " + pool + " of this loop");
  }
  std::shared_ptr<PoolProvider> entry;
  {
    std::lock_guard lock(providers_mu_);
    Result<std::shared_ptr<PoolProvider>> found = EntryFor(*spec);
    if (!found.ok()) {
      return found.status();
    }
    entry = std::move(*found);
  }
  Result<Fd> opened = entry->provider->OpenTunnel(
      providers::HostRef{.pool = pool, .name = host, .address = host_spec->address}, vm, port,
      deadline);
  if (!opened.ok()) {
    return opened.status();
  }
  return KeptFd{.fd = std::move(*opened), .keeps = std::move(entry)};
}

void Controller::RefreshCredentials() {
  std::lock_guard lock(providers_mu_);
  for (auto it = providers_.begin(); it != providers_.end();) {
    if (it->second->secrets->Changed()) {
      logger_->info("pool {}: its credentials changed; the next requests use the new ones",
                    it->first);
      it = providers_.erase(it);  // built again, with the new values, by the next ProviderFor
    } else {
      ++it;
    }
  }
}

executor::Fleet Controller::FleetFor(const Desired& desired) {
  executor::Fleet fleet;
  for (const HostPool& pool : desired.pools) {
    Result<providers::Provider*> provider = ProviderFor(pool);
    if (!provider.ok()) {
      continue;  // its hosts were observed offline; nothing was planned on them
    }
    fleet.providers[pool.meta.name] = *provider;
    for (const HostSpec& host : pool.hosts) {
      fleet.hosts[host.name] =
          providers::HostRef{.pool = pool.meta.name, .name = host.name, .address = host.address};
    }
  }
  return fleet;
}

}  // namespace flotilla::controller
