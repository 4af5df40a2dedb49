#pragma once

// What a rendered object of the Helm chart must satisfy beyond Kubernetes' OpenAPI schemas (which
// tests/chart/validate.mjs checks): Kubernetes' rules for names and labels
// (k8s.io/apimachinery/pkg/util/validation), selectors that select their own pods, ports and
// probes that exist, every Secret key flotilla.yaml names mounted where it says, and a
// flotilla.yaml flotilla itself loads. Each Check* function reports through GoogleTest
// assertions; tests/e2e/chart_helm_test.cc renders the chart and calls them.

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace flotilla::chart {

bool IsDnsLabel(const std::string& s);
bool IsQualifiedName(const std::string& key);
// The problems of `labels` (a map of label keys to values), one per line.
std::string LabelProblems(const nlohmann::json& labels, const std::string& where);
// Whether `selector` (matchLabels, or a Service's selector) selects an object with `labels`.
bool Selects(const nlohmann::json& selector, const nlohmann::json& labels);
// Every document of `text` (helm's output), parsed as flotilla parses YAML; nulls (templates that
// rendered nothing) left out. Problems go to `errors`.
std::vector<nlohmann::json> ParseObjects(const std::string& text, std::string& errors);
std::vector<nlohmann::json> OfKind(const std::vector<nlohmann::json>& objects,
                                   const std::string& kind);

// Where a file flotilla.yaml names comes from in the pod: the volume mounted at or above it and
// the key of that volume's Secret or ConfigMap the file is.
struct FileSource {
  std::string volume;  // "" when no mount holds the file
  std::string kind;    // secret, configMap, persistentVolumeClaim, emptyDir, ...
  std::string object;  // the Secret's or ConfigMap's name
  std::string key;     // the key whose value the file holds; "" for a whole folder
};

FileSource SourceOf(const std::filesystem::path& file, const nlohmann::json& pod,
                    const nlohmann::json& claims);

void CheckNamesAndLabels(const std::vector<nlohmann::json>& objects);
void CheckSelectors(const std::vector<nlohmann::json>& objects);
void CheckIngress(const std::vector<nlohmann::json>& objects);
void CheckServiceMonitor(const std::vector<nlohmann::json>& objects, const nlohmann::json& values);
// `scratch`: a folder for the rendered flotilla.yaml and the files it names.
void CheckMountsAndConfig(const std::vector<nlohmann::json>& objects, const nlohmann::json& values,
                          const std::filesystem::path& scratch);

}  // namespace flotilla::chart
