// The Parallels provider's parsing and classification, without a network.

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include "providers/parallels/client.h"
#include "providers/parallels/config.h"
#include "providers/parallels/wire.h"
#include "reconciler/model/text.h"

namespace flotilla::providers::parallels {
namespace {

using nlohmann::json;

TEST(ParallelsWireTest, SizesCarryTheirUnits) {
  EXPECT_EQ(ParseSize("8192Mb"), uint64_t{8192} << 20);
  EXPECT_EQ(ParseSize("64Gb"), uint64_t{64} << 30);
  EXPECT_EQ(ParseSize("512 MB"), uint64_t{512} << 20);
  EXPECT_EQ(ParseSize("1024"), uint64_t{1024} << 20);
  EXPECT_EQ(ParseSize("1Tb"), uint64_t{1} << 40);
  EXPECT_EQ(ParseSize("100b"), 100u);
  EXPECT_FALSE(ParseSize("").has_value());
  EXPECT_FALSE(ParseSize("lots").has_value());
  EXPECT_FALSE(ParseSize("12Xb").has_value());
  EXPECT_FALSE(ParseSize("99999999999999999999Tb").has_value());
}

TEST(ParallelsWireTest, VmObjectsIgnoreUnknownFieldsAndNameMissingOnes) {
  const json vm = json::parse(R"({"ID":"a1b2","Name":"ios-0","State":"running","OS":"macosx",
    "Type":"APPLE_VZ_VM","internal_ip_address":"10.211.55.4","Some new field":{"x":1},
    "Hardware":{"cpu":{"cpus":4},"memory":{"size":"8192Mb"},"hdd0":{"size":"65536Mb"}}})");
  Result<VmInfo> info = ParseVm(vm);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->id, "a1b2");
  EXPECT_EQ(info->state, VmState::kRunning);
  EXPECT_EQ(info->os, GuestOs::kMacos);
  EXPECT_EQ(info->cpu, 4u);
  EXPECT_EQ(info->memory_bytes, uint64_t{8} << 30);
  EXPECT_EQ(info->disk_bytes, uint64_t{64} << 30);
  EXPECT_EQ(info->ip, "10.211.55.4");

  EXPECT_EQ(ParseVm(json::parse(R"({"Name":"x","State":"running"})")).status().message(),
            "a VM entry has no \"ID\" (VM x)");
  EXPECT_EQ(ParseVm(json::parse(R"({"ID":"1","State":"running"})")).status().message(),
            "VM 1 has no \"Name\"");
  // A VM the host cannot describe still exists.
  Result<VmInfo> stateless = ParseVm(json::parse(R"({"ID":"1","Name":"x"})"));
  ASSERT_TRUE(stateless.ok());
  EXPECT_EQ(stateless->state, VmState::kUnknown);
  EXPECT_FALSE(ParseVm(json::parse(R"([1,2])")).ok());
  // Wrong types are tolerated where the field is optional.
  Result<VmInfo> odd = ParseVm(json::parse(
      R"({"ID":"1","Name":"x","State":"stopped","OS":"ubuntu","Hardware":{"cpu":{"cpus":"2"},"memory":7}})"));
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ(odd->cpu, 2u);
  EXPECT_EQ(odd->os, GuestOs::kLinux);
  EXPECT_EQ(odd->memory_bytes, 0u);

  Result<std::vector<VmInfo>> list = ParseVmList(json::parse(
      R"([{"ID":"2","Name":"b","State":"stopped"},{"ID":"1","Name":"a","State":"stopped"}])"));
  ASSERT_TRUE(list.ok());
  EXPECT_EQ((*list)[0].name, "a");
  Result<std::vector<VmInfo>> broken =
      ParseVmList(json::parse(R"([{"ID":"2","Name":"b","State":"stopped"},{"ID":"1"}])"));
  EXPECT_EQ(broken.status().message(), "VM list entry 1: VM 1 has no \"Name\"");
}

