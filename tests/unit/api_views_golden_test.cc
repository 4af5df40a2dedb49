// The JSON of the large snapshot views (/api/v1/vms with its filters, /api/v1/hosts,
// /api/v1/orchestrator/machines) on many random snapshots, pinned as a SHA-256 per seed and view
// in tests/golden/api_views.txt: a change meant to render them faster must not change a byte.
// The hashes were recorded from nlohmann's dump of the documents (JsonReply) before the VM views
// were written straight to text (json_text.h); the bodies hashed are the answers' own.
// The snapshots have VMs and hosts whose names, states, OS words and addresses hold quotes,
// backslashes, control characters, non-ASCII text and bytes that are not UTF-8; managed,
// unmanaged, outdated and pending VMs; offline and cordoned hosts; addresses with credentials.
//
// After a deliberate change of output, rewrite the file and review its diff:
//   FLOTILLA_UPDATE_GOLDEN=1 build/bin/api_server_test --gtest_filter='ApiViewsGolden*'

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "reconciler/api/routes.h"
#include "reconciler/api/views.h"
#include "reconciler/model/digest.h"
#include "reconciler/model/normalize.h"
#include "reconciler/model/template_hash.h"
#include "tests/support/fleet_values.h"
#include "tests/support/random_snapshot.h"
#include "tests/support/text_files.h"

// A named namespace: this file shares a unity build with the other API tests.
namespace flotilla::api::views_golden {
namespace {

constexpr int kSeeds = 60;

// `all`: the unfiltered VM list and the machines of this seed, appended.
std::string Record(int seed, std::string* all) {
  Snapshot snapshot = testing::RandomSnapshot(static_cast<uint64_t>(seed)).Make();
  // The current template hash for some ledger entries, so that "outdated" is false for them.
  for (LedgerEntry& entry : snapshot.ledger.entries) {
    if (entry.template_hash == "old-hash" && (entry.vm.size() % 2) == 0) {
      for (const VMSet& set : snapshot.desired.sets) {
        if (set.meta.name == entry.vmset) {
          entry.template_hash = TemplateHash(set.templ);
        }
      }
    }
  }
  const std::string pool = "p0";
  const std::string host = snapshot.desired.pools[0].hosts[0].name;
  const std::string vmset =
      snapshot.desired.sets.empty() ? std::string("none") : snapshot.desired.sets[0].meta.name;
  const std::vector<std::pair<std::string, VmFilter>> filters = {
      {"vms", {}},
      {"vms?pool", {.pool = pool}},
      {"vms?host", {.host = host}},
      {"vms?vmset", {.vmset = vmset}},
      {"vms?state=running", {.state = "running"}},
      {"vms?managed=true", {.managed = true}},
      {"vms?managed=false&state=stopped", {.state = "stopped", .managed = false}}};
  std::string line = "seed " + std::to_string(seed) + ":";
  for (const auto& [name, filter] : filters) {
    line += " " + name + " " + Sha256Hex(VmsText(snapshot, filter)).substr(0, 16);
  }
  *all += VmsText(snapshot, {});
  *all += HostsText(snapshot);
  *all += OrchestratorMachinesText(snapshot);
  line += " hosts " + Sha256Hex(HostsText(snapshot)).substr(0, 16);
  line += " machines " + Sha256Hex(OrchestratorMachinesText(snapshot)).substr(0, 16);
  return line + "\n";
}

TEST(ApiViewsGoldenTest, RandomSnapshotsRenderAsRecorded) {
  const std::string path = std::string(FLOTILLA_SOURCE_DIR) + "/tests/golden/api_views.txt";
  std::string actual;
  std::string all;
  for (int seed = 1; seed <= kSeeds; ++seed) {
    actual += Record(seed, &all);
  }
  // The seeds reach the text a writer must escape or repair.
  for (const char* rendered : {"quote\\\"d",           "back\\\\slash",
                               "tab\\tand\\nline",     "bell\\u0007\\u001f",
                               "caf\xc3\xa9",          "bad\xef\xbf\xbd",
                               "cut\xef\xbf\xbd",      "del\x7f",
                               "\"outdated\": false",  "\"outdated\": true",
                               "\"outdated\": null",   "\"host\": \"https://p",
                               "\"error_rate\": 0.",   "\"last_seen\": null",
                               "\"macos_vms\": {",     "\"macos_vms\": null",
                               "reports no free disk", "cannot create VMs from oci",
                               "\"tags\": [\n",        "\"arch\": \"\""}) {
    EXPECT_NE(all.find(rendered), std::string::npos) << rendered;
  }
  EXPECT_EQ(all.find("s3cret"), std::string::npos) << "a host address's password in a view";
  if (testing::UpdateRequested("FLOTILLA_UPDATE_GOLDEN")) {
    if (testing::Slurp(path) != actual) {
      testing::RewriteAndFail(path, actual);
    }
    return;
  }
  const std::string expected = testing::Slurp(path);
  ASSERT_FALSE(expected.empty()) << "missing golden file " << path
                                 << " (run with FLOTILLA_UPDATE_GOLDEN=1 to create it)";
  EXPECT_EQ(actual, expected);
}

}  // namespace
}  // namespace flotilla::api::views_golden
