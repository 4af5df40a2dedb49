// The provider interface's shared pieces: state mapping, temporary create names, the registry,
// secrets and redaction, and the FakeProvider's own knobs.

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "providers/fake_provider.h"
#include "providers/parallels/wire.h"
#include "providers/registry.h"
#include "providers/secrets.h"

namespace flotilla::providers {
namespace {

TEST(VmStateTest, MapsEveryKnownStringAndKeepsInBetweenStatesApart) {
  EXPECT_EQ(parallels::ParseVmState("running"), VmState::kRunning);
  EXPECT_EQ(parallels::ParseVmState("Stopped"), VmState::kStopped);
  EXPECT_EQ(parallels::ParseVmState("suspended"), VmState::kSuspended);
  EXPECT_EQ(parallels::ParseVmState("paused"), VmState::kPaused);
  EXPECT_EQ(parallels::ParseVmState("invalid"), VmState::kInvalid);
  for (const char* s : {"starting", "stopping", "resuming", "suspending", "pausing", "resetting",
                        "restoring", "continuing", "migrating", "deleting"}) {
    EXPECT_EQ(parallels::ParseVmState(s), VmState::kTransitional) << s;
  }
  EXPECT_EQ(parallels::ParseVmState("unknown"), VmState::kUnknown);
  EXPECT_EQ(parallels::ParseVmState(""), VmState::kUnknown);
  EXPECT_EQ(parallels::ParseVmState("ing"), VmState::kUnknown);
  EXPECT_EQ(ToString(VmState::kTransitional), "transitional");
  // The model reads back only its own names; each provider maps its own words.
  EXPECT_EQ(VmStateFromName("transitional"), VmState::kTransitional);
  EXPECT_EQ(VmStateFromName("Stopped"), VmState::kUnknown);
  EXPECT_EQ(VmStateFromName("stopping"), VmState::kUnknown);
}

TEST(PendingCreateNameTest, RoundTripsAndRejectsOrdinaryNames) {
  const std::string temp = PendingCreateName("ios-1", "ab12");
  EXPECT_EQ(temp, "ios-1.flotilla-ab12");
  EXPECT_EQ(ParsePendingCreateName(temp), "ios-1");
  EXPECT_EQ(ParsePendingCreateName("ios-1"), "");
  EXPECT_EQ(ParsePendingCreateName("ios-1.flotilla-"), "");
  EXPECT_EQ(ParsePendingCreateName(".flotilla-ab12"), "");
  EXPECT_EQ(ParsePendingCreateName("my.vm.flotilla-ab12"), "");
  // No final name is a substring of another's temporary name, since final names have no '.'.
  EXPECT_EQ(PendingCreateName("ios-10", "x").find(PendingCreateName("ios-1", "x")),
            std::string::npos);
}

class NamedRules final : public ProviderRules {
 public:
  explicit NamedRules(std::string name) : name_(std::move(name)) {}
  std::string_view name() const override { return name_; }
  std::string_view settings_schema() const override { return "{}"; }
  void CheckPool(const HostPool&, std::vector<PoolProblem>&) const override {}
  std::string CheckImage(std::string_view) const override { return ""; }
  std::string ImageCacheKey(std::string_view) const override { return ""; }

 private:
  std::string name_;
};

class NamedFactory final : public ProviderFactory {
 public:
  explicit NamedFactory(std::string name, std::string rules_name = "")
      : name_(std::move(name)),
        rules_(std::make_shared<NamedRules>(rules_name.empty() ? name_ : rules_name)) {}
  std::string_view name() const override { return name_; }
  std::shared_ptr<const ProviderRules> rules() const override { return rules_; }
  Result<std::unique_ptr<Provider>> Build(const ProviderContext&) const override {
    return std::unique_ptr<Provider>(std::make_unique<FakeProvider>());
  }

 private:
  std::string name_;
  std::shared_ptr<const ProviderRules> rules_;
};

TEST(ProviderRegistryTest, DuplicatesAreRefusedAndUnknownNamesListTheKnownOnes) {
  ProviderRegistry registry;
  ASSERT_TRUE(registry.Register(std::make_unique<NamedFactory>("parallels")).ok());
  ASSERT_TRUE(registry.Register(std::make_unique<NamedFactory>("fake")).ok());
  Status duplicate = registry.Register(std::make_unique<NamedFactory>("fake"));
  EXPECT_EQ(duplicate.code(), Status::Code::kAlreadyExists);
  EXPECT_EQ(registry.Names(), (std::vector<std::string>{"fake", "parallels"}));
  ASSERT_EQ(registry.Rules().size(), 2u);
  EXPECT_EQ(registry.Rules()[0]->name(), "fake");
  // A factory's rules carry its own name, or core code would check pools by the wrong rules.
  EXPECT_EQ(registry.Register(std::make_unique<NamedFactory>("tart", "parallels")).code(),
            Status::Code::kInvalidArgument);

  Result<const ProviderFactory*> unknown = registry.Find("tart");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().message(),
            "unknown provider \"tart\"; known providers: fake, parallels");

