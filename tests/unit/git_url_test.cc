#include "reconciler/source/git_url.h"

#include <gtest/gtest.h>

namespace flotilla::source {
namespace {

TEST(GitUrlTest, ClassifiesEveryForm) {
  EXPECT_EQ(ParseGitUrl("/srv/fleet.git")->kind, GitUrl::Kind::kLocal);
  EXPECT_EQ(ParseGitUrl("./fleet")->kind, GitUrl::Kind::kLocal);
  EXPECT_EQ(ParseGitUrl("file:///srv/fleet.git")->kind, GitUrl::Kind::kFile);
  EXPECT_EQ(ParseGitUrl("git://git.example.com/fleet.git")->kind, GitUrl::Kind::kGit);
  EXPECT_EQ(ParseGitUrl("http://git.example.com/fleet.git")->kind, GitUrl::Kind::kHttp);
  EXPECT_EQ(ParseGitUrl("https://git.example.com/acme/fleet.git")->kind, GitUrl::Kind::kHttps);
  EXPECT_EQ(ParseGitUrl("ssh://git@git.example.com:2222/acme/fleet.git")->kind, GitUrl::Kind::kSsh);
  Result<GitUrl> scp = ParseGitUrl("git@github.com:acme/fleet.git");
  ASSERT_TRUE(scp.ok());
  EXPECT_EQ(scp->kind, GitUrl::Kind::kSsh);
  EXPECT_EQ(scp->host, "github.com");
  EXPECT_EQ(scp->user, "git");
  EXPECT_EQ(scp->EffectivePort(), 22);
}

TEST(GitUrlTest, HostPortAndUser) {
  Result<GitUrl> u = ParseGitUrl("ssh://deploy@10.0.0.5:2222/srv/fleet.git");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "10.0.0.5");
  EXPECT_EQ(u->port, 2222);
  EXPECT_EQ(u->user, "deploy");
  EXPECT_EQ(u->url, "ssh://deploy@10.0.0.5:2222/srv/fleet.git");
  EXPECT_EQ(ParseGitUrl("https://h/x")->EffectivePort(), 443);
  EXPECT_EQ(ParseGitUrl("git://h/x")->EffectivePort(), 9418);
  EXPECT_EQ(ParseGitUrl("ssh://[::1]:2200/x")->host, "[::1]");
}

TEST(GitUrlTest, CredentialsInHttpUrlsAreDroppedAndRedacted) {
  Result<GitUrl> u = ParseGitUrl("https://ci:ghp_S3cret@git.example.com/acme/fleet.git");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->url, "https://git.example.com/acme/fleet.git");
  EXPECT_EQ(u->redacted, "https://***@git.example.com/acme/fleet.git");
  EXPECT_EQ(u->user, "");
  Result<GitUrl> token_only = ParseGitUrl("https://ghp_S3cret@git.example.com/fleet.git");
  EXPECT_EQ(token_only->url.find("ghp_"), std::string::npos);
  Result<GitUrl> ssh = ParseGitUrl("ssh://git:hunter2@host/fleet.git");
  EXPECT_EQ(ssh->url, "ssh://git@host/fleet.git");
  // Tokens may contain '/': the user part runs to the last '@'.
  Result<GitUrl> slash = ParseGitUrl("https://ci:ab/cd+ef==@git.example.com:8443/acme/fleet.git");
  ASSERT_TRUE(slash.ok()) << slash.status().ToString();
  EXPECT_EQ(slash->host, "git.example.com");
  EXPECT_EQ(slash->port, 8443);
  EXPECT_EQ(slash->url, "https://git.example.com:8443/acme/fleet.git");
}

TEST(GitUrlTest, RejectsWhatItCannotUse) {
  EXPECT_TRUE(ParseGitUrl("").status().IsInvalidArgument());
  EXPECT_TRUE(ParseGitUrl("ftp://host/x").status().IsInvalidArgument());
  EXPECT_TRUE(ParseGitUrl("https://host:99999/x").status().IsInvalidArgument());
  EXPECT_TRUE(ParseGitUrl("https://host:abc/x").status().IsInvalidArgument());
  Result<GitUrl> bad = ParseGitUrl("https://u:p4ss@host:abc/x");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().find("p4ss"), std::string::npos) << bad.status().message();
}

// Found by fuzz/git_url_fuzz.cc (fuzz/corpus/git_url/host-with-colons): "https://a:b:/x" was
// read as host "a:b" with no port, and the URL handed to libgit2 then did not parse again (nor
// mean the same to libgit2). Text after an IPv6 literal's bracket other than a port was dropped.
TEST(GitUrlTest, HostsHoldNoColonOutsideBrackets) {
  EXPECT_TRUE(ParseGitUrl("https://user:to://user.com/acme/x.git").status().IsInvalidArgument());
  EXPECT_TRUE(ParseGitUrl("https://a:b:/x").status().IsInvalidArgument());
  EXPECT_TRUE(ParseGitUrl("ssh://[::1]x/repo").status().IsInvalidArgument());
  EXPECT_EQ(ParseGitUrl("https://host:/x")->url, "https://host/x");
  EXPECT_EQ(ParseGitUrl("ssh://[::1]/x")->host, "[::1]");
}

// Found by fuzz/git_url_fuzz.cc (fuzz/corpus/git_url/password-with-space): the error for an
// unreadable host quoted the URL through RedactUrls, which ends a URL at white space, so a
// password holding a space or a tab was shown.
TEST(GitUrlTest, ErrorsRedactPasswordsWithSpaces) {
  Result<GitUrl> bad = ParseGitUrl("https://user:pa ss@host:abc/x");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().find("pa ss"), std::string::npos) << bad.status().message();
  EXPECT_NE(bad.status().message().find("https://***@host:abc/x"), std::string::npos)
      << bad.status().message();
}

TEST(GitUrlTest, RedactUrlsScrubsEveryUrlInText) {
  EXPECT_EQ(RedactUrls("failed to fetch https://user:tok@host/x and git://a:b@h/y"),
            "failed to fetch https://***@host/x and git://***@h/y");
  EXPECT_EQ(RedactUrls("https://host/x"), "https://host/x");
  EXPECT_EQ(RedactUrls("'https://tok@host/x'"), "'https://***@host/x'");
  EXPECT_EQ(RedactUrls("git://u:ab/cd@host:1/x failed"), "git://***@host:1/x failed");
}

}  // namespace
}  // namespace flotilla::source
