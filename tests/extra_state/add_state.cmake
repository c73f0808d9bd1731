# ctest lifecycle.extra_state, step 1 (cmake -P, at build time): copies
# include/frost to DST and adds a block state to the copy the way
# docs/README.md says a new state is added ("Where new things go"), by
# appending rows and nothing else: every edit below inserts lines after an
# anchor line and none changes a line that is there. If a new state needed
# any other edit, extra_state.cpp would not compile or its checks would fail.
#
# The state: "cooling", no gradient (so no update) but the optimizer state
# kept, not frozen for good, and its modules left in train mode; a criterion
# asks for it with a new request, "cool", recorded as a new event, "cool".
#
#   cmake -DSRC=<frost>/include -DDST=<build>/extra_state/include -P add_state.cmake
cmake_minimum_required(VERSION 3.16)
if(NOT SRC OR NOT DST)
  message(FATAL_ERROR "add_state.cmake: give -DSRC=<frost's include dir> -DDST=<copy>")
endif()
file(REMOVE_RECURSE "${DST}")
file(COPY "${SRC}/frost" DESTINATION "${DST}")

# Inserts `lines` after the line holding `anchor` (which must occur once).
function(append_after file anchor)
  string(JOIN "" lines ${ARGN})
  file(READ "${DST}/frost/${file}" text)
  string(FIND "${text}" "${anchor}" at)
  string(FIND "${text}" "${anchor}" last REVERSE)
  if(at EQUAL -1 OR NOT at EQUAL last)
    message(FATAL_ERROR "add_state.cmake: '${anchor}' is not once in frost/${file}; the place "
                        "docs/README.md names for a new state moved, update both")
  endif()
  string(SUBSTRING "${text}" ${at} -1 rest)
  string(FIND "${rest}" "\n" eol)
  math(EXPR cut "${at} + ${eol} + 1")
  string(SUBSTRING "${text}" 0 ${cut} head)
  string(SUBSTRING "${text}" ${cut} -1 tail)
  file(WRITE "${DST}/frost/${file}" "${head}${lines}${tail}")
endfunction()

# block_state.hpp: the enumerator and its row of kStateMeanings
append_after(block_state.hpp "  frozen = 2," "  cooling = 3,\n")
append_after(block_state.hpp "{BlockState::frozen,"
  "    {BlockState::cooling,   \"cooling\",   false,  true,                  false,           false},\n")
# block_state.hpp: no request leads into it yet, so a Request and its name
append_after(block_state.hpp "  unfreeze,  ///<" "  cool,\n")
append_after(block_state.hpp "{Request::unfreeze, \"unfreeze\"}," "    {Request::cool, \"cool\"},\n")
# timeline.hpp: an EventKind and its name, for the move into it
append_after(timeline.hpp "  unfreeze = 6," "  cool = 7,\n")
append_after(timeline.hpp "{EventKind::unfreeze, \"unfreeze\"}," "    {EventKind::cool, \"cool\"},\n")
# controller/lifecycle.hpp: its rows, the move into it and the moves out of it
append_after(controller/lifecycle.hpp "{S::frozen,    R::unfreeze,"
  "  {S::training,  R::cool,      move(S::cooling, E::cool)},\n"
  "  {S::cooling,   R::cool,      stay()},\n"
  "  {S::cooling,   R::revert,    move(S::training, E::revert)},\n"
  "  {S::cooling,   R::unfreeze,  move(S::training, E::revert)},\n"
  "  {S::cooling,   R::freeze,    move(S::frozen, E::commit)},\n")
