// GitSource against real Git servers on loopback: git daemon, smart HTTP and sshd.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <set>

#include "providers/builtin.h"
#include "reconciler/controller/git_desired_source.h"
#include "reconciler/source/git_source.h"
#include "reconciler/source/manifest_source.h"
#include "reconciler/source/socket_stream.h"
#include "tests/integration/servers.h"

namespace flotilla::source {
namespace {

namespace fs = std::filesystem;
using testing::FixtureRepo;
using testing::ScratchDir;
using testing::Sh;

const fs::path kFleet = fs::path(FLOTILLA_SOURCE_DIR) / "examples" / "fleet";
constexpr const char* kToken = "tok-3f9a1c7e-secret";

manifest::ManifestLoader Loader() {
  auto validator = manifest::SchemaValidator::Create(flotilla::providers::BuiltinRules());
  return manifest::ManifestLoader(*validator);
}

std::string AllText(const manifest::LoadResult& r) {
  std::string s;
  for (const auto& d : r.diagnostics.Sorted()) {
    s += d.ToString() + "\n";
  }
  return s;
}

class GitSourceTest : public ::testing::Test {
 protected:
  GitSourceTest() : library_(std::chrono::seconds(10)), repo_(scratch_.path(), kFleet) {}

  std::unique_ptr<GitSource> Open(const std::string& url, GitAuth auth = {},
                                  const std::string& branch = "main") {
    GitSourceOptions options;
    options.url = url;
    options.branch = branch;
    options.state_dir = (scratch_.path() / "state").string();
    options.auth = std::move(auth);
    options.fetch_timeout = std::chrono::seconds(60);
    Result<std::unique_ptr<GitSource>> source = OpenGitSource(options);
    EXPECT_TRUE(source.ok()) << source.status().ToString();
    return source.ok() ? std::move(*source) : nullptr;
  }

  // Raises ios-runners' replicas from 4 to `replicas` and pushes.
  std::string PushReplicas(int replicas) {
    std::string text = repo_.Read("fleet/vmsets/ios-runners.yaml");
    const size_t at = text.find("replicas: ");
    text.replace(at, text.find('\n', at) - at, "replicas: " + std::to_string(replicas));
    repo_.Write("fleet/vmsets/ios-runners.yaml", text);
    return repo_.CommitAndPush("ios-runners: " + std::to_string(replicas) + " replicas");
  }

  fs::path Mirror() {
    for (const auto& entry : fs::directory_iterator(scratch_.path() / "state" / "git")) {
      return entry.path();
    }
    return {};
  }

