# ctest example.epoch_loop: the README's epoch loop stopped after 2 of 4 epochs
# and resumed must end where the uninterrupted run ends.
#
#   cmake -DPROGRAM=<frost-epoch-loop> -DWORK_DIR=<dir> -P epoch_loop_check.cmake
#
# Every run must exit 0 (PASS_REGULAR_EXPRESSION alone would ignore the exit
# code), the resume must say where it resumed, and the last lines, frost's
# base learning rates and the optimizer's rates to 17 digits, must equal the
# uninterrupted run's exactly: a resume that restores the program's own rate
# but not frost's bases trains on at another rate, which the program's own
# printout never shows.

foreach(var PROGRAM WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "epoch_loop_check: pass -D${var}=...")
  endif()
endforeach()
file(MAKE_DIRECTORY "${WORK_DIR}")
set(checkpoint "${WORK_DIR}/epoch_loop_check.pt")
file(REMOVE "${checkpoint}")

# Runs the program with ARGN, fails on a non-zero exit; its stdout into `out`.
function(run_loop what out)
  execute_process(COMMAND "${PROGRAM}" ${ARGN} WORKING_DIRECTORY "${WORK_DIR}"
                  RESULT_VARIABLE rc OUTPUT_VARIABLE stdout ERROR_VARIABLE stderr)
  string(JOIN " " args ${ARGN})
  message("---- ${what}: frost-epoch-loop ${args} (exit ${rc})\n${stdout}${stderr}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "epoch_loop_check: the ${what} run exited with ${rc}")
  endif()
  set(${out} "${stdout}" PARENT_SCOPE)
endfunction()

# The line of `text` that starts with `prefix` (exactly one).
function(line_of text prefix what out)
  string(REGEX MATCHALL "(^|\n)${prefix}[^\n]*" found "${text}")
  list(LENGTH found n)
  if(NOT n EQUAL 1)
    message(FATAL_ERROR "epoch_loop_check: the ${what} run printed ${n} '${prefix}' lines, not 1")
  endif()
  string(STRIP "${found}" found)
  set(${out} "${found}" PARENT_SCOPE)
endfunction()

run_loop("uninterrupted" full 4)
run_loop("interrupted" first 4 "${checkpoint}" 2)
run_loop("resumed" resumed 4 "${checkpoint}")

if(NOT resumed MATCHES "resumed at epoch 2, lr 0.0005\n")
  message(FATAL_ERROR "epoch_loop_check: the resumed run did not say 'resumed at epoch 2, lr 0.0005'")
endif()
foreach(prefix "frost bases:" "rates:")
  line_of("${full}" "${prefix}" "uninterrupted" want)
  line_of("${resumed}" "${prefix}" "resumed" got)
  if(NOT got STREQUAL want)
    message(FATAL_ERROR "epoch_loop_check: after the resume\n  ${got}\nbut uninterrupted\n  ${want}")
  endif()
endforeach()
message("epoch_loop_check: the resumed run ends with the uninterrupted run's bases and rates")
