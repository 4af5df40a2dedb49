# Writes OUT, a C++ file that defines flotilla::cli::BuildCommit(): the Git commit of SOURCE_DIR
# the binaries are built from, with "-dirty" when tracked files differ from it. Run at every
# build (a custom target in reconciler/cli/), it rewrites OUT only when that text changes, so an
# unchanged commit rebuilds nothing. COMMIT, when set (a build from a source tarball with no Git
# history: -DFLOTILLA_COMMIT=...), wins; without either the commit is "unknown".
#
#   cmake -DSOURCE_DIR=<repo> -DOUT=<file.cc> [-DCOMMIT=<text>] -P BuildInfo.cmake
if(NOT COMMIT)
  set(COMMIT unknown)
  find_program(_git git)
  if(_git AND EXISTS "${SOURCE_DIR}/.git")
    execute_process(COMMAND ${_git} -C ${SOURCE_DIR} rev-parse HEAD
                    OUTPUT_VARIABLE _head RESULT_VARIABLE _rc
                    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(_rc EQUAL 0)
      set(COMMIT ${_head})
      execute_process(COMMAND ${_git} -C ${SOURCE_DIR} status --porcelain --untracked-files=no
                      OUTPUT_VARIABLE _changes RESULT_VARIABLE _rc ERROR_QUIET)
      if(NOT _rc EQUAL 0 OR NOT _changes STREQUAL "")
        string(APPEND COMMIT "-dirty")
      endif()
    endif()
  endif()
endif()
if(NOT COMMIT MATCHES "^[A-Za-z0-9._+-]+$")
  message(FATAL_ERROR "BuildInfo.cmake: the commit \"${COMMIT}\" is not a plain word")
endif()
file(WRITE "${OUT}.new" "// Written by cmake/BuildInfo.cmake at build time. Do not edit.
namespace flotilla::cli {
const char* BuildCommit() { return \"${COMMIT}\"; }
}  // namespace flotilla::cli
")
file(COPY_FILE "${OUT}.new" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.new")
