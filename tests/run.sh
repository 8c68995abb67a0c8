#!/usr/bin/env bash
# tests/run.sh - the whole test suite, from a fresh Debian 12 machine (as root): installs what
# is missing, then
#   1. builds with -Werror and runs every unit, fuzz-corpus and integration test (ctest);
#   2. builds again with AddressSanitizer + UndefinedBehaviorSanitizer and runs it all again;
#   3. runs the integration tests with credsync under valgrind memcheck (smaller fleets):
#      any memcheck error or definite leak fails the run.
# Once the install step is done, everything runs in a network namespace that has only
# loopback (unshare -n), so no test can reach the metadata address, an STS host or any other
# non-loopback address even by accident; the default chain's metadata provider is off too.
# .ci/run runs exactly this.
set -euo pipefail
# dpkg-dev (dpkg-shlibdeps) and lintian: it.package builds, lints and installs the .deb
export CREDSYNC_PACKAGES_EXTRA="chromium valgrind clang libclang-rt-14-dev iproute2 util-linux dpkg-dev lintian"
source "$(dirname "$0")/../contrib/setup.sh"

if [ "${CREDSYNC_IN_NETNS:-}" != 1 ]; then
	credsync_install_missing
	if unshare -n true 2>/dev/null; then
		echo "== entering a network namespace with only loopback"
		exec env CREDSYNC_IN_NETNS=1 unshare -n bash -c 'ip link set lo up && exec bash "$0" "$@"' \
			"$0" "$@"
	fi
	# without the privilege to make a namespace (not root, or a container that forbids it)
	# the suite still runs; the environment below keeps the metadata provider off
	echo "== cannot create a network namespace here; running without that safety net" >&2
fi
export ALIBABA_CLOUD_ECS_METADATA_DISABLED=true

jobs=$(nproc)
start=$SECONDS
phase() { echo; echo "== $* ($((SECONDS - start))s)"; }

phase "build (-Werror)"
CMAKE_ARGS="-DCREDSYNC_WERROR=ON" credsync_build
phase "ctest: unit, fuzz corpora, integration"
(cd "$BUILD" && ctest --output-on-failure -j"$jobs" --timeout 1200)

phase "build with ASan + UBSan"
ASAN_BUILD="$CREDSYNC_ROOT/build-asan"
BUILD="$ASAN_BUILD" CMAKE_ARGS="-DCREDSYNC_WERROR=ON -DCREDSYNC_ASAN=ON -DCREDSYNC_UBSAN=ON" credsync_build
phase "ctest under ASan + UBSan"
(cd "$ASAN_BUILD" &&
 ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1" \
 UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
 ctest --output-on-failure -j"$jobs" --timeout 1800)

# it.package and it.completion run no credsync under the wrapper: they are not repeated here
phase "integration tests with credsync under valgrind memcheck"
(cd "$BUILD" &&
 CREDSYNC_WRAPPER="valgrind --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite --track-fds=no" \
 CREDSYNC_TEST_SCALE=0.05 \
 ctest --output-on-failure -j"$jobs" -L integration -E 'it\.(sim|html_render|docs|package|completion)$' --timeout 2400)

echo
echo "== all passed in $((SECONDS - start))s"