// Disk comes from the Parallels home's statfs, never from disk_count: the service fills that
// from the Used column of `df -h /`, the sealed system volume (audit #1). mac_vms_running is
// ignored (it counts any VM with "mac" in its name).
TEST(ParallelsWireTest, HardwareReportDiskIsTheParallelsHomes) {
  const json usage = json::parse(R"({"cpu_type":"arm64","devops_version":"1.0.5",
    "os_name":"macOS","os_version":"15.5","parallels_desktop_version":"26.0.0",
    "total":{"logical_cpu_count":12,"memory_size":32768,"disk_count":461824},
    "total_available":{"logical_cpu_count":7,"memory_size":22528,"disk_count":10240,
                       "prl_home_free_size":308224,"prl_home_total_size":471040},
    "total_in_use":{"logical_cpu_count":4,"memory_size":8192,"disk_count":65536,
                    "mac_vms_running":["a","b"]},
    "system_reserved":{"logical_cpu_count":1,"memory_size":2048,"disk_count":20000}})");
  Result<HostFacts> facts = ParseHardware(usage);
  ASSERT_TRUE(facts.ok()) << facts.status().ToString();
  EXPECT_EQ(facts->arch, Arch::kArm64);
  EXPECT_EQ(facts->agent_version, "1.0.5");
  EXPECT_EQ(facts->total.cpu, 12u);
  EXPECT_EQ(facts->total.memory_bytes, uint64_t{32} << 30);
  EXPECT_TRUE(facts->disk_known);
  EXPECT_EQ(facts->total.disk_bytes, uint64_t{471040} << 20);
  EXPECT_EQ(facts->available.disk_bytes, uint64_t{308224} << 20);
  EXPECT_EQ(facts->available.cpu, 7u);
  EXPECT_EQ(facts->system_reserved.memory_bytes, uint64_t{2} << 30);
  EXPECT_EQ(facts->running_macos_vms, 0u);
  EXPECT_FALSE(ParseHardware(json::parse(R"({"total":{}})")).ok());

  // Both prl_home fields are omitempty: a total alone is a full disk; neither is unknown
  // (services before 1.0.0).
  Result<HostFacts> full = ParseHardware(json::parse(R"({"total":{},
    "total_available":{"disk_count":10240,"prl_home_total_size":471040}})"));
  ASSERT_TRUE(full.ok());
  EXPECT_TRUE(full->disk_known);
  EXPECT_EQ(full->available.disk_bytes, 0u);
  Result<HostFacts> old = ParseHardware(
      json::parse(R"({"total":{"disk_count":461824},"total_available":{"disk_count":10240}})"));
  ASSERT_TRUE(old.ok());
  EXPECT_FALSE(old->disk_known);
}

// Cache entries are keyed by normalised id and version and by architecture.
TEST(ParallelsWireTest, CachedImagesAreNormalisedAndForTheHostsArchitecture) {
  const json cache = json::parse(R"({"manifests":[
    {"catalog_id":"macos_base","version":"v1","architecture":"arm64"},
    {"catalog_id":"ubuntu","version":"24.04","architecture":"amd64"},
    {"catalog_id":"B","version":"2"},{"x":1}]})");
  EXPECT_EQ(ParseCachedImages(cache, Arch::kArm64),
            (std::vector<std::string>{"catalog://b/2", "catalog://macos_base/v1"}));
  EXPECT_EQ(ParseCachedImages(cache, Arch::kX86_64),
            (std::vector<std::string>{"catalog://b/2", "catalog://ubuntu/24.04"}));
  EXPECT_EQ(ImageCacheKey("catalog://MACOS_BASE/v1"), "catalog://macos_base/v1");
  EXPECT_EQ(ImageCacheKey("catalog://Xcode 16:beta/1.0 (rc)"), "catalog://xcode_16_beta/1.0__rc_");
  EXPECT_EQ(ImageCacheKey("vm://Golden"), "vm://Golden");
}

// The running step of a job, in words, for the progress line.
TEST(ParallelsWireTest, JobStepsDescribeTheRunningStep) {
  Result<Job> job = ParseJob(json::parse(R"({"id":"j","state":"running","progress":40,"steps":[
    {"name":"Validating request","state":"completed","current_percentage":100},
    {"name":"Downloading pack file","state":"running","has_percentage":true,
     "current_percentage":45.2,"value":9216,"total":20480,"unit":"MB","eta":"1m20s"},
    {"name":"Registering machine","state":"pending"}]})"));
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->step, "Downloading pack file 45% (9.0 GiB of 20.0 GiB, 1m20s left)");
  Result<Job> quiet = ParseJob(json::parse(R"({"id":"j","state":"running","steps":[
    {"name":"Registering machine","state":"running"}]})"));
  ASSERT_TRUE(quiet.ok());
  EXPECT_EQ(quiet->step, "Registering machine");
}

