# The library's layers: one object library per layer, each naming the layers it builds on and
# the libraries it uses; libspindle is made of their objects.
#
#   spindle_layer(NAME DIR <folder> [SOURCES ...] [LAYERS ...] [LIBRARIES ...])
#
# A layer's files include other layers' headers by folder ("fibers/event.hpp"), through one
# include path at src/. What keeps that honest is the check below, run when CMake configures:
# a file that includes a header of a layer it did not declare fails the configure step, with
# the file and the include named. Headers under include/spindle are the public interface and
# free to all. A layer whose folder is outside src/ (kernels/) exports its folder itself, and
# its headers are included by name ("checks.hpp").

set(SPINDLE_LAYERS "" CACHE INTERNAL "")

function(_spindle_check_includes name dir layers)
  set(allowed ${name} ${layers})
  file(GLOB files "${dir}/*.hpp" "${dir}/*.cc" "${dir}/*.cu")
  foreach(file IN LISTS files)
    file(STRINGS "${file}" includes REGEX "^#include \"[^\"]+\"")
    foreach(line IN LISTS includes)
      string(REGEX REPLACE "^#include \"([^\"]+)\".*" "\\1" header "${line}")
      if(header MATCHES "^spindle/")
        continue()
      endif()
      if(header MATCHES "^([a-z_]+)/")
        set(layer ${CMAKE_MATCH_1})
        if(NOT layer IN_LIST allowed)
          message(FATAL_ERROR "${file}: #include \"${header}\" reaches layer '${layer}', "
                              "which layer '${name}' does not declare (it declares: ${layers})")
        endif()
        continue()
      endif()
      # A header by name: the file's own folder, or a declared layer that exports its folder.
      set(found OFF)
      foreach(layer IN LISTS allowed)
        if(EXISTS "${SPINDLE_LAYER_DIR_${layer}}/${header}")
          set(found ON)
        endif()
      endforeach()
      if(NOT found)
        message(FATAL_ERROR "${file}: #include \"${header}\" is in no layer that '${name}' "
                            "declares (it declares: ${layers})")
      endif()
    endforeach()
  endforeach()
endfunction()

function(spindle_layer name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "DIR" "SOURCES;LAYERS;LIBRARIES")
  set(dir "${PROJECT_SOURCE_DIR}/${arg_DIR}")
  set(SPINDLE_LAYER_DIR_${name} "${dir}" CACHE INTERNAL "")
  foreach(layer IN LISTS arg_LAYERS)
    if(NOT layer IN_LIST SPINDLE_LAYERS)
      message(FATAL_ERROR "layer '${name}' builds on '${layer}', which is not declared before it")
    endif()
  endforeach()
  _spindle_check_includes(${name} "${dir}" "${arg_LAYERS}")

  if(arg_SOURCES)
    add_library(spindle_${name} OBJECT ${arg_SOURCES})
    set(scope PUBLIC)
    set(warnings -Wall -Wextra -Wpedantic ${SPINDLE_THREAD_SAFETY_FLAGS})
    target_compile_options(spindle_${name} PRIVATE "$<$<COMPILE_LANGUAGE:CXX>:${warnings}>")
    # Linked into a shared library by a consumer that builds spindle as one.
    set_target_properties(spindle_${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  else()
    add_library(spindle_${name} INTERFACE)
    set(scope INTERFACE)
  endif()
  target_compile_features(spindle_${name} ${scope} cxx_std_20)
  target_include_directories(spindle_${name} ${scope}
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include> $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/src>)
  if(NOT arg_DIR MATCHES "^src/")
    target_include_directories(spindle_${name} ${scope} $<BUILD_INTERFACE:${dir}>)
  endif()
  if(SPINDLE_HAVE_CUDA)
    target_compile_definitions(spindle_${name} ${scope} SPINDLE_HAVE_CUDA)
  endif()
  foreach(layer IN LISTS arg_LAYERS)
    target_link_libraries(spindle_${name} ${scope} spindle_${layer})
  endforeach()
  target_link_libraries(spindle_${name} ${scope} ${arg_LIBRARIES})
  set(SPINDLE_LAYERS ${SPINDLE_LAYERS} ${name} CACHE INTERNAL "")
endfunction()
