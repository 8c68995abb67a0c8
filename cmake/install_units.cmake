# install_units.cmake - run by `cmake --install` and by cpack (install(SCRIPT)): installs the
# systemd units and the cron example with the credsync path of this installation, because
# that path is only known at install time (cpack installs with prefix /usr, a plain
# `cmake --install` with /usr/local or --prefix).
#
# Units go to /lib/systemd/system for prefix /usr (Debian's place for packaged units), else
# to PREFIX/lib/systemd/system (systemd also reads /usr/local/lib/systemd/system).  Nothing
# is enabled: enabling a timer is the administrator's choice.
#
# Expects CREDSYNC_SRC and CREDSYNC_BIN_DIR_REL (GNUInstallDirs' bindir, relative) and
# CREDSYNC_DOC_DIR_REL to be set by the install(CODE) that precedes this script.
set(_bin "${CMAKE_INSTALL_PREFIX}/${CREDSYNC_BIN_DIR_REL}/credsync")
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(_unitdir "/lib/systemd/system")
else()
  set(_unitdir "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
endif()
set(_stage "${CREDSYNC_STAGE}")
file(MAKE_DIRECTORY "${_stage}")
foreach(_f systemd/credsync.service systemd/credsync.timer cron/credsync)
  file(READ "${CREDSYNC_SRC}/contrib/${_f}" _text)
  string(REPLACE "/usr/local/bin/credsync" "${_bin}" _text "${_text}")
  get_filename_component(_name "${_f}" NAME)
  file(WRITE "${_stage}/${_name}" "${_text}")
endforeach()
file(INSTALL DESTINATION "${_unitdir}" TYPE FILE PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
     FILES "${_stage}/credsync.service" "${_stage}/credsync.timer")
file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/${CREDSYNC_DOC_DIR_REL}/examples" TYPE FILE
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
     FILES "${_stage}/credsync.service" "${_stage}/credsync.timer" "${_stage}/credsync")
