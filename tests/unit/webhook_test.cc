#include "reconciler/api/webhook.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <string>

namespace flotilla::api {
namespace {

constexpr std::string_view kSecret = "s3cret-webhook-key";
constexpr std::string_view kCommit = "0123456789abcdef0123456789abcdef01234567";

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Headers keyed by lowercased name, looked up case-insensitively like an HTTP server does.
class Headers {
 public:
  Headers& Set(std::string_view name, std::string value) {
    values_[Lower(name)] = std::move(value);
    return *this;
  }
  HeaderLookup Lookup() const {
    return [this](std::string_view name) -> std::optional<std::string> {
      auto it = values_.find(Lower(name));
      return it == values_.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
  }

 private:
  std::map<std::string, std::string> values_;
};

std::string Sign(std::string_view body, std::string_view secret = kSecret) {
  return "sha256=" + HmacSha256Hex(secret, body);
}

Result<PushEvent> Verify(const Headers& headers, std::string_view body,
                         const WebhookConfig& config = {.secret = std::string(kSecret)}) {
  return VerifyWebhook(config, headers.Lookup(), body);
}

Result<PushEvent> GitHub(std::string_view event, std::string_view body) {
  return Verify(
      Headers().Set("x-github-event", std::string(event)).Set("X-Hub-Signature-256", Sign(body)),
      body);
}

Result<PushEvent> GitLab(std::string_view event, std::string_view body,
                         std::string_view token = kSecret) {
  return Verify(
      Headers().Set("X-Gitlab-Event", std::string(event)).Set("X-Gitlab-Token", std::string(token)),
      body);
}

void ExpectNoSecret(const Result<PushEvent>& r) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().find(kSecret), std::string::npos) << r.status().message();
}

std::string GitHubPush(std::string_view ref, bool deleted = false,
                       std::string_view after = kCommit) {
  return R"({"ref":")" + std::string(ref) +
         R"(","before":"0000000000000000000000000000000000000000",)" + R"("after":")" +
         std::string(after) + R"(","deleted":)" + (deleted ? "true" : "false") +
         R"(,"repository":{"full_name":"acme/fleet"}})";
}

