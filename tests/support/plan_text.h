#pragma once

// A plan written out in full, one line per action and finding, for tests and benchmarks that
// check that a plan did not change (tests/unit/planner_golden_test.cc, bench/planner).

#include <sstream>
#include <string>

#include "reconciler/model/plan.h"
#include "reconciler/model/template_hash.h"

namespace flotilla::testing {

// Every field of `plan` (a template as its TemplateHash and its state).
inline std::string PlanText(const Plan& plan) {
  std::ostringstream out;
  for (const Action& a : plan.actions) {
    out << "action " << a.id << " " << ToString(a.kind) << " vm=" << a.vm << " set=" << a.vmset
        << " pool=" << a.pool << " host=" << a.host << " from=" << a.from_host
        << " reason=" << a.reason << " after=";
    for (int id : a.depends_on) {
      out << id << ",";
    }
    if (a.templ) {
      const VMTemplate& t = *a.templ;
      out << " templ=" << TemplateHash(t) << "/" << ToString(t.state);
    }
    out << " hash=" << a.template_hash << " create_first=" << a.create_first
        << " assumed=" << a.assumed_placement << " id=" << a.vm_id << "\n";
  }
  for (const Finding& f : plan.findings) {
    out << "finding " << ToString(f.kind) << " vm=" << f.vm << " set=" << f.vmset
        << " pool=" << f.pool << " host=" << f.host << " message=" << f.message << "\n";
  }
  return out.str();
}

}  // namespace flotilla::testing