  ScratchDir scratch_;
  GitLibrary library_;
  FixtureRepo repo_;
  manifest::ManifestLoader loader_ = Loader();
};

// The same scenario over every transport.
void CloneFetchAndReparse(GitSource& git, FixtureRepo& repo,
                          const std::function<std::string(int)>& push_replicas,
                          const manifest::ManifestLoader& loader) {
  Result<FetchResult> first = git.Fetch();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(first->cloned);
  EXPECT_EQ(first->old_sha, "");
  EXPECT_EQ(first->new_sha, repo.Git("rev-parse HEAD"));

  ParseCache cache;
  Result<manifest::LoadResult> loaded = LoadRevision(git, "main", "fleet", loader, cache);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_TRUE(loaded->ok()) << AllText(*loaded);
  EXPECT_EQ(loaded->desired.DesiredVMCount(), 11u);
  EXPECT_EQ(cache.parses(), 7u);

  const std::string next = push_replicas(5);
  Result<FetchResult> second = git.Fetch();
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_FALSE(second->cloned);
  EXPECT_FALSE(second->forced);
  EXPECT_EQ(second->old_sha, first->new_sha);
  EXPECT_EQ(second->new_sha, next);

  Result<std::vector<std::string>> changed = git.ChangedFiles(first->new_sha, next, "fleet");
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ(*changed, std::vector<std::string>{"fleet/vmsets/ios-runners.yaml"});

  Result<manifest::LoadResult> reloaded = LoadRevision(git, "main", "fleet", loader, cache);
  ASSERT_TRUE(reloaded.ok());
  EXPECT_EQ(reloaded->desired.DesiredVMCount(), 12u);
  EXPECT_EQ(cache.parses(), 8u) << "only the changed blob may be parsed again";

  // Blobs the caller already has are listed by id, not read.
  const std::string changed_file = "fleet/vmsets/ios-runners.yaml";
  manifest::Diagnostics tree_diagnostics;
  Result<std::vector<TreeFile>> skipping = git.ReadTreeSkipping(
      next, "fleet",
      [&](const std::string& /*blob_id*/, const std::string& path) { return path != changed_file; },
      tree_diagnostics);
  ASSERT_TRUE(skipping.ok()) << skipping.status().ToString();
  ASSERT_EQ(skipping->size(), 7u);
  for (const TreeFile& file : *skipping) {
    const bool read = file.path == changed_file;
    EXPECT_EQ(file.known, !read) << file.path;
    EXPECT_EQ(file.loaded, read) << file.path;
    EXPECT_EQ(file.content.empty(), !read) << file.path;
    EXPECT_EQ(file.blob_id.size(), 40u) << file.path;
  }

  Result<CommitInfo> info = git.Commit("main");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->subject, "ios-runners: 5 replicas");
  EXPECT_EQ(info->author, "Fleet");
  EXPECT_EQ(info->email, "fleet@example.com");
  EXPECT_GT(info->time, 0);
  EXPECT_EQ(LiveSocketStreams(), 0) << "every network stream is freed after a fetch";
}

TEST_F(GitSourceTest, LocalPath) {
  std::unique_ptr<GitSource> git = Open(repo_.bare().string());
  ASSERT_NE(git, nullptr);
  CloneFetchAndReparse(
      *git, repo_, [&](int n) { return PushReplicas(n); }, loader_);
}

TEST_F(GitSourceTest, FileUrl) {
  std::unique_ptr<GitSource> git = Open("file://" + repo_.bare().string());
  ASSERT_NE(git, nullptr);
  CloneFetchAndReparse(
      *git, repo_, [&](int n) { return PushReplicas(n); }, loader_);
}

TEST_F(GitSourceTest, GitDaemon) {
  testing::GitDaemon daemon(repo_.served_root());
  ASSERT_TRUE(daemon.ready());
  std::unique_ptr<GitSource> git = Open(daemon.Url("fleet.git"));
  ASSERT_NE(git, nullptr);
  CloneFetchAndReparse(
      *git, repo_, [&](int n) { return PushReplicas(n); }, loader_);
}

TEST_F(GitSourceTest, SmartHttpWithToken) {
  testing::HttpGitServer http(repo_.served_root(), scratch_.path(), kToken);
  ASSERT_TRUE(http.ready());
  const fs::path token_file = scratch_.path() / "token";
  std::ofstream(token_file) << kToken << "\n";
  std::unique_ptr<GitSource> git = Open(http.Url("fleet.git"), {.token_file = token_file});
  ASSERT_NE(git, nullptr);
  CloneFetchAndReparse(
      *git, repo_, [&](int n) { return PushReplicas(n); }, loader_);
}

TEST_F(GitSourceTest, SmartHttpTokenFromEnvironment) {
  testing::HttpGitServer http(repo_.served_root(), scratch_.path(), kToken);
  ASSERT_TRUE(http.ready());
  setenv("FLOTILLA_TEST_GIT_TOKEN", kToken, 1);
  std::unique_ptr<GitSource> git =
      Open(http.Url("fleet.git"), {.token_env = "FLOTILLA_TEST_GIT_TOKEN"});
  ASSERT_NE(git, nullptr);
  Result<FetchResult> r = git->Fetch();
  EXPECT_TRUE(r.ok()) << r.status().ToString();
}

TEST_F(GitSourceTest, SmartHttpWrongOrMissingTokenIsPermissionDeniedAndNeverShown) {
  testing::HttpGitServer http(repo_.served_root(), scratch_.path(), kToken);
  ASSERT_TRUE(http.ready());
  const fs::path wrong = scratch_.path() / "wrong-token";
  std::ofstream(wrong) << "tok-wrong-4d2b8e\n";
  Result<FetchResult> r = Open(http.Url("fleet.git"), {.token_file = wrong})->Fetch();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsPermissionDenied()) << r.status().ToString();
  EXPECT_EQ(r.status().message().find("tok-wrong"), std::string::npos) << r.status().message();

