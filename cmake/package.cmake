# package.cmake - the Debian package, made by CPack from the install rules:
#   cmake -S . -B build-deb -DCMAKE_INSTALL_PREFIX=/usr && cmake --build build-deb
#   (cd build-deb && cpack -G DEB)            (contrib/package.sh does exactly this)
# Dependencies come from dpkg-shlibdeps (dpkg-dev) reading the linked libraries, never from
# versions written here.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME credsync)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "the credsync authors")
set(CPACK_PACKAGE_CONTACT "credsync maintainers <maintainers@users.noreply.r-seed-000b3e8f.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "inventory of MQTT client IDs holding Alibaba Cloud device credentials")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "credsync keeps a local SQLite inventory of which MQTT client IDs hold\n\
per-device access credentials on Alibaba Cloud's MQTT service (ApsaraMQ for\n\
MQTT, OnsMqtt ListDeviceCredentialClientId).  It walks every page of every\n\
configured group, retries throttling with backoff, records one snapshot per\n\
group per run and reports what was added and removed between snapshots.\n\
.\n\
The package holds credsync, credsync-sim (a local stand-in for the service,\n\
for tests and for trying a setup), the credsync(1) page, an example\n\
configuration, the systemd service and timer (not enabled), a cron example,\n\
SQL queries and bash and zsh completion.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# absolute destinations (/lib/systemd/system) must land in the package, never on this machine
set(CPACK_SET_DESTDIR ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
# debug symbols would make lintian report unstripped binaries
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)
include(CPack)