TEST(HmacSha256Test, Rfc4231Vectors) {
  // Case 1.
  EXPECT_EQ(HmacSha256Hex(std::string(20, '\x0b'), "Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  // Case 2: a key shorter than the output.
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Case 3: combined length of key and data over 64 bytes.
  EXPECT_EQ(HmacSha256Hex(std::string(20, '\xaa'), std::string(50, '\xdd')),
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
  // Case 6: a key longer than the block size.
  EXPECT_EQ(HmacSha256Hex(std::string(131, '\xaa'),
                          "Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(HmacSha256Test, GitHubDocumentedExample) {
  EXPECT_EQ(HmacSha256Hex("It's a Secret to Everybody", "Hello, World!"),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
}

TEST(HmacSha256Test, EmptyKeyAndData) {
  // A well-known value (HMAC-SHA256 with empty key and message).
  EXPECT_EQ(HmacSha256Hex("", ""),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(ConstantTimeEqualsTest, ComparesContentAndLength) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
}

TEST(VerifyWebhookTest, GitHubDocumentedSignatureVerifies) {
  constexpr std::string_view kBody = "Hello, World!";  // valid signature, then not JSON
  Result<PushEvent> r = VerifyWebhook(
      {.secret = "It's a Secret to Everybody"},
      Headers()
          .Set("X-GitHub-Event", "push")
          .Set("X-Hub-Signature-256",
               "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
          .Lookup(),
      kBody);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
}

TEST(VerifyWebhookTest, GitHubBranchPush) {
  Result<PushEvent> r = GitHub("push", GitHubPush("refs/heads/main"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->source, "github");
  EXPECT_EQ(r->event, "push");
  EXPECT_TRUE(r->is_push);
  EXPECT_EQ(r->ref, "refs/heads/main");
  EXPECT_EQ(r->branch, "main");
  EXPECT_EQ(r->after, kCommit);
}

TEST(VerifyWebhookTest, BranchWithSlashes) {
  Result<PushEvent> r = GitHub("push", GitHubPush("refs/heads/release/2024.1"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->branch, "release/2024.1");
}

TEST(VerifyWebhookTest, UppercaseHexAccepted) {
  const std::string body = GitHubPush("refs/heads/main");
  std::string signature = "SHA256=" + HmacSha256Hex(kSecret, body);
  std::transform(signature.begin(), signature.end(), signature.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  Result<PushEvent> r =
      Verify(Headers().Set("X-GitHub-Event", "push").Set("X-Hub-Signature-256", signature), body);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->is_push);
}

TEST(VerifyWebhookTest, WrongSignatureDenied) {
  const std::string body = GitHubPush("refs/heads/main");
  for (const std::string& signature :
       {Sign(body, "another-secret"), Sign(body + " "), std::string("sha256="),
        std::string("sha256=zz"), HmacSha256Hex(kSecret, body) /* no scheme */,
        "sha1=" + HmacSha256Hex(kSecret, body)}) {
    Result<PushEvent> r =
        Verify(Headers().Set("X-GitHub-Event", "push").Set("X-Hub-Signature-256", signature), body);
    ASSERT_FALSE(r.ok()) << signature;
    EXPECT_TRUE(r.status().IsPermissionDenied()) << r.status().ToString();
    EXPECT_NE(r.status().message().find("X-Hub-Signature-256"), std::string::npos);
    EXPECT_EQ(r.status().message().find(HmacSha256Hex(kSecret, body)), std::string::npos);
    ExpectNoSecret(r);
  }
}

TEST(VerifyWebhookTest, MissingHeadersDenied) {
  const std::string body = GitHubPush("refs/heads/main");
  for (const Headers& headers : {Headers(), Headers().Set("X-GitHub-Event", "push"),
                                 Headers().Set("X-Hub-Signature-256", "")}) {
    Result<PushEvent> r = Verify(headers, body);
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.status().IsPermissionDenied()) << r.status().ToString();
    EXPECT_NE(r.status().message().find("X-Hub-Signature-256"), std::string::npos);
  }
}

TEST(VerifyWebhookTest, Sha1OnlyDeniedWithHint) {
  const std::string body = GitHubPush("refs/heads/main");
  Result<PushEvent> r = Verify(
      Headers().Set("X-GitHub-Event", "push").Set("X-Hub-Signature", "sha1=0123456789abcdef"),
      body);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsPermissionDenied());
  EXPECT_NE(r.status().message().find("SHA-1"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("X-Hub-Signature-256"), std::string::npos);
}

TEST(VerifyWebhookTest, MissingEventHeaderIsInvalid) {
  const std::string body = GitHubPush("refs/heads/main");
  Result<PushEvent> r = Verify(Headers().Set("X-Hub-Signature-256", Sign(body)), body);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());
  EXPECT_NE(r.status().message().find("X-GitHub-Event"), std::string::npos);
}

TEST(VerifyWebhookTest, TagPushAndDeletionAreNotPushes) {
  Result<PushEvent> tag = GitHub("push", GitHubPush("refs/tags/v1.0"));
  ASSERT_TRUE(tag.ok()) << tag.status().ToString();
  EXPECT_FALSE(tag->is_push);
  EXPECT_EQ(tag->ref, "refs/tags/v1.0");
  EXPECT_EQ(tag->branch, "");

  Result<PushEvent> deleted =
      GitHub("push", GitHubPush("refs/heads/old", true, std::string(40, '0')));
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_FALSE(deleted->is_push);
  EXPECT_EQ(deleted->branch, "old");
}

TEST(VerifyWebhookTest, Ping) {
  constexpr std::string_view kPing = R"({"zen":"Keep it logically awesome.","hook_id":1})";
  Result<PushEvent> r = GitHub("ping", kPing);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->event, "ping");
  EXPECT_FALSE(r->is_push);
  EXPECT_EQ(r->ref, "");
}

TEST(VerifyWebhookTest, WrongFieldTypesAreInvalid) {
  for (std::string_view body : {R"({"ref":1})", R"({"ref":"refs/heads/main","deleted":"no"})",
                                R"({"ref":"refs/heads/main","after":"not-a-commit"})",
                                R"({"ref":"refs/heads/main","after":["x"]})", R"([1,2])"}) {
    Result<PushEvent> r = GitHub("push", body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
  }
}

TEST(VerifyWebhookTest, GitLabPushWithRightToken) {
  const std::string body = R"({"object_kind":"push","ref":"refs/heads/main","after":")" +
                           std::string(kCommit) + R"(","project":{"id":1}})";
  Result<PushEvent> r = GitLab("Push Hook", body);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->source, "gitlab");
  EXPECT_EQ(r->event, "Push Hook");
  EXPECT_TRUE(r->is_push);
  EXPECT_EQ(r->branch, "main");
  EXPECT_EQ(r->after, kCommit);
}

TEST(VerifyWebhookTest, GitLabWrongTokenDenied) {
  const std::string body = R"({"object_kind":"push","ref":"refs/heads/main"})";
  for (const std::string& token : {std::string("wrong"), std::string(kSecret.substr(1)),
                                   std::string(kSecret) + "x", std::string()}) {
    Result<PushEvent> r = GitLab("Push Hook", body, token);
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.status().IsPermissionDenied());
    EXPECT_NE(r.status().message().find("X-Gitlab-Token"), std::string::npos);
    ExpectNoSecret(r);
  }
}

TEST(VerifyWebhookTest, GitLabTagPushAndBranchDeletion) {
  Result<PushEvent> tag =
      GitLab("Tag Push Hook", R"({"object_kind":"tag_push","ref":"refs/tags/v2"})");
  ASSERT_TRUE(tag.ok()) << tag.status().ToString();
  EXPECT_EQ(tag->event, "Tag Push Hook");
  EXPECT_FALSE(tag->is_push);
  EXPECT_EQ(tag->ref, "refs/tags/v2");

  Result<PushEvent> deleted =
      GitLab("Push Hook", R"({"object_kind":"push","ref":"refs/heads/x",)"
                          R"("after":"0000000000000000000000000000000000000000"})");
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_FALSE(deleted->is_push);
}

TEST(VerifyWebhookTest, GenericWithRefOrBranch) {
  for (std::string_view body : {R"({"ref":"refs/heads/main"})", R"({"branch":"main"})",
                                R"({"ref":"refs/heads/main","branch":"main"})"}) {
    Result<PushEvent> r = Verify(Headers().Set("X-Flotilla-Signature", Sign(body)), body);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->source, "generic");
    EXPECT_EQ(r->event, "push");
    EXPECT_TRUE(r->is_push);
    EXPECT_EQ(r->ref, "refs/heads/main");
    EXPECT_EQ(r->branch, "main");
    EXPECT_EQ(r->after, "");
  }
  const std::string with_after = R"({"branch":"main","after":")" + std::string(kCommit) + R"("})";
  Result<PushEvent> r = Verify(Headers().Set("X-Flotilla-Signature", Sign(with_after)), with_after);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->after, kCommit);
}

TEST(VerifyWebhookTest, GenericWithoutBranchOrDisagreeingIsInvalid) {
  for (std::string_view body : {R"({})", R"({"ref":"refs/heads/a","branch":"b"})"}) {
    Result<PushEvent> r = Verify(Headers().Set("X-Flotilla-Signature", Sign(body)), body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
  }
}

TEST(VerifyWebhookTest, GenericWrongSignatureDenied) {
  constexpr std::string_view kBody = R"({"branch":"main"})";
  Result<PushEvent> r = Verify(Headers().Set("X-Flotilla-Signature", Sign(kBody, "nope")), kBody);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsPermissionDenied());
  EXPECT_NE(r.status().message().find("X-Flotilla-Signature"), std::string::npos);
}

TEST(VerifyWebhookTest, OversizedBodyRejectedEvenWhenSigned) {
  const std::string body = GitHubPush("refs/heads/main");
  Result<PushEvent> r =
      Verify(Headers().Set("X-GitHub-Event", "push").Set("X-Hub-Signature-256", Sign(body)), body,
             {.secret = std::string(kSecret), .max_body_bytes = body.size() - 1});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
  // The size is checked before the signature: a wrong one still gets InvalidArgument.
  r = Verify(Headers().Set("X-Hub-Signature-256", "sha256=00"), body,
             {.secret = std::string(kSecret), .max_body_bytes = 4});
  EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
  // Exactly at the limit is fine.
  r = Verify(Headers().Set("X-GitHub-Event", "push").Set("X-Hub-Signature-256", Sign(body)), body,
             {.secret = std::string(kSecret), .max_body_bytes = body.size()});
  EXPECT_TRUE(r.ok()) << r.status().ToString();
}

TEST(VerifyWebhookTest, MalformedJsonWithValidSignatureIsInvalid) {
  constexpr std::string_view kBody = R"({"ref":"refs/heads/main")";
  Result<PushEvent> r = GitHub("push", kBody);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
  ExpectNoSecret(r);
}

TEST(VerifyWebhookTest, EmptySecretRefusesEverything) {
  constexpr std::string_view kBody = R"({"ref":"refs/heads/main"})";
  Result<PushEvent> r = VerifyWebhook(
      {.secret = ""},
      Headers().Set("X-Gitlab-Event", "Push Hook").Set("X-Gitlab-Token", "").Lookup(), kBody);
  EXPECT_FALSE(r.ok());
}

}  // namespace
}  // namespace flotilla::api