  Result<FetchResult> none = Open(http.Url("fleet.git"))->Fetch();
  ASSERT_FALSE(none.ok());
  EXPECT_TRUE(none.status().IsPermissionDenied()) << none.status().ToString();
  EXPECT_NE(none.status().message().find("no token is configured"), std::string::npos);
}

TEST_F(GitSourceTest, CredentialsInTheUrlAreNeverStoredOrShown) {
  testing::HttpGitServer http(repo_.served_root(), scratch_.path(), kToken);
  ASSERT_TRUE(http.ready());
  std::string url = http.Url("missing.git");
  url.insert(std::string("http://").size(), std::string("ci:") + kToken + "@");
  Result<FetchResult> r = Open(url)->Fetch();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().find(kToken), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("http://***@127.0.0.1"), std::string::npos)
      << r.status().message();
  // Nothing on disk holds the token either.
  EXPECT_EQ(Sh("grep -rl " + testing::Quote(kToken) + " " +
               testing::Quote((scratch_.path() / "state").string()) + " || true"),
            "");
}

TEST_F(GitSourceTest, SshWithKnownHosts) {
  testing::SshServer ssh(scratch_.path() / "ssh");
  ASSERT_TRUE(ssh.ready());
  std::unique_ptr<GitSource> git = Open(
      ssh.Url(repo_.bare()),
      {.ssh_key_file = ssh.user_key().string(), .known_hosts_file = ssh.known_hosts().string()});
  ASSERT_NE(git, nullptr);
  CloneFetchAndReparse(
      *git, repo_, [&](int n) { return PushReplicas(n); }, loader_);
}

TEST_F(GitSourceTest, SshRefusesChangedOrUnknownHostKeys) {
  testing::SshServer ssh(scratch_.path() / "ssh");
  ASSERT_TRUE(ssh.ready());
  // A different key for the same host and port: a changed host key.
  const fs::path other = scratch_.path() / "other";
  Sh("ssh-keygen -q -t ecdsa -b 256 -N '' -f " + testing::Quote(other.string()));
  std::ifstream pub(other.string() + ".pub");
  std::string type, key;
  pub >> type >> key;
  const fs::path changed = scratch_.path() / "known_hosts_changed";
  std::ofstream(changed) << "[127.0.0.1]:" << ssh.port() << " " << type << " " << key << "\n";
  Result<FetchResult> r = Open(ssh.Url(repo_.bare()), {.ssh_key_file = ssh.user_key().string(),
                                                       .known_hosts_file = changed.string()})
                              ->Fetch();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsPermissionDenied()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("does not match the known_hosts file"), std::string::npos)
      << r.status().message();

  const fs::path unknown = scratch_.path() / "known_hosts_unknown";
  std::ofstream(unknown) << "[127.0.0.1]:1 " << type << " " << key << "\n";
  Result<FetchResult> u = Open(ssh.Url(repo_.bare()), {.ssh_key_file = ssh.user_key().string(),
                                                       .known_hosts_file = unknown.string()})
                              ->Fetch();
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.status().message().find("is not in the known_hosts file"), std::string::npos)
      << u.status().message();

  // Explicitly insecure: accepted.
  Result<FetchResult> insecure =
      Open(ssh.Url(repo_.bare()),
           {.ssh_key_file = ssh.user_key().string(), .insecure_ignore_host_key = true})
          ->Fetch();
  EXPECT_TRUE(insecure.ok()) << insecure.status().ToString();
}

