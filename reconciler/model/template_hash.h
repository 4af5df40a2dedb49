#pragma once

#include <string>

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

}  // namespace flotilla
