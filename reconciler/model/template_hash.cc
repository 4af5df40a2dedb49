#include "reconciler/model/template_hash.h"

#include "reconciler/model/digest.h"

#include <string_view>

namespace flotilla {
namespace {

// "<field>=<length>:<value>;" for every field, in a fixed order.
void AppendField(std::string& out, std::string_view field, std::string_view value) {
  out.append(field);
  out.push_back('=');
  out.append(std::to_string(value.size()));
  out.push_back(':');
  out.append(value);
  out.push_back(';');
}

}  // namespace

std::string TemplateHash(const VMTemplate& templ) {
  std::string encoded = "flotilla.template.v1;";
  AppendField(encoded, "image", templ.image);
  AppendField(encoded, "os", ToString(templ.os));
  AppendField(encoded, "arch", ToString(templ.arch));
  AppendField(encoded, "cpu", std::to_string(templ.cpu));
  AppendField(encoded, "memory", std::to_string(templ.memory.bytes()));
  AppendField(encoded, "disk", templ.disk ? std::to_string(templ.disk->bytes()) : "");
  AppendField(encoded, "startupScript", templ.startup_script);
  return "v1-" + Sha256Hex(encoded);
}

std::string AdoptedTemplateHash(const VMTemplate& templ, const VmInfo& vm) {
  const bool same =
      vm.os == templ.os && vm.cpu == templ.cpu && vm.memory_bytes == templ.memory.bytes();
  return same ? TemplateHash(templ) : std::string(kUnknownTemplateHash);
}

}  // namespace flotilla
