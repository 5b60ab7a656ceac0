# weft_version.cmake: weft_version_define(<target>) gives a target the compile definitions
# WEFT_VERSION_TEXT (the project's version) and WEFT_GIT_COMMIT (the commit it was built from),
# which `weft --version` and `weftd --version` print. Both are read when CMake configures:
# `git rev-parse` in the source tree, or "unknown" when it is not a git checkout (a release
# tarball) or git is missing. The checkout's HEAD log is a configure dependency, so a commit or
# a checkout re-runs CMake on the next build and the commit stays true.
include_guard(GLOBAL)

function(weft_version_define target)
  # Found here, in the caller's scope: the guard above skips this file in every other one.
  find_package(Git QUIET)
  # Digits of the commit hash printed: unique in any repository of this size, short to read.
  set(WEFT_GIT_COMMIT_DIGITS 12)
  set(commit "unknown")
  if(GIT_FOUND)
    execute_process(
      COMMAND ${GIT_EXECUTABLE} rev-parse --short=${WEFT_GIT_COMMIT_DIGITS} HEAD
      WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
      OUTPUT_VARIABLE out RESULT_VARIABLE rc ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(rc EQUAL 0 AND NOT out STREQUAL "")
      set(commit ${out})
      execute_process(
        COMMAND ${GIT_EXECUTABLE} rev-parse --git-path logs/HEAD
        WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
        OUTPUT_VARIABLE head_log RESULT_VARIABLE rc ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
      if(rc EQUAL 0 AND NOT IS_ABSOLUTE "${head_log}")
        set(head_log "${CMAKE_SOURCE_DIR}/${head_log}")
      endif()
      if(rc EQUAL 0 AND EXISTS "${head_log}")
        set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${head_log}")
      endif()
    endif()
  endif()
  # The top-level project() may name a version; without one the build says so.
  set(version "${PROJECT_VERSION}")
  if(version STREQUAL "")
    set(version "0.0.0-unversioned")
  endif()
  target_compile_definitions(${target} PRIVATE WEFT_VERSION_TEXT="${version}"
                                               WEFT_GIT_COMMIT="${commit}")
endfunction()
