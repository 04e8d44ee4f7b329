# Runs COMMAND_LINE and passes when it exits with 0 and its standard output matches EXPECT
# (a regular expression): a crash after the right output still fails, and warnings a launcher
# prints on standard error do not.
#
#   cmake -DCOMMAND_LINE="mpirun -np 2 prog" -DEXPECT="regex" -P run_and_match.cmake
separate_arguments(command UNIX_COMMAND "${COMMAND_LINE}")
execute_process(COMMAND ${command} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "'${COMMAND_LINE}' exited with ${rc}:\n${out}${err}")
endif()
if(NOT out MATCHES "${EXPECT}")
  message(FATAL_ERROR "the output of '${COMMAND_LINE}' does not match '${EXPECT}':\n${out}${err}")
endif()
message(STATUS "${out}")
