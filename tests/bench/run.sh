#!/usr/bin/env bash
# tests/bench/run.sh - every benchmark in one command, on credsync-sim over 127.0.0.1:
# installs what is missing (Debian 12, as root), builds, runs tests/bench/bench.py and prints
# each figure beside its target.  Arguments go to bench.py (--only NAME..., --runs N, --quick).
# Benchmark 3 needs Node.js and npm (the official SDK peer installs its packages from npm).
set -euo pipefail
export CREDSYNC_PACKAGES_EXTRA="linux-perf"
command -v node >/dev/null && command -v npm >/dev/null || CREDSYNC_PACKAGES_EXTRA+=" nodejs npm"
source "$(dirname "$0")/../../contrib/setup.sh"
credsync_install_missing
credsync_build
# Nothing but loopback is contacted: the ECS metadata provider of the default chain is off.
export ALIBABA_CLOUD_ECS_METADATA_DISABLED=true
exec python3 "$CREDSYNC_ROOT/tests/bench/bench.py" --build "$BUILD" "$@"