TEST_F(GitSourceTest, SshNeedsKnownHostsUnlessInsecure) {
  GitSourceOptions options;
  options.url = "git@git.example.com:acme/fleet.git";
  options.state_dir = (scratch_.path() / "state").string();
  Result<std::unique_ptr<GitSource>> r = OpenGitSource(options);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());
  EXPECT_NE(r.status().message().find("knownHostsFile"), std::string::npos);
}

TEST_F(GitSourceTest, ForcePushIsReported) {
  testing::GitDaemon daemon(repo_.served_root());
  ASSERT_TRUE(daemon.ready());
  std::unique_ptr<GitSource> git = Open(daemon.Url("fleet.git"));
  const std::string before = PushReplicas(5);
  ASSERT_TRUE(git->Fetch().ok());
  repo_.Git("reset -q --hard HEAD~1");
  repo_.Write("fleet/vmsets/ios-runners.yaml",
              repo_.Read("fleet/vmsets/ios-runners.yaml") + "# rewritten\n");
  const std::string rewritten = repo_.CommitAll("rewrite history");
  repo_.Git("push -q -f origin main");
  Result<FetchResult> r = git->Fetch();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->forced);
  EXPECT_EQ(r->old_sha, before);
  EXPECT_EQ(r->new_sha, rewritten);
}

TEST_F(GitSourceTest, DeletedBranchIsNotFoundAndKeepsTheLastCommit) {
  testing::GitDaemon daemon(repo_.served_root());
  ASSERT_TRUE(daemon.ready());
  std::unique_ptr<GitSource> git = Open(daemon.Url("fleet.git"));
  Result<FetchResult> first = git->Fetch();
  ASSERT_TRUE(first.ok());
  Sh("git -C " + testing::Quote(repo_.bare().string()) + " update-ref -d refs/heads/main");
  Result<FetchResult> r = git->Fetch();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("branch \"main\" not found"), std::string::npos);
  Result<std::string> kept = git->Resolve("main");
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(*kept, first->new_sha);
}

TEST_F(GitSourceTest, ServerDownIsUnavailableAndTheMirrorIsIntact) {
  auto daemon = std::make_unique<testing::GitDaemon>(repo_.served_root());
  ASSERT_TRUE(daemon->ready());
  std::unique_ptr<GitSource> git = Open(daemon->Url("fleet.git"));
  Result<FetchResult> first = git->Fetch();
  ASSERT_TRUE(first.ok());
  daemon->Stop();
  PushReplicas(6);
  Result<FetchResult> r = git->Fetch();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsUnavailable()) << r.status().ToString();
  EXPECT_TRUE(r.status().IsRetryable());
  Result<std::string> kept = git->Resolve("main");
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(*kept, first->new_sha);
  ParseCache cache;
  Result<manifest::LoadResult> loaded = LoadRevision(*git, "main", "fleet", loader_, cache);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->desired.DesiredVMCount(), 11u);
}

TEST_F(GitSourceTest, MissingRepositoryIsNotFound) {
  testing::GitDaemon daemon(repo_.served_root());
  ASSERT_TRUE(daemon.ready());
  Result<FetchResult> r = Open(daemon.Url("nope.git"))->Fetch();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();

  // Over HTTP with a good token: the server's 404.
  testing::HttpGitServer http(repo_.served_root(), scratch_.path(), kToken);
  ASSERT_TRUE(http.ready());
  const fs::path token_file = scratch_.path() / "token";
  std::ofstream(token_file) << kToken << "\n";
  Result<FetchResult> h = Open(http.Url("nope.git"), {.token_file = token_file})->Fetch();
  ASSERT_FALSE(h.ok());
  EXPECT_TRUE(h.status().IsNotFound()) << h.status().ToString();
}

