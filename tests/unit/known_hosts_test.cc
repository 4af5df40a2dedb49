#include "reconciler/ssh/known_hosts.h"

#include <gtest/gtest.h>

namespace flotilla::ssh {
namespace {

// Key blobs are opaque bytes to KnownHosts; small made-up ones keep the tests readable.
constexpr const char* kKeyA = "AAAAB3NzaC1yc2EAAAADAQABAAABAQDa";  // base64 of some bytes
constexpr const char* kKeyB = "AAAAC3NzaC1lZDI1NTE5AAAAIOb";

TEST(KnownHostsTest, MatchesPlainEntriesWithPorts) {
  KnownHosts hosts = KnownHosts::Parse(std::string("git.example.com ssh-rsa ") + kKeyA + "\n" +
                                       "[10.0.0.5]:2222,other ssh-ed25519 " + kKeyB + "\n");
  EXPECT_EQ(hosts.size(), 2u);
  EXPECT_EQ(hosts.Check("git.example.com", 22, DecodeBase64(kKeyA)), KnownHosts::Verdict::kMatch);
  EXPECT_EQ(hosts.Check("git.example.com", 22, DecodeBase64(kKeyB)),
            KnownHosts::Verdict::kMismatch);
  EXPECT_EQ(hosts.Check("10.0.0.5", 2222, DecodeBase64(kKeyB)), KnownHosts::Verdict::kMatch);
  EXPECT_EQ(hosts.Check("10.0.0.5", 22, DecodeBase64(kKeyB)), KnownHosts::Verdict::kUnknownHost);
  EXPECT_EQ(hosts.Check("other", 22, DecodeBase64(kKeyB)), KnownHosts::Verdict::kMatch);
  EXPECT_EQ(hosts.Check("nobody", 22, DecodeBase64(kKeyA)), KnownHosts::Verdict::kUnknownHost);
}

TEST(KnownHostsTest, MatchesHashedEntries) {
  // |1|salt|HMAC-SHA1(salt, "git.example.com"), as `ssh-keygen -H` writes it.
  KnownHosts hosts = KnownHosts::Parse(
      std::string("|1|ZmxvdGlsbGEtc2FsdC0xMjM0NTY3OA==|ykXdwVY2bfd6tlM91nf136y8vuE= ssh-rsa ") +
      kKeyA + "\n");
  EXPECT_EQ(hosts.Check("git.example.com", 22, DecodeBase64(kKeyA)), KnownHosts::Verdict::kMatch);
  EXPECT_EQ(hosts.Check("git.example.org", 22, DecodeBase64(kKeyA)),
            KnownHosts::Verdict::kUnknownHost);
}

TEST(KnownHostsTest, RevokedKeysAreRefusedEvenIfListed) {
  KnownHosts hosts =
      KnownHosts::Parse(std::string("h ssh-rsa ") + kKeyA + "\n@revoked h ssh-rsa " + kKeyA + "\n");
  EXPECT_EQ(hosts.Check("h", 22, DecodeBase64(kKeyA)), KnownHosts::Verdict::kRevoked);
}

TEST(KnownHostsTest, RevokedKeysAreRefusedForEveryHost) {
  KnownHosts hosts =
      KnownHosts::Parse(std::string("h ssh-rsa ") + kKeyA + "\n@revoked * ssh-rsa " + kKeyA + "\n");
  EXPECT_EQ(hosts.Check("h", 22, DecodeBase64(kKeyA)), KnownHosts::Verdict::kRevoked);
  EXPECT_EQ(hosts.Check("elsewhere", 22, DecodeBase64(kKeyA)), KnownHosts::Verdict::kRevoked);
}

TEST(KnownHostsTest, MatchesIpv6HostsAsWrittenInUrls) {
  KnownHosts hosts = KnownHosts::Parse(std::string("[::1]:2200 ssh-rsa ") + kKeyA + "\n");
  EXPECT_EQ(hosts.Check("[::1]", 2200, DecodeBase64(kKeyA)), KnownHosts::Verdict::kMatch);
}

TEST(KnownHostsTest, IgnoresCommentsBlankAndBrokenLines) {
  KnownHosts hosts = KnownHosts::Parse(std::string("# comment\n\nbroken-line\nh ssh-rsa !!!\n") +
                                       "@cert-authority * ssh-rsa " + kKeyA + "\n");
  EXPECT_EQ(hosts.size(), 0u);
  EXPECT_TRUE(KnownHosts::Load("/nonexistent/known_hosts").status().IsNotFound());
}

TEST(KnownHostsTest, DecodesBase64) {
  EXPECT_EQ(DecodeBase64("ZmxvdGlsbGE="), "flotilla");
  EXPECT_EQ(DecodeBase64("ZmxvdGlsbGE"), "flotilla");
  EXPECT_EQ(DecodeBase64("not base64!"), "");
}

}  // namespace
}  // namespace flotilla::ssh
