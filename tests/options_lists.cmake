# ctest docs.options_listed_once (cmake -P): frost's own options are declared
# once, with FROST_OPTIONS inside the struct (issue 31), so that no name can be
# declared and left out of describe(), set_option() and frost-train's --set.
# This check fails on a two-list declaration (FROST_REFLECT) in a header of
# include/frost, and checks that every options struct declared with
# FROST_OPTIONS has its table in docs/reference.md (the composition's own
# Options, a template, is the one exception: its parts have theirs).
#
#   cmake -DROOT=<source dir> -P tests/options_lists.cmake
cmake_minimum_required(VERSION 3.16)
if(NOT ROOT)
  message(FATAL_ERROR "options_lists.cmake: give -DROOT=<frost's source directory>")
endif()

file(GLOB_RECURSE headers "${ROOT}/include/frost/*.hpp")
file(READ "${ROOT}/docs/reference.md" reference)
set(problems "")
set(count 0)

foreach(h IN LISTS headers)
  file(READ "${h}" text)
  file(RELATIVE_PATH rel "${ROOT}" "${h}")
  if(text MATCHES "\nFROST_REFLECT\\(([^,;]*)")
    list(APPEND problems "${rel}: FROST_REFLECT(${CMAKE_MATCH_1}, ...) lists the options a second time; declare them once with FROST_OPTIONS((type, name, default), ...) inside the struct")
  endif()
  # "struct Name {" followed (comments aside) by FROST_OPTIONS(
  string(REGEX MATCHALL "struct [A-Za-z_0-9]+ {\n[ \t]*FROST_OPTIONS\\(" decls "${text}")
  foreach(d IN LISTS decls)
    string(REGEX REPLACE "^struct ([A-Za-z_0-9]+) .*" "\\1" short "${d}")
    math(EXPR count "${count} + 1")
    if(short STREQUAL "Options")
      continue()
    endif()
    string(FIND "${reference}" "${short}`" documented)
    if(documented EQUAL -1)
      list(APPEND problems "${rel}: ${short} is reflected but docs/reference.md has no table for it: add an entry to examples/reference.cpp and run build/examples/frost-reference --write docs/reference.md")
    endif()
  endforeach()
endforeach()

if(count LESS 10)
  list(APPEND problems "found only ${count} FROST_OPTIONS declarations under ${ROOT}/include/frost: is ROOT right?")
endif()
if(problems)
  list(JOIN problems "\n  " text)
  message(FATAL_ERROR "options are not listed once:\n  ${text}")
endif()
message(STATUS "${count} options structs declared once with FROST_OPTIONS, each has its table in docs/reference.md")
