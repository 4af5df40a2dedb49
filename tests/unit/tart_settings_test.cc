// Provider tart's manifest vocabulary (providers/tart/settings.h): pool settings, SSH addresses
// and images, with the hostile inputs a shell on a host must never see.

#include "providers/tart/settings.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace flotilla::providers::tart {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

// Characters that would let a value escape the quoting on a host, or turn into an option.
const std::vector<std::string> kHostileFragments = {
    ";rm -rf /", "$(id)", "`id`", "'", "\"", " ", "\n", "\t", "|", "&", ">", "<", "*",
    "?",         "\\",    "!",    "#", "%",  "{", "}",  "=",  ",", "(", ")", "$", "~"};

TEST(TartSettingsTest, DefaultsWhenNothingIsSet) {
  for (const json& settings : {json(), json::object(), json{{"tart", nullptr}, {"ssh", {}}}}) {
    Result<TartPoolSettings> s = ParsePoolSettings(settings);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(s->tart_path, "/opt/homebrew/bin/tart");
    EXPECT_EQ(s->tart_home, "");
    EXPECT_EQ(s->pull_policy, PullPolicy::kIfNotPresent);
    EXPECT_EQ(s->known_hosts_file, "");
    EXPECT_FALSE(s->insecure_ignore_host_key);
    EXPECT_EQ(s->connect_timeout, milliseconds{10'000});
    EXPECT_EQ(s->max_sessions, 4);
    EXPECT_EQ(s->max_tunnels, 8);
  }
}

TEST(TartSettingsTest, ReadsEverySetting) {
  Result<TartPoolSettings> s = ParsePoolSettings(json::parse(R"({
    "tart": {"path": "/usr/local/bin/tart", "home": "~/vms/.tart", "pullPolicy": "Always"},
    "ssh": {"knownHostsFile": "/etc/flotilla/known_hosts", "insecureIgnoreHostKey": true,
            "connectTimeout": "1m30s", "maxSessions": 10, "maxTunnels": 0}})"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->tart_path, "/usr/local/bin/tart");
  EXPECT_EQ(s->tart_home, "~/vms/.tart");
  EXPECT_EQ(s->pull_policy, PullPolicy::kAlways);
  EXPECT_EQ(s->known_hosts_file, "/etc/flotilla/known_hosts");
  EXPECT_TRUE(s->insecure_ignore_host_key);
  EXPECT_EQ(s->connect_timeout, milliseconds{90'000});
  EXPECT_EQ(s->max_sessions, 10);
  EXPECT_EQ(s->max_tunnels, 0);
  EXPECT_EQ(ParsePoolSettings(json{{"tart", {{"home", "/Volumes/vms/tart"}}}})->tart_home,
            "/Volumes/vms/tart");
  EXPECT_EQ(ParsePoolSettings(json{{"tart", {{"pullPolicy", "IfNotPresent"}}}})->pull_policy,
            PullPolicy::kIfNotPresent);
}

// The error names the setting, so that a pool built in code says what to fix.
void ExpectRefused(const json& settings, const std::string& starts_with) {
  Result<TartPoolSettings> s = ParsePoolSettings(settings);
  ASSERT_FALSE(s.ok()) << settings.dump();
  EXPECT_EQ(s.status().code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(s.status().message().starts_with(starts_with))
      << settings.dump() << ": " << s.status().message();
}

TEST(TartSettingsTest, WrongTypesAndValuesNameTheSetting) {
  ExpectRefused(json::array(), "the pool's settings must be an object");
  ExpectRefused(json{{"tls", {{"caFile", "/ca.pem"}}}}, "tls is not a setting of provider tart");
  ExpectRefused(json{{"tart", "/opt/homebrew/bin/tart"}}, "tart must be an object");
  ExpectRefused(json{{"ssh", {{"knownHosts", "/k"}}}}, "ssh.knownHosts is not a setting");
  ExpectRefused(json{{"tart", {{"path", 7}}}}, "tart.path ");
  ExpectRefused(json{{"tart", {{"path", "tart"}}}}, "tart.path ");  // not absolute
  ExpectRefused(json{{"tart", {{"path", "~/bin/tart"}}}}, "tart.path ");
  ExpectRefused(json{{"tart", {{"path", "/"}}}}, "tart.path ");
  ExpectRefused(json{{"tart", {{"path", "/" + std::string(1024, 'a')}}}}, "tart.path ");
  ExpectRefused(json{{"tart", {{"home", ".tart"}}}}, "tart.home ");
  ExpectRefused(json{{"tart", {{"home", "~"}}}}, "tart.home ");
  ExpectRefused(json{{"tart", {{"home", "~tart/vms"}}}}, "tart.home ");  // another user's home
  ExpectRefused(json{{"tart", {{"pullPolicy", "always"}}}}, "tart.pullPolicy ");
  ExpectRefused(json{{"tart", {{"pullPolicy", true}}}}, "tart.pullPolicy ");
  ExpectRefused(json{{"ssh", {{"knownHostsFile", "known_hosts"}}}}, "ssh.knownHostsFile ");
  ExpectRefused(json{{"ssh", {{"insecureIgnoreHostKey", "yes"}}}}, "ssh.insecureIgnoreHostKey ");
  ExpectRefused(json{{"ssh", {{"connectTimeout", 10}}}}, "ssh.connectTimeout ");
  ExpectRefused(json{{"ssh", {{"connectTimeout", "10"}}}}, "ssh.connectTimeout ");
  ExpectRefused(json{{"ssh", {{"connectTimeout", "0s"}}}}, "ssh.connectTimeout ");
  ExpectRefused(json{{"ssh", {{"connectTimeout", "0ms0s"}}}}, "ssh.connectTimeout ");
  ExpectRefused(json{{"ssh", {{"connectTimeout", "99999999999999999999h"}}}},
                "ssh.connectTimeout ");
  ExpectRefused(json{{"ssh", {{"maxSessions", 0}}}}, "ssh.maxSessions ");
  ExpectRefused(json{{"ssh", {{"maxSessions", 11}}}}, "ssh.maxSessions ");
  ExpectRefused(json{{"ssh", {{"maxSessions", 2.5}}}}, "ssh.maxSessions ");
  ExpectRefused(json{{"ssh", {{"maxSessions", "4"}}}}, "ssh.maxSessions ");
  ExpectRefused(json{{"ssh", {{"maxTunnels", -1}}}}, "ssh.maxTunnels ");
  ExpectRefused(json{{"ssh", {{"maxTunnels", 65}}}}, "ssh.maxTunnels ");
}

TEST(TartSettingsTest, PathsHoldNothingAShellOrSshWouldInterpret) {
  for (const std::string& fragment : kHostileFragments) {
    ExpectRefused(json{{"tart", {{"path", "/opt/homebrew/bin/tart" + fragment}}}}, "tart.path ");
    ExpectRefused(json{{"tart", {{"home", "~/" + fragment + "x"}}}}, "tart.home ");
    ExpectRefused(json{{"tart", {{"home", "/Volumes/" + fragment}}}}, "tart.home ");
    ExpectRefused(json{{"ssh", {{"knownHostsFile", "/etc/" + fragment}}}}, "ssh.knownHostsFile ");
  }
}

TEST(TartSshAddressTest, TakesBothFormsAndEveryKindOfHost) {
  struct Case {
    std::string address;
    std::string user;
    std::string host;
    int port;
  };
  for (const Case& c : std::vector<Case>{
           {"ssh://tart@10.0.2.11", "tart", "10.0.2.11", 22},
           {"ssh://tart@10.0.2.11:2222", "tart", "10.0.2.11", 2222},
           {"tart@10.0.2.11", "tart", "10.0.2.11", 22},
           {"admin@mini-01.lab.example.com", "admin", "mini-01.lab.example.com", 22},
           {"ssh://ci.runner_1@Mini-01:65535", "ci.runner_1", "Mini-01", 65535},
           {"ssh://tart@[fe80::1]:22", "tart", "fe80::1", 22},
           {"tart@[2001:db8::10]", "tart", "2001:db8::10", 22},
           {"ssh://tart@[::ffff:10.0.2.11]", "tart", "::ffff:10.0.2.11", 22},
           {"ssh://_svc@localhost", "_svc", "localhost", 22},
       }) {
    Result<SshAddress> a = ParseSshAddress(c.address);
    ASSERT_TRUE(a.ok()) << c.address << ": " << a.status().ToString();
    EXPECT_EQ(a->user, c.user) << c.address;
    EXPECT_EQ(a->host, c.host) << c.address;
    EXPECT_EQ(a->port, c.port) << c.address;
  }
}

// Every refusal, and what it says (never the user part: it may be a password).
TEST(TartSshAddressTest, RefusesWhatIsNotAnSshAddress) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"https://10.0.0.11:8080", "only ssh://"},
      {"ssh://10.0.2.11", "the user is missing"},
      {"10.0.2.11", "the user is missing"},
      {"", "the user is missing"},
      {"@10.0.2.11", "the user is not a POSIX portable user name"},
      {"ssh://tart:hunter2@10.0.2.11", "the user is not a POSIX portable user name"},
      {"ssh://-oProxyCommand=id@10.0.2.11", "the user is not a POSIX portable user name"},
      {"ssh://-v@10.0.2.11", "the user is not a POSIX portable user name"},  // an ssh option
      {"tart@-v", "the host is not a DNS name"},
      {"ssh://" + std::string(65, 'a') + "@10.0.2.11", "the user is not a POSIX portable"},
      {"ssh://a@b@10.0.2.11", "more than one '@'"},
      {"ssh://tart@", "the host is missing"},
      {"ssh://tart@:22", "the host is missing"},
      {"ssh://tart@-oProxyCommand=id", "the host is not a DNS name"},
      {"ssh://tart@mini_01", "the host is not a DNS name"},
      {"ssh://tart@mini-.lab", "the host is not a DNS name"},
      {"ssh://tart@mini..lab", "the host is not a DNS name"},
      {"ssh://tart@" + std::string(64, 'a') + ".lab", "the host is not a DNS name"},
      {"ssh://tart@10.0.2.256", "the host is not a DNS name"},
      {"ssh://tart@10.0.2", "the host is not a DNS name"},
      {"ssh://tart@10.0.02.11", "the host is not a DNS name"},
      {"ssh://tart@fe80::1", "an IPv6 address goes in brackets"},
      {"ssh://tart@[fe80::1", "not an IPv6 address"},
      {"ssh://tart@[fe80::1%en0]", "not an IPv6 address"},
      {"ssh://tart@[10.0.2.11]", "not an IPv6 address"},
      {"ssh://tart@[]", "not an IPv6 address"},
      {"ssh://tart@[fe80::1]x", "something follows the host"},
      {"ssh://tart@10.0.2.11/", "the host is not a DNS name"},
      {"tart@10.0.2.11:22", "a port needs the ssh:// form"},
      {"ssh://tart@10.0.2.11:", "the port is not a number from 1 to 65535"},
      {"ssh://tart@10.0.2.11:0", "the port is not a number"},
      {"ssh://tart@10.0.2.11:022", "the port is not a number"},
      {"ssh://tart@10.0.2.11:65536", "the port is not a number"},
      {"ssh://tart@10.0.2.11:99999999999", "the port is not a number"},
      {"ssh://tart@10.0.2.11:-1", "the port is not a number"},
      {"ssh://tart@10.0.2.11:22 ", "the port is not a number"},
      {"SSH://tart@10.0.2.11", "only ssh://"},
  };
  for (const auto& [address, says] : cases) {
    Result<SshAddress> a = ParseSshAddress(address);
    ASSERT_FALSE(a.ok()) << address;
    EXPECT_EQ(a.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(a.status().message().find(says), std::string::npos)
        << address << ": " << a.status().message();
    EXPECT_EQ(a.status().message().find("hunter2"), std::string::npos);
  }
}

TEST(TartSshAddressTest, NoHostileCharacterGetsThrough) {
  for (const std::string& fragment : kHostileFragments) {
    for (const std::string& address :
         {"ssh://a@b" + fragment, "ssh://a" + fragment + "@b", "a@b" + fragment,
          "ssh://tart@10.0.2.11:22" + fragment, "ssh://tart@[fe80::1" + fragment + "]"}) {
      EXPECT_FALSE(ParseSshAddress(address).ok()) << address;
    }
  }
  EXPECT_FALSE(ParseSshAddress("ssh://a@b;rm -rf /").ok());
  EXPECT_FALSE(ParseSshAddress(std::string("ssh://a@b\0c", 11)).ok());
}

TEST(TartImageTest, OciReferencesGetAnExplicitTag) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"oci://ghcr.io/cirruslabs/macos-sequoia-xcode:16",
       "ghcr.io/cirruslabs/macos-sequoia-xcode:16"},
      {"oci://ghcr.io/cirruslabs/macos-sequoia-base",
       "ghcr.io/cirruslabs/macos-sequoia-base:latest"},
      {"oci://registry.lab:5000/macos/xcode:16.2-beta_1",
       "registry.lab:5000/macos/xcode:16.2-beta_1"},
      {"oci://localhost/golden", "localhost/golden:latest"},
      {"oci://10.0.2.5:5000/a__b/c.d/e--f:V1", "10.0.2.5:5000/a__b/c.d/e--f:V1"},
      {"oci://ghcr.io/cirruslabs/macos@sha256:" + std::string(64, 'a'),
       "ghcr.io/cirruslabs/macos@sha256:" + std::string(64, 'a')},
  };
  for (const auto& [image, name] : cases) {
    Result<ImageRef> ref = ParseImage(image);
    ASSERT_TRUE(ref.ok()) << image << ": " << ref.status().ToString();
    EXPECT_EQ(ref->kind, ImageRef::Kind::kOci);
    EXPECT_EQ(ref->name, name);
    EXPECT_EQ(ImageCacheKey(image), name);
  }
}

