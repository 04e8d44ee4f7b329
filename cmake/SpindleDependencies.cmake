# Third-party dependencies, all from Debian's packages (scripts/setup.sh installs them).
# With SPINDLE_STATIC, libraries are linked statically where Debian ships archives, and
# the shared ones that remain (libudev, which static hwloc needs) are copied beside the
# binaries, found through an $ORIGIN rpath (the portable build: README, Build options).
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)

if(SPINDLE_STATIC)
  set(Boost_USE_STATIC_LIBS ON)
  find_library(SPINDLE_HWLOC_ARCHIVE NAMES libhwloc.a REQUIRED)
  find_library(SPINDLE_UDEV_LIBRARY NAMES libudev.so.1 udev REQUIRED)
  find_path(SPINDLE_HWLOC_INCLUDE_DIR hwloc.h REQUIRED)
  add_library(spindle_hwloc INTERFACE IMPORTED)
  target_include_directories(spindle_hwloc INTERFACE ${SPINDLE_HWLOC_INCLUDE_DIR})
  target_link_libraries(spindle_hwloc INTERFACE
    ${SPINDLE_HWLOC_ARCHIVE} ${SPINDLE_UDEV_LIBRARY} m Threads::Threads)
  set(CMAKE_BUILD_RPATH "$ORIGIN")
  set(CMAKE_FIND_LIBRARY_SUFFIXES .a ${CMAKE_FIND_LIBRARY_SUFFIXES})
else()
  pkg_check_modules(HWLOC REQUIRED IMPORTED_TARGET hwloc>=2.0)
  add_library(spindle_hwloc INTERFACE IMPORTED)
  target_link_libraries(spindle_hwloc INTERFACE PkgConfig::HWLOC)
endif()

find_package(Boost 1.74 REQUIRED COMPONENTS fiber context)
# oneTBB's scalable allocator (libtbb-dev) for task records, which a worker frees on another
# thread than the one that made them.
find_package(TBB REQUIRED COMPONENTS tbbmalloc)

# Cluster mode: cereal serialises calls (libcereal-dev, header only, always needed) and Open
# MPI carries them (libopenmpi-dev). The portable build leaves MPI out: Debian ships no
# static Open MPI, and a cluster's MPI is the site's own.
find_package(cereal 1.3.1 CONFIG REQUIRED)  # 1.3.1 exports cereal::cereal
set(SPINDLE_HAVE_MPI OFF)
if(SPINDLE_MPI STREQUAL "ON" AND SPINDLE_STATIC)
  message(FATAL_ERROR "SPINDLE_MPI=ON with SPINDLE_STATIC: the portable build has no MPI")
elseif(NOT SPINDLE_MPI STREQUAL "OFF" AND NOT SPINDLE_STATIC)
  set(MPI_CXX_SKIP_MPICXX ON)  # MPI's C interface, from C++: no C++ bindings library
  if(SPINDLE_MPI STREQUAL "ON")
    find_package(MPI REQUIRED COMPONENTS CXX)
  else()
    find_package(MPI QUIET COMPONENTS CXX)
  endif()
  set(SPINDLE_HAVE_MPI ${MPI_CXX_FOUND})
endif()
message(STATUS "spindle: cluster mode on MPI: ${SPINDLE_HAVE_MPI}")

# moodycamel's lock-free queue (header only), for the workers' lanes.
find_path(SPINDLE_CONCURRENTQUEUE_INCLUDE_DIR concurrentqueue/concurrentqueue.h)
if(NOT SPINDLE_CONCURRENTQUEUE_INCLUDE_DIR)
  message(FATAL_ERROR "concurrentqueue/concurrentqueue.h was not found: install Debian's "
                      "libconcurrentqueue-dev (scripts/setup.sh does)")
endif()
add_library(spindle_concurrentqueue INTERFACE IMPORTED)
target_include_directories(spindle_concurrentqueue INTERFACE ${SPINDLE_CONCURRENTQUEUE_INCLUDE_DIR})

# In the portable build, copies the shared libraries `target` still needs (libudev for static
# hwloc, Google Benchmark, oneTBB) beside it after each link.
function(spindle_bundle_runtime target)
  if(SPINDLE_STATIC)
    add_custom_command(TARGET ${target} POST_BUILD
      COMMAND ${CMAKE_COMMAND} -DEXECUTABLE=$<TARGET_FILE:${target}>
              -P ${PROJECT_SOURCE_DIR}/cmake/bundle_runtime.cmake
      VERBATIM)
  endif()
endfunction()
