# install.cmake: what `cmake --install` puts where, and the Debian packages CPack builds from it
# (`cpack -G DEB` in the build dir; docs/operations.md, "Packages and deployment").
#
# Components, one package each:
#   server   weft:        weftd, the weft CLI, the systemd unit, /etc/weft/weftd.conf
#   runtime  libweft1:    libweft.so.1
#   dev      libweft-dev: headers, libweft.so, libweft.a, weft.pc, the CMake package
include(CMakePackageConfigHelpers)

set(WEFT_CMAKE_PACKAGE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/weft)

install(TARGETS weftd weft_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT server)
# Manual pages, compressed as Debian wants them (gzip -9n: no name, no time stamp).
file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/deploy)
foreach(page weftd.8 weft.1)
  string(REGEX REPLACE "^.*\\.([0-9])$" "\\1" section ${page})
  execute_process(COMMAND gzip -9nc ${CMAKE_CURRENT_LIST_DIR}/man/${page}
                  OUTPUT_FILE ${CMAKE_BINARY_DIR}/deploy/${page}.gz)
  install(FILES ${CMAKE_BINARY_DIR}/deploy/${page}.gz
          DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section} COMPONENT server)
endforeach()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/man/weftd.8
             ${CMAKE_CURRENT_LIST_DIR}/man/weft.1 ${CMAKE_CURRENT_LIST_DIR}/debian/changelog)
install(TARGETS weft_shared EXPORT weftTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev)
install(TARGETS weft EXPORT weftTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/client/include/weft DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        COMPONENT dev FILES_MATCHING PATTERN "*.h")

# weft.pc finds its prefix relative to itself, so an installed tree may be moved.
file(RELATIVE_PATH WEFT_PC_PREFIX_FROM_PCDIR /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
string(REGEX REPLACE "/$" "" WEFT_PC_PREFIX_FROM_PCDIR "${WEFT_PC_PREFIX_FROM_PCDIR}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/cmake/weft.pc.in ${CMAKE_BINARY_DIR}/weft.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/weft.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
        COMPONENT dev)

install(EXPORT weftTargets NAMESPACE weft:: DESTINATION ${WEFT_CMAKE_PACKAGE_DIR} COMPONENT dev)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/cmake/weftConfig.cmake.in
                              ${CMAKE_BINARY_DIR}/weftConfig.cmake
                              INSTALL_DESTINATION ${WEFT_CMAKE_PACKAGE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/weftConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/weftConfig.cmake ${CMAKE_BINARY_DIR}/weftConfigVersion.cmake
        DESTINATION ${WEFT_CMAKE_PACKAGE_DIR} COMPONENT dev)

# The server's config file and systemd unit. Their place depends on the prefix at install time,
# not at configure time, so that `cpack` (which installs into /usr) and
# `cmake --install --prefix DIR` both get it right from one build tree: under /usr they go to
# /etc/weft and /lib/systemd/system, as Debian has them; under any other prefix to
# PREFIX/etc/weft and PREFIX/lib/systemd/system. The unit names weftd by its installed path.
install(CODE "
  if(CMAKE_INSTALL_PREFIX STREQUAL \"/usr\")
    set(_weft_etc /etc/weft)
    set(_weft_unit_dir /lib/systemd/system)
  else()
    set(_weft_etc \"\${CMAKE_INSTALL_PREFIX}/etc/weft\")
    set(_weft_unit_dir \"\${CMAKE_INSTALL_PREFIX}/lib/systemd/system\")
  endif()
  set(WEFT_BINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
  set(WEFT_CONFIG_FILE \"\${_weft_etc}/weftd.conf\")
  # One generated unit per destination, so that installs running at once do not mix them.
  string(MD5 _weft_dest \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}\")
  set(_weft_unit \"${CMAKE_BINARY_DIR}/deploy/weftd-\${_weft_dest}.service\")
  configure_file(\"${CMAKE_CURRENT_LIST_DIR}/systemd/weftd.service.in\" \"\${_weft_unit}\" @ONLY)
  file(INSTALL DESTINATION \"\${_weft_etc}\" TYPE FILE
       FILES \"${CMAKE_CURRENT_LIST_DIR}/weftd.conf\")
  file(INSTALL DESTINATION \"\${_weft_unit_dir}\" TYPE FILE RENAME weftd.service
       FILES \"\${_weft_unit}\")
  file(REMOVE \"\${_weft_unit}\")
" COMPONENT server)

include(${CMAKE_CURRENT_LIST_DIR}/packaging.cmake)
