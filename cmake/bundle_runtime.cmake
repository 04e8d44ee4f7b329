# Run after linking an executable of the portable build (SPINDLE_STATIC): copies the shared
# libraries it needs, beyond those every GPU machine has (the portable build: README, Build options), beside it. The
# executable finds them through its $ORIGIN rpath.
#   cmake -DEXECUTABLE=path -P bundle_runtime.cmake
file(GET_RUNTIME_DEPENDENCIES
  EXECUTABLES ${EXECUTABLE}
  RESOLVED_DEPENDENCIES_VAR resolved
  UNRESOLVED_DEPENDENCIES_VAR unresolved
  POST_EXCLUDE_REGEXES "/(libc|libm|libstdc\\+\\+|libgcc_s|libcuda|ld-linux[^/]*)\\.so")
get_filename_component(directory ${EXECUTABLE} DIRECTORY)
foreach(library IN LISTS resolved)
  if(library MATCHES "^${directory}/")
    continue()
  endif()
  get_filename_component(name ${library} NAME)
  file(REAL_PATH ${library} real)
  file(COPY_FILE ${real} ${directory}/${name} ONLY_IF_DIFFERENT)
endforeach()
if(unresolved)
  message(WARNING "${EXECUTABLE}: unresolved libraries: ${unresolved}")
endif()
