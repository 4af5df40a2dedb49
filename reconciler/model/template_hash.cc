#include "reconciler/model/template_hash.h"

#include <openssl/evp.h>

#include <array>
#include <cstdlib>
#include <string_view>

namespace flotilla {
namespace {

// "<field>=<length>:<value>;" for every field, in a fixed order.
void AppendField(std::string& out, std::string_view field, std::string_view value) {
  out.append(field);
  out.push_back('=');
  out.append(std::to_string(value.size()));
  out.push_back(':');
  out.append(value);
  out.push_back(';');
}

std::string Sha256Hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  // EVP_Digest is a one-shot call with no shared state; it cannot fail for SHA-256 on valid
  // memory, so a failure is a broken OpenSSL and worth stopping for.
  if (EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1) {
    std::abort();
  }
  static constexpr std::string_view kHex = "0123456789abcdef";
  std::string hex;
  hex.reserve(size_t{length} * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0xf]);
  }
  return hex;
}

}  // namespace

std::string TemplateHash(const VMTemplate& templ) {
  std::string encoded = "flotilla.template.v1;";
  AppendField(encoded, "image", templ.image);
  AppendField(encoded, "os", ToString(templ.os));
  AppendField(encoded, "arch", ToString(templ.arch));
  AppendField(encoded, "cpu", std::to_string(templ.cpu));
  AppendField(encoded, "memory", std::to_string(templ.memory.bytes()));
  AppendField(encoded, "disk", templ.disk ? std::to_string(templ.disk->bytes()) : "");
  AppendField(encoded, "startupScript", templ.startup_script);
  return "v1-" + Sha256Hex(encoded);
}

}  // namespace flotilla