TEST(TartImageTest, LocalVmsAreClonedByName) {
  for (const std::string name : {"golden", "macos-15.golden_1", "G0"}) {
    Result<ImageRef> ref = ParseImage("vm://" + name);
    ASSERT_TRUE(ref.ok()) << name << ": " << ref.status().ToString();
    EXPECT_EQ(ref->kind, ImageRef::Kind::kLocalVm);
    EXPECT_EQ(ref->name, name);
    EXPECT_EQ(ImageCacheKey("vm://" + name), "");  // nothing is pulled
  }
}

TEST(TartImageTest, RefusesWhatIsNotAnImage) {
  const std::string digest = "sha256:" + std::string(64, 'a');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"ghcr.io/cirruslabs/macos:latest", "nor vm:// (an image in a registry is oci://"},
      {"catalog://macos/15", "neither oci:// nor vm://"},
      {"OCI://ghcr.io/cirruslabs/macos", "neither oci:// nor vm://"},
      {"oci://", "the registry or the repository is missing"},
      {"oci://ghcr.io", "the registry or the repository is missing"},
      {"oci://cirruslabs/macos", "must start with a registry"},
      {"oci://GHCR.io/cirruslabs/macos", "must start with a registry"},
      {"oci://ghcr.io:99999/cirruslabs/macos", "must start with a registry"},
      {"oci://-ghcr.io/cirruslabs/macos", "must start with a registry"},
      {"oci://ghcr.io/", "the repository is lowercase"},
      {"oci://ghcr.io/Cirruslabs/macos", "the repository is lowercase"},
      {"oci://ghcr.io/cirruslabs//macos", "the repository is lowercase"},
      {"oci://ghcr.io/cirruslabs/-macos", "the repository is lowercase"},
      {"oci://ghcr.io/cirruslabs/macos.", "the repository is lowercase"},
      {"oci://ghcr.io/cirruslabs/ma..cos", "the repository is lowercase"},
      {"oci://ghcr.io/cirruslabs/ma___cos", "the repository is lowercase"},
      {"oci://ghcr.io/" + std::string(250, 'a'), "longer than 255 characters"},
      {"oci://ghcr.io/cirruslabs/macos:", "the tag is"},
      {"oci://ghcr.io/cirruslabs/macos:-rc", "the tag is"},
      {"oci://ghcr.io/cirruslabs/macos:.rc", "the tag is"},
      {"oci://ghcr.io/cirruslabs/macos:" + std::string(129, 'a'), "the tag is"},
      {"oci://ghcr.io/cirruslabs/macos:16@" + digest, "both a tag and a digest"},
      {"oci://ghcr.io/cirruslabs/macos@sha256:abc", "the digest must be sha256:"},
      {"oci://ghcr.io/cirruslabs/macos@sha512:" + std::string(128, 'a'), "the digest must be"},
      {"oci://ghcr.io/cirruslabs/macos@sha256:" + std::string(64, 'A'), "the digest must be"},
      {"oci://ghcr.io/cirruslabs/macos@" + digest + "@" + digest, "the digest must be"},
      {"vm://", "the VM name is"},
      {"vm://-golden", "the VM name is"},
      {"vm://.golden", "the VM name is"},
      {"vm://..", "the VM name is"},
      {"vm://a/b", "the VM name is"},
      {"vm://" + std::string(256, 'a'), "the VM name is"},
  };
  for (const auto& [image, says] : cases) {
    Result<ImageRef> ref = ParseImage(image);
    ASSERT_FALSE(ref.ok()) << image;
    EXPECT_EQ(ref.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(ref.status().message().find(says), std::string::npos)
        << image << ": " << ref.status().message();
    EXPECT_EQ(ImageCacheKey(image), "") << image;
  }
}

TEST(TartImageTest, NoHostileCharacterGetsThrough) {
  for (const std::string& fragment : kHostileFragments) {
    for (const std::string& image :
         {"oci://x/" + fragment, "oci://ghcr.io/a" + fragment, "oci://ghcr.io/a:b" + fragment,
          "oci://ghcr.io" + fragment + "/a", "oci://ghcr.io/a@sha256:" + fragment,
          "vm://golden" + fragment, "vm://" + fragment + "golden"}) {
      EXPECT_FALSE(ParseImage(image).ok()) << image;
    }
  }
  EXPECT_FALSE(ParseImage("oci://x/$(id)").ok());
  EXPECT_FALSE(ParseImage("oci://ghcr.io/a$(id)").ok());
  EXPECT_FALSE(ParseImage("vm://golden;rm -rf /").ok());
}

}  // namespace
}  // namespace flotilla::providers::tart
