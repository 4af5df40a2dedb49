# flotilla_embed_files(<out-var> DIR <dir> FILES <paths below dir>... NAMESPACE <ns>
#                      HEADER <header path> COMMENT <text>)
# Generates a C++ source holding the text of each file (cmake/EmbedFiles.cmake), rebuilt when
# any of them changes, and sets <out-var> to its path for a target's sources.
function(flotilla_embed_files out_var)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "DIR;NAMESPACE;HEADER;COMMENT" "FILES")
  string(MAKE_C_IDENTIFIER "${ARG_NAMESPACE}" _name)
  set(_out ${CMAKE_CURRENT_BINARY_DIR}/embedded_${_name}.cc)
  list(TRANSFORM ARG_FILES PREPEND ${ARG_DIR}/ OUTPUT_VARIABLE _paths)
  add_custom_command(
    OUTPUT ${_out}
    COMMAND ${CMAKE_COMMAND} -DOUT=${_out} -DDIR=${ARG_DIR} "-DFILES=${ARG_FILES}"
            -DNAMESPACE=${ARG_NAMESPACE} -DHEADER=${ARG_HEADER}
            -P ${PROJECT_SOURCE_DIR}/cmake/EmbedFiles.cmake
    DEPENDS ${_paths} ${PROJECT_SOURCE_DIR}/cmake/EmbedFiles.cmake
    COMMENT "${ARG_COMMENT}"
    VERBATIM)
  set(${out_var} ${_out} PARENT_SCOPE)
endfunction()