TEST_F(GitSourceTest, CorruptOrPartialMirrorIsRecoveredByCloningAgain) {
  testing::GitDaemon daemon(repo_.served_root());
  ASSERT_TRUE(daemon.ready());
  {
    std::unique_ptr<GitSource> git = Open(daemon.Url("fleet.git"));
    ASSERT_TRUE(git->Fetch().ok());
  }
  // Objects gone: the branch points at a commit that is not there.
  const fs::path mirror = Mirror();
  fs::remove_all(mirror / "objects");
  fs::create_directories(mirror / "objects" / "pack");
  {
    std::unique_ptr<GitSource> git = Open(daemon.Url("fleet.git"));
    Result<FetchResult> r = git->Fetch();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->cloned);
    EXPECT_EQ(r->new_sha, repo_.Git("rev-parse HEAD"));
  }
  // A partial folder, as a crash during the first clone could leave.
  fs::remove_all(mirror);
  fs::create_directories(mirror);
  std::ofstream(mirror / "HEAD") << "garbage";
  {
    std::unique_ptr<GitSource> git = Open(daemon.Url("fleet.git"));
    Result<FetchResult> r = git->Fetch();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->cloned);
  }
}

TEST_F(GitSourceTest, HugeFilesAndSymlinksInTheTreeAreRefused) {
  repo_.Write("fleet/huge.yaml", "# " + std::string(2 << 20, 'x') + "\n");
  fs::create_symlink("pools/mac-builders.yaml", repo_.work() / "fleet" / "link.yaml");
  repo_.Write("fleet/.github/workflows/ci.yaml", "on: push\n");
  const std::string sha = repo_.CommitAndPush("add a huge file and a symlink");
  std::unique_ptr<GitSource> git = Open(repo_.bare().string());
  ASSERT_TRUE(git->Fetch().ok());
  ParseCache cache;
  Result<manifest::LoadResult> r = LoadRevision(*git, "main", "fleet", loader_, cache);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const std::string text = AllText(*r);
  const std::string at = "@" + sha.substr(0, 7);
  EXPECT_NE(text.find("fleet/huge.yaml" + at +
                      ": error: file is 2097155 bytes; manifest files "
                      "may be at most 1048576 bytes"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("fleet/link.yaml" + at + ": warning: symlink skipped"), std::string::npos)
      << text;
  EXPECT_EQ(text.find(".github"), std::string::npos) << text;
  EXPECT_EQ(r->desired.DesiredVMCount(), 11u);  // the rest still loads
  EXPECT_EQ(cache.parses(), 7u);                // the huge blob was never parsed
}

TEST_F(GitSourceTest, ErrorsNameFileAtShortSha) {
  repo_.Write("fleet/vmsets/ios-runners.yaml",
              "apiVersion: flotilla.dev/v1\nkind: VMSet\nmetadata: {name: ios-runners}\n"
              "spec:\n  pool: mac-builders\n  replica: 4\n");
  const std::string sha = repo_.CommitAndPush("typo");
  std::unique_ptr<GitSource> git = Open(repo_.bare().string());
  ASSERT_TRUE(git->Fetch().ok());
  ParseCache cache;
  Result<manifest::LoadResult> r = LoadRevision(*git, sha.substr(0, 9), "fleet/", loader_, cache);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(AllText(*r).find("fleet/vmsets/ios-runners.yaml@" + sha.substr(0, 7) +
                             ":6:3: error: unknown field \"replica\""),
            std::string::npos)
      << AllText(*r);
}

TEST_F(GitSourceTest, ResolvesRevisionExpressions) {
  const std::string first = repo_.Git("rev-parse HEAD");
  const std::string second = PushReplicas(5);
  repo_.Git("tag v1 " + first);
  repo_.Git("push -q origin v1");
  std::unique_ptr<GitSource> git = Open(repo_.bare().string());
  ASSERT_TRUE(git->Fetch().ok());
  EXPECT_EQ(*git->Resolve("main"), second);
  EXPECT_EQ(*git->Resolve("HEAD"), second);
  EXPECT_EQ(*git->Resolve("main~1"), first);
  EXPECT_EQ(*git->Resolve("v1"), first);
  EXPECT_EQ(*git->Resolve(first), first);
  EXPECT_EQ(*git->Resolve(first.substr(0, 8)), first);
  EXPECT_TRUE(git->Resolve("no-such-branch").status().IsNotFound());
  EXPECT_FALSE(git->Resolve("main~~~~~~~~~~").ok());
  manifest::Diagnostics d;
  EXPECT_TRUE(git->ReadTree("main", "nope", d).status().IsNotFound());
  EXPECT_TRUE(git->ReadTree("main", "fleet/pools/mac-builders.yaml", d).status().IsNotFound());
}

TEST_F(GitSourceTest, SshServerThatNeverSpeaksHitsTheFetchDeadline) {
  // A listener that accepts and says nothing: libssh2 waits in its own poll, which only the
  // fetch deadline (the watch cutting the socket) can end.
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  socklen_t len = sizeof(addr);
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  GitSourceOptions options;
  options.url = "ssh://git@127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/fleet.git";
  options.state_dir = (scratch_.path() / "state").string();
  options.auth.insecure_ignore_host_key = true;
  options.fetch_timeout = std::chrono::seconds(3);
  Result<std::unique_ptr<GitSource>> git = OpenGitSource(options);
  ASSERT_TRUE(git.ok());
  Result<FetchResult> r = (*git)->Fetch();
  close(listener);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsUnavailable()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("timed out after 3s"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(LiveSocketStreams(), 0);
}

TEST_F(GitSourceTest, InsecureHostKeyIsWarnedAboutOnEveryFetch) {
  testing::SshServer ssh(scratch_.path() / "ssh");
  ASSERT_TRUE(ssh.ready());
  std::unique_ptr<GitSource> git =
      Open(ssh.Url(repo_.bare()),
           {.ssh_key_file = ssh.user_key().string(), .insecure_ignore_host_key = true});
  for (int i = 0; i < 2; ++i) {
    Result<FetchResult> r = git->Fetch();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->warnings.size(), 1u);
    EXPECT_NE(r->warnings[0].find("without checking it"), std::string::npos);
  }
}

TEST_F(GitSourceTest, SshKeyWithPassphrase) {
  testing::SshServer ssh(scratch_.path() / "ssh");
  ASSERT_TRUE(ssh.ready());
  const fs::path key = scratch_.path() / "locked_key";
  Sh("ssh-keygen -q -t ecdsa -b 256 -m PEM -N 'correct horse' -f " + testing::Quote(key.string()));
  Sh("cat " + testing::Quote(key.string() + ".pub") + " >> " +
     testing::Quote((scratch_.path() / "ssh" / "authorized_keys").string()));
  const fs::path passphrase = scratch_.path() / "passphrase";
  std::ofstream(passphrase) << "correct horse\n";
  Result<FetchResult> r =
      Open(ssh.Url(repo_.bare()), {.ssh_key_file = key.string(),
                                   .ssh_passphrase_file = passphrase.string(),
                                   .known_hosts_file = ssh.known_hosts().string()})
          ->Fetch();
  EXPECT_TRUE(r.ok()) << r.status().ToString();
}

TEST_F(GitSourceTest, CrossReferencesNameTheRevisionToo) {
  repo_.Write("fleet/pools/copy.yaml", repo_.Read("fleet/pools/mac-builders.yaml"));
  const std::string sha = repo_.CommitAndPush("duplicate pool");
  std::unique_ptr<GitSource> git = Open(repo_.bare().string());
  ASSERT_TRUE(git->Fetch().ok());
  ParseCache cache;
  Result<manifest::LoadResult> r = LoadRevision(*git, "main", "fleet", loader_, cache);
  ASSERT_TRUE(r.ok());
  const std::string at = "@" + sha.substr(0, 7);
  EXPECT_NE(AllText(*r).find("already defined at fleet/pools/copy.yaml" + at + ":"),
            std::string::npos)
      << AllText(*r);
}

TEST_F(GitSourceTest, HangingServerTimesOut) {
  testing::HttpGitServer http(repo_.served_root(), scratch_.path(), kToken);
  ASSERT_TRUE(http.ready());
  const GitLibrary quick(std::chrono::seconds(2));  // re-registers the stream: 2 s idle limit
  GitSourceOptions options;
  options.url = http.Url("hang/fleet.git");
  options.state_dir = (scratch_.path() / "state").string();
  options.fetch_timeout = std::chrono::seconds(5);
  Result<std::unique_ptr<GitSource>> git = OpenGitSource(options);
  ASSERT_TRUE(git.ok());
  Result<FetchResult> r = (*git)->Fetch();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsUnavailable()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("timed out"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace flotilla::source

namespace flotilla::source {
namespace {

// source.verify: every fetched tip must carry an SSH signature by an allowed key.
class SignedSourceTest : public GitSourceTest {
 protected:
  SignedSourceTest() {
    Sh("ssh-keygen -q -t ed25519 -N '' -C fleet -f " + testing::Quote(Key("alice").string()));
    Sh("ssh-keygen -q -t ed25519 -N '' -C mallory -f " + testing::Quote(Key("mallory").string()));
    std::ifstream pub(Key("alice").string() + ".pub");
    std::string type, key;
    pub >> type >> key;
    std::ofstream(AllowedSigners())
        << "fleet@example.com namespaces=\"git\" " << type << " " << key << "\n";
  }

  fs::path Key(const std::string& who) { return scratch_.path() / ("sign-" + who); }
  fs::path AllowedSigners() { return scratch_.path() / "allowed_signers"; }

  // Commits a change to ios-runners' replicas, signed by `who` (or unsigned), and pushes.
  std::string Push(int replicas, const std::string& who) {
    std::string text = repo_.Read("fleet/vmsets/ios-runners.yaml");
    const size_t at = text.find("replicas: ");
    text.replace(at, text.find('\n', at) - at, "replicas: " + std::to_string(replicas));
    repo_.Write("fleet/vmsets/ios-runners.yaml", text);
    repo_.Git("add -A");
    const std::string sign =
        who.empty()
            ? ""
            : "-c gpg.format=ssh -c user.signingkey=" + testing::Quote(Key(who).string()) + " ";
    repo_.Git(sign + "commit -q " + (who.empty() ? "" : "-S ") + "-m 'replicas'");
    repo_.Git("push -q origin main");
    return repo_.Git("rev-parse HEAD");
  }

  std::unique_ptr<GitSource> OpenVerified() {
    GitSourceOptions options;
    options.url = repo_.bare().string();
    options.state_dir = (scratch_.path() / "state").string();
    options.allowed_signers_file = AllowedSigners().string();
    Result<std::unique_ptr<GitSource>> source = OpenGitSource(options);
    EXPECT_TRUE(source.ok()) << source.status().ToString();
    return std::move(*source);
  }
};

TEST_F(SignedSourceTest, AcceptsTipsSignedByAnAllowedKey) {
  const std::string signed_sha = Push(5, "alice");
  Result<FetchResult> r = OpenVerified()->Fetch();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->new_sha, signed_sha);
}

TEST_F(SignedSourceTest, RefusesUnsignedAndUnknownSignersAndKeepsTheLastVerifiedTip) {
  const std::string good = Push(5, "alice");
  std::unique_ptr<GitSource> git = OpenVerified();
  ASSERT_TRUE(git->Fetch().ok());

  const std::string unsigned_sha = Push(6, "");
  Result<FetchResult> r = git->Fetch();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsPermissionDenied()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("commit " + unsigned_sha.substr(0, 7) +
                                      " on main is not "
                                      "signed"),
            std::string::npos)
      << r.status().message();
  EXPECT_EQ(*git->Resolve("main"), good) << "the mirror must keep the last verified tip";

  Push(7, "mallory");
  Result<FetchResult> m = git->Fetch();
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(m.status().IsPermissionDenied());
  EXPECT_NE(m.status().message().find("signed by a key that is not in"), std::string::npos)
      << m.status().message();
  EXPECT_EQ(*git->Resolve("main"), good);

  const std::string fixed = Push(8, "alice");
  Result<FetchResult> again = git->Fetch();
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->new_sha, fixed);
}

// source.verify holds for every revision the controller can apply: a pinned revision (no branch
// is followed, so Fetch checks no tip) and a repository read in place (nothing is fetched).
TEST_F(SignedSourceTest, PinnedRevisionsAndRepositoriesReadInPlaceAreVerifiedToo) {
  const std::string good = Push(5, "alice");
  const std::string unsigned_sha = Push(6, "");
  Result<std::shared_ptr<const manifest::SchemaValidator>> validator =
      manifest::SchemaValidator::Create(flotilla::providers::BuiltinRules());
  ASSERT_TRUE(validator.ok());
  const manifest::ManifestLoader loader(*validator);
  auto poll = [&](const std::string& url, const std::string& revision) {
    manifest::ReconcilerConfig config;
    config.source.url = url;
    config.source.revision = revision;
    config.source.path = "fleet";
    config.source.allowed_signers_file = AllowedSigners().string();
    config.state_dir = (scratch_.path() / "state").string();
    Result<std::unique_ptr<controller::GitDesiredSource>> source =
        controller::GitDesiredSource::Open(config, loader);
    EXPECT_TRUE(source.ok()) << source.status().ToString();
    return source.ok() ? (*source)->Poll() : Result<std::string>(source.status());
  };
  const std::string remote = repo_.bare().string();
  for (const std::string& url : {remote, "file://" + remote}) {
    Result<std::string> pinned = poll(url, unsigned_sha);
    ASSERT_FALSE(pinned.ok()) << url;
    EXPECT_TRUE(pinned.status().IsPermissionDenied()) << pinned.status().ToString();
    EXPECT_NE(
        pinned.status().message().find("commit " + unsigned_sha.substr(0, 7) + " is not signed"),
        std::string::npos)
        << pinned.status().message();
    Result<std::string> signed_pin = poll(url, good);
    ASSERT_TRUE(signed_pin.ok()) << signed_pin.status().ToString();
    EXPECT_EQ(*signed_pin, good);
  }
  // Read in place, following main, whose tip is unsigned.
  Result<std::string> in_place = poll(remote, "");
  ASSERT_FALSE(in_place.ok());
  EXPECT_TRUE(in_place.status().IsPermissionDenied()) << in_place.status().ToString();
}

}  // namespace
}  // namespace flotilla::source

namespace flotilla::source {
namespace {

// The cache must give the same answer as parsing afresh, whatever the document limit does.
TEST(ParseCacheTest, DocumentLimitIsReportedTheSameWithAWarmCache) {
  auto validator = manifest::SchemaValidator::Create(flotilla::providers::BuiltinRules());
  const manifest::ManifestLoader loader(*validator, {.max_documents = 2});
  const std::string two = "a: 1\n---\nb: 2\n";
  ParseCache cache;
  for (int round = 0; round < 2; ++round) {
    manifest::DocumentBudget budget{.limit = 2};
    manifest::ParsedFile first = cache.Get(loader, "blob-1", "one.yaml", two, budget);
    manifest::ParsedFile second = cache.Get(loader, "blob-2", "two.yaml", two, budget);
    EXPECT_EQ(first.documents, 2u);
    bool refused = false;
    for (const auto& d : second.diagnostics.Sorted()) {
      refused |= d.message.find("too many documents") != std::string::npos;
    }
    EXPECT_TRUE(refused) << "round " << round;
  }
  // Exactly at the limit is not over it: both rounds reuse the first file's parse.
  EXPECT_EQ(cache.parses(), 3u);
}

}  // namespace
}  // namespace flotilla::source
