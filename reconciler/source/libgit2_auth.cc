#include "reconciler/source/libgit2_auth.h"

#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string_view>
#include <utility>

namespace flotilla::source::libgit2 {
namespace {

std::optional<std::string> ReadSecretFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::nullopt;
  }
  std::stringstream text;
  text << in.rdbuf();
  std::string value = text.str();
  while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) {
    value.pop_back();
  }
  return value;
}

// Records why credentials were refused and returns libgit2's "authentication failed".
int Refuse(NetworkContext* ctx, std::string why) {
  ctx->auth_refused = true;
  ctx->refusal = std::move(why);
  git_error_set_str(GIT_ERROR_NET, ctx->refusal.c_str());
  return GIT_EAUTH;
}

int OnCredentials(git_credential** out, const char* /*url*/, const char* username_from_url,
                  unsigned int allowed, void* payload) {
  auto* ctx = static_cast<NetworkContext*>(payload);
  const std::string user = username_from_url != nullptr && *username_from_url != '\0'
                               ? username_from_url
                               : (ctx->url->user.empty() ? "git" : ctx->url->user);
  if ((allowed & GIT_CREDENTIAL_USERNAME) != 0) {
    return git_credential_username_new(out, user.c_str());
  }
  // libgit2 asks again after every rejection; one try is all a configured secret gets.
  if (++ctx->credential_attempts > 1) {
    return Refuse(ctx, "the server refused the configured credentials");
  }
  if ((allowed & GIT_CREDENTIAL_SSH_KEY) != 0) {
    if (ctx->auth->ssh_key_file.empty()) {
      return Refuse(ctx, "the server wants an SSH key and none is configured (auth.sshKeyFile)");
    }
    std::string passphrase;
    if (!ctx->auth->ssh_passphrase_file.empty()) {
      std::optional<std::string> p = ReadSecretFile(ctx->auth->ssh_passphrase_file);
      if (!p) {
        return Refuse(ctx, "cannot read the SSH passphrase file " + ctx->auth->ssh_passphrase_file);
      }
      passphrase = *p;
      ctx->secrets.push_back(passphrase);
    }
    return git_credential_ssh_key_new(out, user.c_str(), nullptr, ctx->auth->ssh_key_file.c_str(),
                                      passphrase.empty() ? nullptr : passphrase.c_str());
  }
  if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) != 0) {
    std::optional<std::string> token;
    if (!ctx->auth->token_file.empty()) {
      token = ReadSecretFile(ctx->auth->token_file);
      if (!token) {
        return Refuse(ctx, "cannot read the token file " + ctx->auth->token_file);
      }
    } else if (!ctx->auth->token_env.empty()) {
      const char* value = std::getenv(ctx->auth->token_env.c_str());
      if (value == nullptr) {
        return Refuse(ctx, "the environment variable " + ctx->auth->token_env + " is not set");
      }
      token = value;
    } else {
      return Refuse(ctx,
                    "the server wants credentials and no token is configured (auth.tokenFile)");
    }
    ctx->secrets.push_back(*token);
    return git_credential_userpass_plaintext_new(out, ctx->auth->username.c_str(), token->c_str());
  }
  return Refuse(ctx, "the server asks for a kind of credentials Flotilla does not support");
}

int OnCertificate(git_cert* cert, int /*valid*/, const char* /*host*/, void* payload) {
  auto* ctx = static_cast<NetworkContext*>(payload);
  if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2) {
    return GIT_PASSTHROUGH;  // TLS: libgit2 verifies against the system trust store
  }
  const std::string where =
      ctx->url->host + (ctx->url->port != 0 ? ":" + std::to_string(ctx->url->port) : "");
  if (ctx->auth->insecure_ignore_host_key) {
    ctx->warnings.push_back("accepted the SSH host key of " + where +
                            " without checking it (auth.insecureIgnoreHostKey)");
    return 0;
  }
  const auto* key = reinterpret_cast<const git_cert_hostkey*>(cert);
  if (ctx->known_hosts == nullptr) {
    ctx->refusal = "no known_hosts file is configured to check the host key of " + where +
                   " (auth.knownHostsFile)";
  } else if ((key->type & GIT_CERT_SSH_RAW) == 0) {
    ctx->refusal = "the SSH library gave no host key to check for " + where;
  } else {
    switch (ctx->known_hosts->Check(ctx->url->host, ctx->url->EffectivePort(),
                                    std::string_view(key->hostkey, key->hostkey_len))) {
      case ssh::KnownHosts::Verdict::kMatch:
        return 0;
      case ssh::KnownHosts::Verdict::kUnknownHost:
        ctx->refusal = "host key of " + where + " is not in the known_hosts file";
        break;
      case ssh::KnownHosts::Verdict::kMismatch:
        ctx->refusal = "host key of " + where +
                       " does not match the known_hosts file (it changed, or someone is "
                       "intercepting the connection)";
        break;
      case ssh::KnownHosts::Verdict::kRevoked:
        ctx->refusal = "host key of " + where + " is revoked in the known_hosts file";
        break;
    }
  }
  git_error_set_str(GIT_ERROR_SSH, ctx->refusal.c_str());
  return GIT_ECERTIFICATE;
}

int OnTransfer(const git_indexer_progress* /*stats*/, void* payload) {
  return static_cast<NetworkContext*>(payload)->Expired() ? -1 : 0;
}

int OnSideband(const char* /*text*/, int /*len*/, void* payload) {
  return static_cast<NetworkContext*>(payload)->Expired() ? -1 : 0;
}

}  // namespace

bool NetworkContext::Expired() {
  if (SteadyClock::now() > deadline || (watch != nullptr && watch->expired())) {
    timed_out = true;
  }
  return timed_out;
}

void SetNetworkCallbacks(git_remote_callbacks& callbacks, NetworkContext& context) {
  callbacks.credentials = OnCredentials;
  callbacks.certificate_check = OnCertificate;
  callbacks.transfer_progress = OnTransfer;
  callbacks.sideband_progress = OnSideband;
  callbacks.payload = &context;
}

}  // namespace flotilla::source::libgit2
