# The library's layers: one object library per layer, each naming the layers it builds on and
# the libraries it uses; libspindle is made of their objects.
#
#   spindle_layer(NAME DIR <folder> [SOURCES ...] [LAYERS ...] [LIBRARIES ...])
#
# A layer's files include other layers' headers by folder ("fibers/event.hpp"), through one
# include path at src/. What keeps that honest is the check below, run when CMake configures
# (so on every fresh build, as CI's): a file that includes a header of a layer it did not
# declare, with quotes or angle brackets, or climbs out of its folder with "..", fails the
# configure step, with the file and the include named. Headers under include/spindle are the public interface and
# free to all. A layer whose folder is outside src/ (kernels/) exports its folder itself, and
# its headers are included by name ("checks.hpp").

set(SPINDLE_LAYERS "" CACHE INTERNAL "")

function(_spindle_check_includes name dir layers)
  set(allowed ${name} ${layers})
  # The folders a layer can live in: any of src/, and kernels/.
  file(GLOB layer_dirs LIST_DIRECTORIES true RELATIVE "${PROJECT_SOURCE_DIR}/src"
       "${PROJECT_SOURCE_DIR}/src/*")
  list(APPEND layer_dirs kernels)
  file(GLOB_RECURSE files "${dir}/*.hpp" "${dir}/*.h" "${dir}/*.cc" "${dir}/*.cu" "${dir}/*.cuh")
  foreach(file IN LISTS files)
    file(STRINGS "${file}" includes REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"]")
    foreach(line IN LISTS includes)
      string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*([<\"])([^>\"]+)[>\"].*" "\\1\\2"
             include "${line}")
      string(SUBSTRING "${include}" 0 1 bracket)
      string(SUBSTRING "${include}" 1 -1 header)
      if(header MATCHES "^spindle/")
        continue()
      endif()
      if(header MATCHES "(^|/)\\.\\.(/|$)")
        message(FATAL_ERROR "${file}: #include \"${header}\" climbs out of its folder; "
                            "include other layers' headers as <layer>/<file>")
      endif()
      if(header MATCHES "^([a-z_]+)/" AND CMAKE_MATCH_1 IN_LIST layer_dirs)
        set(layer ${CMAKE_MATCH_1})
        if(NOT layer IN_LIST allowed)
          message(FATAL_ERROR "${file}: #include \"${header}\" reaches layer '${layer}', "
                              "which layer '${name}' does not declare (it declares: ${layers})")
        endif()
        continue()
      endif()
      if(bracket STREQUAL "<")
        continue()  # a library's header
      endif()
      # A header by name: the file's own folder, or a declared layer that exports its folder.
      get_filename_component(own_dir "${file}" DIRECTORY)
      set(found OFF)
      if(EXISTS "${own_dir}/${header}")
        set(found ON)
      endif()
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