// Found with fuzz/parallels_job_fuzz.cc (fuzz/corpus/parallels_job/huge-percentage.json): a
// step's current_percentage past int's range was converted to int, which is undefined
// behaviour (UBSan: "1e+300 is outside the range of representable values of type 'int'").
TEST(ParallelsWireTest, StepPercentagesOutOfRangeAreClamped) {
  Result<Job> job = ParseJob(json::parse(R"({"id":"j","state":"running","steps":[
    {"name":"Pulling","state":"running","current_percentage":1e300,"value":1,"total":2}]})"));
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->step, "Pulling 100% (1 of 2)");
  Result<Job> negative = ParseJob(json::parse(R"({"id":"j","state":"running","steps":[
    {"name":"Pulling","state":"running","current_percentage":-1e300,"value":1,"total":2}]})"));
  ASSERT_TRUE(negative.ok());
  EXPECT_EQ(negative->step, "Pulling 0% (1 of 2)");
}

TEST(ParallelsWireTest, CacheJobsAndErrorBodies) {
  const Redactor none;
  Result<Job> job = ParseJob(
      json::parse(R"({"id":"j1","state":"completed","progress":100,"result_record_id":"vm-1"})"));
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->result_record_id, "vm-1");
  EXPECT_FALSE(ParseJob(json::parse(R"({"state":"running"})")).ok());

  EXPECT_EQ(ErrorMessage(R"({"message":"error: VM is not stopped","code":400})", none),
            "error: VM is not stopped");
  EXPECT_EQ(ErrorMessage(
                R"({"error":"unauthorized_client","error_description":"Token is expired"})", none),
            "Token is expired");
  EXPECT_EQ(
      ErrorMessage(
          "{\"message\":\"error 400: Error pulling manifest: \\n\\nmachine x already exists\"}",
          none),
      "error 400: Error pulling manifest: machine x already exists");
  EXPECT_EQ(ErrorMessage("null", none), "");
  EXPECT_EQ(ErrorMessage("plain text", none), "plain text");
  EXPECT_EQ(ErrorMessage(std::string(1000, 'x'), none).size(), 300u);
}

TEST(ParallelsWireTest, SecretsAreRedactedBeforeMessagesAreCut) {
  Redactor redactor;
  const std::string secret = "p4ss w0rd\nwith-newline";
  redactor.Add(secret);
  const std::string body =
      json({{"message", std::string(290, 'x') + " " + secret + " tail"}}).dump();
  const std::string message = ErrorMessage(body, redactor);
  EXPECT_EQ(message.find("p4ss"), std::string::npos) << message;
  Redactor more;
  more.Add("env-value-<&>");
  const std::string escaped = json({{"message", "failed: env-value-<&>"}}).dump();
  EXPECT_EQ(ErrorMessage(escaped, redactor, &more), "failed: [REDACTED]");
}

TEST(ParallelsWireTest, NumbersOutOfRangeAreRejectedNotWrapped) {
  EXPECT_EQ(JsonUnsigned(json(12)), 12u);
  EXPECT_EQ(JsonUnsigned(json("12")), 12u);
  EXPECT_EQ(JsonUnsigned(json(12.7)), 12u);
  EXPECT_FALSE(JsonUnsigned(json(-1)).has_value());
  EXPECT_FALSE(JsonUnsigned(json(1e30)).has_value());
  EXPECT_FALSE(JsonUnsigned(json("12x")).has_value());
  EXPECT_FALSE(JsonUnsigned(json("")).has_value());
  Result<HostFacts> huge = ParseHardware(json::parse(
      R"({"total":{"memory_size":1e300},"total_available":{"prl_home_total_size":18446744073709551615}})"));
  ASSERT_TRUE(huge.ok());
  EXPECT_EQ(huge->total.memory_bytes, 0u);
  EXPECT_EQ(huge->total.disk_bytes, UINT64_MAX);
}

