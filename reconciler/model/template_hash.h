#pragma once

#include <string>
#include <string_view>

#include "reconciler/model/observed.h"
#include "reconciler/model/types.h"

namespace flotilla {

// A stable identity of everything in a template that needs a new VM when it changes: image,
// os, arch, cpu, memory, disk and startupScript (not `state`: starting or stopping a VM does
// not replace it).
//
// The result is "v1-" followed by 64 lowercase hex digits of SHA-256 over a length-prefixed,
// fixed-order encoding, so it is the same on every run, platform and YAML field order, and
// two different templates cannot collide by shifting text between fields. Quantities are
// hashed as bytes, so "8Gi" and "8192Mi" are the same template.
//
// The encoding is frozen: changing it would mark every VM outdated. A new encoding gets a new
// prefix and the planner must treat the old one as equal where the fields agree.
std::string TemplateHash(const VMTemplate& templ);

// The template hash of an adopted VM that was not built from a known template (its OS, cpu or
// memory differ from its set's): never equal to a TemplateHash, so the VM counts as outdated
// and its set's update strategy replaces it.
inline constexpr std::string_view kUnknownTemplateHash = "unknown";

// What the ledger records for `vm` taken over into `set`: the set's TemplateHash when the VM's
// observed OS, cpu and memory are the template's (its image cannot be seen, and is assumed),
// kUnknownTemplateHash otherwise.
std::string AdoptedTemplateHash(const VMTemplate& templ, const VmInfo& vm);

}  // namespace flotilla
