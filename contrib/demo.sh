#!/usr/bin/env bash
# contrib/demo.sh - the main job on the bundled simulator: installs what is missing, builds,
# starts credsync-sim on a free port, runs `credsync sync` on config/demo.yaml, shows what was
# stored, changes the simulated fleet, syncs again and shows the diff.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
credsync_install_missing
credsync_build

work=$(mktemp -d /tmp/credsync-demo.XXXXXX)
sim_pid=
cleanup() { [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

# The simulator's demo credentials; the secret travels in the environment, never in argv.
export ALIBABA_CLOUD_ACCESS_KEY_ID=testid
export ALIBABA_CLOUD_ACCESS_KEY_SECRET=testsecret
export CREDSYNC_SIM_ACCESS_KEY_SECRET=testsecret
# Nothing but loopback is contacted: the ECS metadata provider of the default chain is off.
export ALIBABA_CLOUD_ECS_METADATA_DISABLED=true

"$BUILD/bin/credsync-sim" --listen 127.0.0.1:0 --port-file "$work/port" \
	--instances 2 --groups 3 --devices 250 --fault SystemOverFlow=0.1 --seed 42 \
	2>"$work/sim.log" &
sim_pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
port=$(cat "$work/port")
sed -e "s#http://127.0.0.1:18080#http://127.0.0.1:$port#" \
    -e "s#^database: .*#database: $work/demo.db#" "$CREDSYNC_ROOT/config/demo.yaml" >"$work/demo.yaml"

# Shows each command as a user would type it, then runs it.
cs() { echo; echo "\$ credsync -c demo.yaml $*"; "$BUILD/bin/credsync" -c "$work/demo.yaml" "$@"; }

echo "== credsync-sim on 127.0.0.1:$port (10% SystemOverFlow throttling injected)"
cs check --online
cs -v sync
echo
echo "\$ sqlite3 demo.db 'SELECT ... FROM snapshots'"
sqlite3 -header -column "$work/demo.db" \
	"SELECT snapshot_id, instance_id, group_id, status, client_count, added, removed, consistent FROM snapshots"
echo
echo "\$ sqlite3 demo.db 'SELECT ... FROM current_clients LIMIT 5'"
sqlite3 -header -column "$work/demo.db" \
	"SELECT instance_id, group_id, client_id, device_id, first_seen_at FROM current_clients ORDER BY 1, 2, 3 LIMIT 5"
sqlite3 "$work/demo.db" "SELECT 'runs: ' || run_id || ' ' || status || ', ' || requests || ' requests, ' || throttled || ' throttled, ' || retries || ' retried' FROM runs"

echo
echo "== the fleet changes: 3 devices gain a credential and 2 lose theirs in GID_sim_1"
curl -fsS -X POST "http://127.0.0.1:$port/_sim/mutate?add=3&remove=2&instance=mqtt-sim-1&group=GID_sim_1" >/dev/null
cs sync
cs diff
cs diff --format html -o "$work/report.html"
echo "(HTML report: $work/report.html)"
cs snapshots --limit 4
echo
echo "demo finished: database $work/demo.db"
