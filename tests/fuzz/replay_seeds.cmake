# replay_seeds.cmake: the ctest fuzz/seeds. Writes the seed corpus with fuzz_seeds, then runs
# every target's replay binary over its seeds; any crash, sanitizer report or failed check fails.
file(REMOVE_RECURSE ${OUT})
execute_process(COMMAND ${SEEDS} ${OUT} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "fuzz_seeds ${OUT} failed: ${rc}")
endif()
foreach(name ${TARGETS})
  execute_process(COMMAND ${REPLAY_DIR}/fuzz_${name}_replay ${OUT}/${name} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "fuzz_${name}_replay ${OUT}/${name} failed: ${rc}")
  endif()
endforeach()
