# contrib/setup.sh - sourced by contrib/demo.sh and tests/run.sh: installs what is missing
# with apt-get (Debian 12), then configures and builds credsync into $BUILD (default build/).
#
#   CREDSYNC_PACKAGES_EXTRA="..."  more Debian packages to ensure (the test suite adds its own)
#   BUILD=dir CMAKE_ARGS="..."     where and how to build

CREDSYNC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$CREDSYNC_ROOT/build}

credsync_packages="build-essential cmake pkg-config libcurl4-openssl-dev libssl-dev \
libsqlite3-dev sqlite3 libcjson-dev libyaml-dev libmicrohttpd-dev python3 curl ca-certificates \
${CREDSYNC_PACKAGES_EXTRA:-}"

credsync_install_missing() {
	local missing=() p
	for p in $credsync_packages; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "credsync: missing Debian packages: ${missing[*]}" >&2
		echo "credsync: run as root, or: sudo apt-get install ${missing[*]}" >&2
		return 1
	fi
	echo "== installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

credsync_build() {
	echo "== building into $BUILD"
	cmake -S "$CREDSYNC_ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${CMAKE_ARGS:-} >/dev/null
	cmake --build "$BUILD" -j"$(nproc)" >/dev/null
}