TEST(ParallelsWireTest, ExecCommandsCarryNoQuotesAndExportTheEnvironment) {
  Result<std::string> command =
      ExecCommand("echo 'it''s' \"$TOKEN\"", {{"TOKEN", "a'b c"}, {"MODE", "ci"}});
  ASSERT_TRUE(command.ok());
  EXPECT_EQ(command->find('\''), std::string::npos) << *command;
  ASSERT_TRUE(command->starts_with("echo "));
  const std::string encoded = command->substr(5, command->find(' ', 5) - 5);
  EXPECT_EQ(DecodeBase64(encoded),
            "export MODE='ci'\nexport TOKEN='a'\\''b c'\necho 'it''s' \"$TOKEN\"");
  EXPECT_TRUE(command->ends_with(" | base64 --decode | /bin/bash"));
  EXPECT_FALSE(ExecCommand("true", {{"BAD-NAME", "x"}}).ok());
  EXPECT_FALSE(ExecCommand("true", {{"1X", "x"}}).ok());
  EXPECT_EQ(EncodeBase64("FLOTILLA:secret"), "RkxPVElMTEE6c2VjcmV0");
  EXPECT_EQ(EncodeBase64("ab"), "YWI=");
}

TEST(ParallelsWireTest, VersionsImagesAndConnectionSecrets) {
  EXPECT_EQ(VersionAtLeast("1.0.5", "1.0.5"), true);
  EXPECT_EQ(VersionAtLeast("1.0.4", "1.0.5"), false);
  EXPECT_EQ(VersionAtLeast("v1.1", "1.0.5"), true);
  EXPECT_EQ(VersionAtLeast("1.0.10-beta", "1.0.5"), true);
  EXPECT_EQ(VersionAtLeast("dev", "1.0.5"), std::nullopt);

  Result<ImageRef> catalog = ParseImage("catalog://MACOS_BASE/v1");
  ASSERT_TRUE(catalog.ok());
  EXPECT_EQ(catalog->catalog_id, "MACOS_BASE");
  EXPECT_EQ(catalog->version, "v1");
  EXPECT_EQ(ParseImage("vm://golden")->vm_name, "golden");
  EXPECT_FALSE(ParseImage("catalog://ONLY").ok());
  EXPECT_FALSE(ParseImage("catalog://A/B/C").ok());
  EXPECT_FALSE(ParseImage("docker://x").ok());

  EXPECT_EQ(CatalogConnectionSecrets("host=user:pa55word@catalog.example.com:443"),
            (std::vector<std::string>{"user:pa55word", "pa55word"}));
  EXPECT_EQ(CatalogConnectionSecrets("host=QUJDOmRlZg==@https://catalog:443"),
            (std::vector<std::string>{"QUJDOmRlZg==", "ABC:def", "def"}));
  EXPECT_EQ(CatalogConnectionSecrets("provider=aws-s3;bucket=b;access_key=AK;secret_key=SK"),
            (std::vector<std::string>{"AK", "SK"}));
  EXPECT_EQ(DecodeBase64("RkxPVElMTEE6c2VjcmV0"), "FLOTILLA:secret");
  EXPECT_EQ(EncodePathSegment("ios-1.flotilla-ab"), "ios-1.flotilla-ab");
  EXPECT_EQ(EncodePathSegment("a b/c"), "a%20b%2Fc");
}

TEST(ParallelsClientTest, EndpointsDefaultToTheApiPrefix) {
  Result<Endpoint> plain = ParseEndpoint("https://mini-01.lan:3080");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->origin, "https://mini-01.lan:3080");
  EXPECT_EQ(plain->prefix, "/api");
  EXPECT_TRUE(plain->https);
  Result<Endpoint> prefixed = ParseEndpoint("http://127.0.0.1:9/h/sim-001/api/");
  ASSERT_TRUE(prefixed.ok());
  EXPECT_EQ(prefixed->origin, "http://127.0.0.1:9");
  EXPECT_EQ(prefixed->prefix, "/h/sim-001/api");
  EXPECT_FALSE(ParseEndpoint("ftp://x").ok());
  EXPECT_FALSE(ParseEndpoint("http://user:pw@x").ok());
}

