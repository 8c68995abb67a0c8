#!/usr/bin/env bash
# tests/run.sh - the whole test suite, from a fresh Debian 12 machine (as root): installs what
# is missing, then
#   1. builds with -Werror and runs every unit, fuzz-corpus and integration test (ctest);
#   2. builds again with AddressSanitizer + UndefinedBehaviorSanitizer and runs it all again;
#   3. runs the integration tests with credsync under valgrind memcheck (smaller fleets):
#      any memcheck error or definite leak fails the run.
# .ci/run runs exactly this.
set -euo pipefail
export CREDSYNC_PACKAGES_EXTRA="chromium valgrind clang libclang-rt-14-dev"
source "$(dirname "$0")/../contrib/setup.sh"
credsync_install_missing

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

phase "integration tests with credsync under valgrind memcheck"
(cd "$BUILD" &&
 CREDSYNC_WRAPPER="valgrind --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite --track-fds=no" \
 CREDSYNC_TEST_SCALE=0.05 \
 ctest --output-on-failure -j"$jobs" -L integration -E 'it\.(sim|html_render|docs)$' --timeout 2400)

echo
echo "== all passed in $((SECONDS - start))s"
