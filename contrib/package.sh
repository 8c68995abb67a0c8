#!/usr/bin/env bash
# contrib/package.sh - builds the Debian package with CPack from the install rules:
#   bash contrib/package.sh        -> build-deb/credsync_VERSION_ARCH.deb (path printed last)
# BUILD=dir chooses the build directory.  Needs cmake, a compiler, the -dev packages of
# README's "Building" and dpkg-dev (dpkg-shlibdeps derives the dependencies).  The build is
# configured for prefix /usr, so the units and the cron example name /usr/bin/credsync.
# Then: lintian build-deb/credsync_*.deb; apt install ./build-deb/credsync_*.deb
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build-deb}
# Debian's hardening flags (fortify, stack protector, relro, bindnow), as a Debian build
# would set them; CMake reads CFLAGS/CPPFLAGS/LDFLAGS when it first configures "$build"
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
eval "$(dpkg-buildflags --export=sh)"
export CFLAGS="$CFLAGS $CPPFLAGS"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
	-DCREDSYNC_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
rm -f "$build"/credsync_*.deb
(cd "$build" && cpack -G DEB >/dev/null)
ls "$build"/credsync_*.deb
