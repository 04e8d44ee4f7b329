# Install rules and the exported package: find_package(spindle) gives spindle::spindle and
# spindle::large_blocks.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(SPINDLE_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/spindle)
install(TARGETS spindle spindle_large_blocks EXPORT spindleTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS spindle_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY include/spindle DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT spindleTargets NAMESPACE spindle:: DESTINATION ${SPINDLE_CMAKE_DIR})

configure_package_config_file(cmake/spindleConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/spindleConfig.cmake INSTALL_DESTINATION ${SPINDLE_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/spindleConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/spindleConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/spindleConfigVersion.cmake
        DESTINATION ${SPINDLE_CMAKE_DIR})

# The build tree is a package as well: a consumer configured with -Dspindle_DIR=<build folder>
# (or with it in CMAKE_PREFIX_PATH) uses the library in place, without installing it.
export(EXPORT spindleTargets NAMESPACE spindle::
       FILE ${CMAKE_CURRENT_BINARY_DIR}/spindleTargets.cmake)
