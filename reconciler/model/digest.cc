#include "reconciler/model/digest.h"

#include <openssl/evp.h>

#include <array>
#include <cstdlib>

namespace flotilla {

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

}  // namespace flotilla
