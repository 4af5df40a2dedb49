# Writes a C++ source that holds the text of each input file, so that the binaries carry the
# schemas in schemas/ (and the example fleet `flotilla dev` seeds) and never look for them at
# run time.
#   cmake -DOUT=<file.cc> -DDIR=<dir> -DFILES="a.json;b.json" [-DNAMESPACE=flotilla::schemas]
#         [-DHEADER=schemas/embedded.h] -P EmbedFiles.cmake
# The header declares `std::string_view Find(std::string_view name)` and
# `std::vector<std::string_view> Names()` in NAMESPACE.
if(NOT NAMESPACE)
  set(NAMESPACE "flotilla::schemas")
endif()
if(NOT HEADER)
  set(HEADER "schemas/embedded.h")
endif()
set(delimiter "flotilla_embed")
set(body "// Generated from ${DIR} by cmake/EmbedFiles.cmake. Do not edit.\n")
string(APPEND body "#include \"${HEADER}\"\n\n#include <array>\n#include <utility>\n\n")
string(APPEND body "namespace ${NAMESPACE} {\nnamespace {\n\n")
list(LENGTH FILES count)
string(APPEND body "constexpr std::array<std::pair<std::string_view, std::string_view>, ${count}> kFiles = {{\n")
foreach(file IN LISTS FILES)
  file(READ "${DIR}/${file}" content)
  string(FIND "${content}" ")${delimiter}\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${file} contains the raw-string delimiter ${delimiter}")
  endif()
  string(APPEND body "    {\"${file}\", R\"${delimiter}(${content})${delimiter}\"},\n")
endforeach()
string(APPEND body "}};\n\n}  // namespace\n\n")
string(APPEND body "std::string_view Find(std::string_view name) {\n")
string(APPEND body "  for (const auto& [file, text] : kFiles) {\n")
string(APPEND body "    if (file == name) {\n      return text;\n    }\n  }\n  return {};\n}\n\n")
string(APPEND body "std::vector<std::string_view> Names() {\n  std::vector<std::string_view> names;\n")
string(APPEND body "  for (const auto& entry : kFiles) {\n    names.push_back(entry.first);\n  }\n  return names;\n}\n\n")
string(APPEND body "}  // namespace ${NAMESPACE}\n")
file(WRITE "${OUT}.tmp" "${body}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