  HostPool pool;
  pool.meta.name = "macs";
  pool.provider = "tart";
  MapSecretSource secrets;
  SystemClock clock;
  Result<std::unique_ptr<Provider>> built = registry.Build(
      {.pool = pool, .secrets = secrets, .logger = spdlog::default_logger(), .clock = clock});
  ASSERT_FALSE(built.ok());
  EXPECT_NE(built.status().message().find("pool macs"), std::string::npos);
  pool.provider = "fake";
  EXPECT_TRUE(registry
                  .Build({.pool = pool,
                          .secrets = secrets,
                          .logger = spdlog::default_logger(),
                          .clock = clock})
                  .ok());
}

class SecretsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/flotilla-secrets-XXXXXX";
    dir_ = mkdtemp(pattern);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& relative, const std::string& content) {
    std::filesystem::create_directories((dir_ / relative).parent_path());
    std::ofstream(dir_ / relative) << content;
  }
  std::filesystem::path dir_;
};

TEST_F(SecretsTest, FilesFirstThenEnvironment) {
  Write("builders/password", "hunter2-long\n");
  FileSecretSource source(dir_);
  EXPECT_EQ(source.Read("builders", "password")->value(), "hunter2-long");
  EXPECT_FALSE(source.Read("builders", "apiKey")->has_value());

  EXPECT_EQ(FileSecretSource::EnvName("mac-builders", "apiKey"),
            "FLOTILLA_SECRET_MAC_BUILDERS_APIKEY");
  setenv("FLOTILLA_SECRET_MAC_BUILDERS_APIKEY", "from-env-value", 1);
  EXPECT_EQ(source.Read("mac-builders", "apiKey")->value(), "from-env-value");
  Write("mac-builders/apiKey", "from-file-value");
  EXPECT_EQ(source.Read("mac-builders", "apiKey")->value(), "from-file-value");
  unsetenv("FLOTILLA_SECRET_MAC_BUILDERS_APIKEY");
}

TEST_F(SecretsTest, RefusesPathsAndHugeFilesWithoutQuotingThem) {
  FileSecretSource source(dir_);
  EXPECT_FALSE(source.Read("../etc", "passwd").ok());
  EXPECT_FALSE(source.Read("builders", "a/b").ok());
  Write("big/password", std::string(size_t{70} * 1024, 'x'));
  Result<std::optional<std::string>> big = source.Read("big", "password");
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().message().find("xxxx"), std::string::npos);
}

TEST_F(SecretsTest, AnEmptyFileIsAnErrorNamingItNeverAFallback) {
  setenv("FLOTILLA_SECRET_BUILDERS_PASSWORD", "from-env-value", 1);
  Write("builders/password", "\n");
  FileSecretSource source(dir_);
  Result<std::optional<std::string>> empty = source.Read("builders", "password");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find((dir_ / "builders/password").string() + " is empty"),
            std::string::npos)
      << empty.status().message();
  setenv("FLOTILLA_SECRET_BUILDERS_PASSWORD", "", 1);
  std::filesystem::remove(dir_ / "builders/password");
  EXPECT_FALSE(source.Read("builders", "password").ok());
  unsetenv("FLOTILLA_SECRET_BUILDERS_PASSWORD");
}

TEST(RedactorTest, ReplacesEveryOccurrenceLongestFirst) {
  Redactor redactor;
  redactor.Add("s3cret");
  redactor.Add("user:s3cret");
  EXPECT_EQ(redactor.Apply("login user:s3cret failed; s3cret again"),
            "login [REDACTED] failed; [REDACTED] again");
}

TEST(RedactorTest, ShortValuesAreRedactedWhereverTheyStandAlone) {
  Redactor redactor;
  redactor.Add("abc");
  redactor.Add("7");
  EXPECT_EQ(redactor.Apply("password=abc; abc. user abc:7 fabcd 17"),
            "password=[REDACTED]; [REDACTED]. user [REDACTED]:[REDACTED] fabcd 17");
}

TEST(FakeProviderTest, InjectedFailuresAndCallCounts) {
  FakeProvider fake;
  fake.AddHost("fake://a");
  const HostRef host{.pool = "p", .name = "a", .address = "fake://a"};
  fake.FailNext("start", Status::Unavailable("boom"), 2);
  const VMTemplate templ{.image = "catalog://X/1", .cpu = 1, .memory = Quantity::FromMiB(1024)};
  ASSERT_TRUE(
      fake.Create(host, {.name = "vm-0", .templ = templ}, DeadlineIn(std::chrono::seconds{1}))
          .ok());
  EXPECT_TRUE(fake.Start(host, "vm-0", {}).IsUnavailable());
  EXPECT_TRUE(fake.Start(host, "vm-0", {}).IsUnavailable());
  EXPECT_TRUE(fake.Start(host, "vm-0", {}).ok());
  EXPECT_EQ(fake.Calls("start"), 3);
  // Cached images are reported as FakeRules::ImageCacheKey spells them.
  EXPECT_TRUE(fake.Observe(host, {}).facts.cached_images ==
              std::vector<std::string>{FakeRules().ImageCacheKey("catalog://X/1")});
  VMTemplate x86 = templ;
  x86.arch = Arch::kX86_64;
  EXPECT_EQ(fake.Create(host, {.name = "vm-1", .templ = x86}, {}).status().code(),
            Status::Code::kFailedPrecondition);
}

}  // namespace
}  // namespace flotilla::providers