TEST(ParallelsClientTest, ResponsesAreClassifiedByTheServicesRules) {
  ParallelsConfig config;
  SystemClock clock;
  auto redactor = std::make_shared<Redactor>();
  redactor->Add("TOPSECRET");
  HostClient client({.pool = "p", .name = "mini-01", .address = "http://x"},
                    *ParseEndpoint("http://x"), config, redactor, spdlog::default_logger(), clock);
  auto classify = [&](int status, std::string body) {
    return client.ErrorFor({.status = status, .body = std::move(body)}, "start VM ios-0");
  };
  EXPECT_EQ(
      classify(401, R"({"error":"unauthorized_client","error_description":"Invalid API key"})")
          .code(),
      Status::Code::kPermissionDenied);
  EXPECT_EQ(classify(400, R"({"message":"error: VM is not stopped","code":400})").code(),
            Status::Code::kFailedPrecondition);
  EXPECT_EQ(
      classify(400, R"({"message":"Invalid request body: no template was specified","code":400})")
          .code(),
      Status::Code::kInvalidArgument);
  EXPECT_EQ(
      classify(404, R"({"message":"error 404: Virtual machine not found","code":404})").code(),
      Status::Code::kNotFound);
  Status prlctl =
      classify(404, R"({"message":"Failed to start the VM: limit reached","code":404})");
  EXPECT_EQ(prlctl.code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(prlctl.message(),
            "host mini-01: cannot start VM ios-0: the host's command failed: Failed to start the "
            "VM: limit reached");
  // The router's 404 names the path, which may end in a VM name; it is not a missing VM.
  EXPECT_EQ(
      classify(404, R"({"message":"resource /api/v1/machines/build-vm not found","code":404})")
          .code(),
      Status::Code::kFailedPrecondition);
  for (int status : {500, 502, 503, 429}) {
    EXPECT_TRUE(classify(status, "").IsRetryable()) << status;
  }
  EXPECT_EQ(classify(500, R"({"message":"leaked TOPSECRET here"})").message().find("TOPSECRET"),
            std::string::npos);
}

TEST(ParallelsConfigTest, CredentialsComeFromSecretsAndMistakesAreNamed) {
  HostPool pool;
  pool.meta.name = "macs";
  pool.credentials_ref = "builders";
  MapSecretSource secrets;
  SystemClock clock;
  auto logger = spdlog::default_logger();
  const ProviderContext context{.pool = pool, .secrets = secrets, .logger = logger, .clock = clock};

  Result<ParallelsConfig> none = ParseParallelsConfig(context, {});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("builders/apiKey"), std::string::npos);

  secrets.Set("builders", "username", "admin");
  EXPECT_NE(ParseParallelsConfig(context, {}).status().message().find("no password"),
            std::string::npos);
  secrets.Set("builders", "password", "pw-123456");
  ASSERT_TRUE(ParseParallelsConfig(context, {}).ok());

  secrets.Set("builders", "apiKey", "QUJDOmRlZg==");
  Result<ParallelsConfig> both = ParseParallelsConfig(context, {});
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->api_key, "QUJDOmRlZg==");
  EXPECT_TRUE(both->username.empty()) << "never both credentials";
  EXPECT_EQ(SecretValues(*both), (std::vector<std::string>{"QUJDOmRlZg==", "ABC:def", "def"}));

  pool.settings["tls"]["caFile"] = "/nonexistent/ca.pem";
  EXPECT_NE(ParseParallelsConfig(context, {}).status().message().find("tls.caFile"),
            std::string::npos);
  pool.settings.erase("tls");

  // A catalog manager travels as it is; no credentials at all is refused (the service has no
  // unauthenticated mode).
  pool.settings["catalog"]["managerId"] = "acme";
  Result<ParallelsConfig> managed = ParseParallelsConfig(context, {});
  ASSERT_TRUE(managed.ok());
  EXPECT_EQ(managed->catalog_manager_id, "acme");
  pool.credentials_ref.clear();
  EXPECT_NE(ParseParallelsConfig(context, {}).status().message().find("no credentialsRef"),
            std::string::npos);
}

}  // namespace
}  // namespace flotilla::providers::parallels

namespace flotilla::providers::parallels {
namespace {

TEST(ParallelsRouteTest, IdsAndNamesBecomePlaceholders) {
  EXPECT_EQ(RouteOf("/v1/machines"), "/v1/machines");
  EXPECT_EQ(RouteOf("/v1/machines/3f2a-11/set"), "/v1/machines/{id}/set");
  EXPECT_EQ(RouteOf("/v1/machines/ios-runners-0/start?force=true"), "/v1/machines/{id}/start");
  EXPECT_EQ(RouteOf("/v1/jobs/77"), "/v1/jobs/{id}");
  EXPECT_EQ(RouteOf("/v1/config/hardware"), "/v1/config/hardware");
  EXPECT_EQ(RouteOf(""), "/");
}

}  // namespace
}  // namespace flotilla::providers::parallels
