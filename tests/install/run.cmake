# Installs the build in BUILD_DIR into WORK_DIR/prefix, then configures, builds and runs the
# consumer project in CONSUMER_DIR against it, as a user of the installed package would.
# With FROM=build the consumer uses the build tree itself (-Dspindle_DIR), nothing installed.
file(REMOVE_RECURSE ${WORK_DIR})

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "${what} failed (${result}):\n${out}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

if(FROM STREQUAL "build")
  set(find_it -Dspindle_DIR=${BUILD_DIR})
else()
  run_step("install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix)
  set(find_it -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
endif()
run_step("configure consumer" ${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${WORK_DIR}/build
         -G ${GENERATOR} -DCMAKE_BUILD_TYPE=${BUILD_TYPE} ${find_it})
run_step("build consumer" ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run_step("run consumer" ${WORK_DIR}/build/consumer)
if(NOT step_output MATCHES "consumer: cpu total [0-9]+")
  message(FATAL_ERROR "consumer printed something unexpected:\n${step_output}")
endif()
message(STATUS "${step_output}")
