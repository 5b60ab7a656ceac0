# packaging.cmake: the Debian packages (`cpack -G DEB` in the build dir). One package per
# install component (install.cmake); dpkg-shlibdeps computes the shared-library dependencies.
set(CPACK_PACKAGE_NAME weft)
set(CPACK_PACKAGE_VENDOR "weft")
set(WEFT_PACKAGE_MAINTAINER "weft developers <weft-dev@example.org>"
    CACHE STRING "Maintainer field of the Debian packages")
set(CPACK_PACKAGE_CONTACT "${WEFT_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "durable workflow engine")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL server runtime dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_DEBIAN_PACKAGE_SECTION misc)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
set(CPACK_DEBIAN_PACKAGE_SOURCE weft)

set(_weft_deb_version "${PROJECT_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE}")

# weft: the server and the CLI.
set(CPACK_DEBIAN_SERVER_PACKAGE_NAME weft)
set(CPACK_DEBIAN_SERVER_PACKAGE_SECTION net)
set(CPACK_DEBIAN_SERVER_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_SERVER_DESCRIPTION
    [[durable workflow engine: server (weftd) and command-line client (weft)
weft runs durable workflows: each run's history is replicated with raft and
stored in LMDB, and workers written against libweft execute the workflow
and activity code. This package holds the weftd server with its systemd
unit and configuration, and the weft command-line client.]])
set(CPACK_DEBIAN_SERVER_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_LIST_DIR}/debian/conffiles ${CMAKE_CURRENT_LIST_DIR}/debian/postinst
    ${CMAKE_CURRENT_LIST_DIR}/debian/prerm ${CMAKE_CURRENT_LIST_DIR}/debian/postrm)
set(CPACK_DEBIAN_SERVER_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# libweft1: the shared library, named after its soname. CPack would add postinst/postrm that
# call ldconfig; Debian uses the ldconfig trigger instead, and these scripts do nothing.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME libweft${WEFT_SOVERSION})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
configure_file(${CMAKE_CURRENT_LIST_DIR}/debian/libweft-triggers
               ${CMAKE_BINARY_DIR}/deploy/runtime/triggers COPYONLY)
configure_file(${CMAKE_CURRENT_LIST_DIR}/debian/libweft-postinst
               ${CMAKE_BINARY_DIR}/deploy/runtime/postinst COPYONLY)
configure_file(${CMAKE_CURRENT_LIST_DIR}/debian/libweft-postrm
               ${CMAKE_BINARY_DIR}/deploy/runtime/postrm COPYONLY)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA ${CMAKE_BINARY_DIR}/deploy/runtime/triggers
    ${CMAKE_BINARY_DIR}/deploy/runtime/postinst ${CMAKE_BINARY_DIR}/deploy/runtime/postrm)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION
    [[durable workflow engine: client library and worker SDK
libweft is the C client of a weft cluster and the SDK that runs workflow and
activity code written in C or C++. This package holds the shared library.]])

# libweft-dev: headers, static library, pkg-config and CMake files.
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libweft-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
    "libweft${WEFT_SOVERSION} (= ${_weft_deb_version}), libjansson-dev, libmsgpack-dev, libxxhash-dev, pkgconf | pkg-config")
set(CPACK_DEBIAN_DEV_DESCRIPTION
    [[durable workflow engine: client library and worker SDK (development files)
libweft is the C client of a weft cluster and the SDK that runs workflow and
activity code written in C or C++. This package holds the headers, the static
library, and the pkg-config (weft.pc) and CMake (find_package(weft)) files.]])

# Each package carries the copyright file and the changelog (gzip -9n, as Debian wants it) in
# /usr/share/doc/<package>/.
execute_process(COMMAND gzip -9nc ${CMAKE_CURRENT_LIST_DIR}/debian/changelog
                OUTPUT_FILE ${CMAKE_BINARY_DIR}/deploy/changelog.Debian.gz)
foreach(comp server runtime dev)
  string(TOUPPER ${comp} _comp)
  install(FILES ${CMAKE_CURRENT_LIST_DIR}/debian/copyright
                ${CMAKE_BINARY_DIR}/deploy/changelog.Debian.gz
          DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${CPACK_DEBIAN_${_comp}_PACKAGE_NAME}
          COMPONENT ${comp})
endforeach()

include(CPack)
