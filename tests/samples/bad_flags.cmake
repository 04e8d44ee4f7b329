# Runs a sample with each of its flags out of range (-1, and 1e12): it must stop before any
# work with exit status 2 and a message naming the flag and what is allowed. With 0 (in
# range for some flags) it must either run to the end (status 0) or refuse it so. --help
# must list the flags on stdout with status 0.
#   cmake -DSAMPLE=path/to/sample -P bad_flags.cmake
execute_process(COMMAND ${SAMPLE} --help RESULT_VARIABLE rc OUTPUT_VARIABLE help
                ERROR_VARIABLE err TIMEOUT 60)
if(NOT rc EQUAL 0 OR NOT help MATCHES "--quick")
  message(FATAL_ERROR "--help: status ${rc}, stdout '${help}', stderr '${err}'")
endif()
string(REGEX MATCHALL "  --[a-z-]+ N" entries "${help}")
if(NOT entries)
  message(FATAL_ERROR "--help lists no flags: ${help}")
endif()
foreach(entry IN LISTS entries)
  string(REGEX REPLACE "  --([a-z-]+) N" "\\1" flag "${entry}")
  foreach(value -1 1e12 0)
    execute_process(COMMAND ${SAMPLE} --quick --${flag} ${value} RESULT_VARIABLE rc
                    OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
    if(value STREQUAL "0" AND rc EQUAL 0)
      continue()  # 0 is allowed for this flag, and the run completed
    endif()
    if(NOT rc EQUAL 2 OR NOT err MATCHES "--${flag} ${value}: must be a")
      message(FATAL_ERROR "--${flag} ${value}: status ${rc}, stderr '${err}', stdout '${out}'")
    endif()
  endforeach()
endforeach()
message(STATUS "${SAMPLE}: every flag out of range was refused, and 0 ran or was refused")
