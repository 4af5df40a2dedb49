#pragma once

#include <set>
#include <string>

#include "reconciler/manifest/diagnostics.h"
#include "reconciler/manifest/yaml_reader.h"
#include "reconciler/model/types.h"

namespace flotilla::manifest {

// Manifest documents to model values. REQUIRES: the document passed its kind's schema, so
// every field has the right type and shape; what the schema cannot say (a quantity too large
// for 64 bits) is reported to `diagnostics`.
HostPool DecodeHostPool(const YamlDocument& doc, Diagnostics& diagnostics);
VMSet DecodeVMSet(const YamlDocument& doc, Diagnostics& diagnostics);

// Reports every inline secret in a document: a key such as password, token, apiKey or secret
// holding a literal value, or a URL with credentials in it. Returns the JSON pointers of those
// values so that no later message quotes them.
std::set<std::string> CheckInlineSecrets(const YamlDocument& doc, Diagnostics& diagnostics);

}  // namespace flotilla::manifest
