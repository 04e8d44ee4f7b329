# SPINDLE_CUDA: AUTO builds the CUDA path when nvcc is found (on PATH, in CUDACXX or in
# /usr/local/cuda/bin), ON requires it, OFF leaves CUDA out entirely.
# Sets SPINDLE_HAVE_CUDA. The default architecture is sm_90 with PTX ("90" in CMake's
# terms: real and virtual), overridable with CMAKE_CUDA_ARCHITECTURES.
string(TOUPPER "${SPINDLE_CUDA}" _spindle_cuda)
if(NOT _spindle_cuda MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "SPINDLE_CUDA = '${SPINDLE_CUDA}': allowed values are AUTO, ON and OFF")
endif()

set(SPINDLE_HAVE_CUDA OFF)
if(NOT _spindle_cuda STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
    find_program(_spindle_nvcc_on_path nvcc)
    if(NOT _spindle_nvcc_on_path)
      set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc CACHE FILEPATH "CUDA compiler")
    endif()
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90 CACHE STRING "CUDA architectures (90: sm_90 code and PTX)")
    endif()
    enable_language(CUDA)
    # CMake 3.25 predates nvcc's C++20 support and knows no flag for the CUDA20 dialect.
    if(NOT DEFINED CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
      set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
      set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
    endif()
    set(CMAKE_CUDA_STANDARD 20)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    find_package(CUDAToolkit REQUIRED)
    set(SPINDLE_HAVE_CUDA ON)
  elseif(_spindle_cuda STREQUAL "ON")
    message(FATAL_ERROR "SPINDLE_CUDA = ON but no CUDA compiler was found: looked for nvcc on "
                        "PATH, in CUDACXX and in /usr/local/cuda/bin. Install the CUDA toolkit, "
                        "set CUDACXX, or configure with -DSPINDLE_CUDA=OFF.")
  endif()
endif()
if(SPINDLE_HAVE_CUDA)
  message(STATUS "spindle: CUDA path ON (SPINDLE_CUDA=${_spindle_cuda}, "
                 "architectures ${CMAKE_CUDA_ARCHITECTURES}, ${CMAKE_CUDA_COMPILER})")
else()
  message(STATUS "spindle: CUDA path OFF (SPINDLE_CUDA=${_spindle_cuda})")
endif()
