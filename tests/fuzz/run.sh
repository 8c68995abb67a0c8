#!/usr/bin/env bash
# run.sh - builds the libFuzzer targets with clang and runs each one in turn.
#
#   tests/fuzz/run.sh [-b BUILD_DIR] [-t SECONDS] [-m] [TARGET...]
#
#   -b DIR   build directory (default: build-fuzz at the top of the checkout)
#   -t SECS  seconds per target (default 600)
#   -m       afterwards, merge what each run found into tests/fuzz/corpus/TARGET
#            (libFuzzer -merge=1: only inputs that reach new edges are copied)
#   TARGET   api, config, sign, ref (default: all four, one after another)
#
# Each target runs as one process (-jobs/-workers are not used, so it takes one core), on a
# working corpus DIR/fuzz-work/TARGET seeded from tests/fuzz/corpus/TARGET, so the committed
# corpus changes only with -m.  Crashes, leaks and failed invariants are written to
# DIR/fuzz-artifacts/TARGET/ and logs to DIR/fuzz-logs/TARGET.log.  The script prints each
# target's executions, exec/s, final cov/ft and peak RSS, and exits 1 if any target failed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/build-fuzz
secs=600
merge=0
while getopts "b:t:mh" opt; do
	case $opt in
	b) build=$OPTARG ;;
	t) secs=$OPTARG ;;
	m) merge=1 ;;
	*) sed -n '2,18p' "$0"; exit 64 ;;
	esac
done
shift $((OPTIND - 1))
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(api config sign ref)
case $build in /*) ;; *) build=$PWD/$build ;; esac

command -v clang >/dev/null || { echo "run.sh: clang is needed (apt-get install clang)" >&2; exit 1; }
CC=clang cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCREDSYNC_FUZZ=ON \
	>/dev/null || exit 1
mkdir -p "$build/fuzz-logs"
cmake --build "$build" -j "$(nproc)" --target "${targets[@]/#/fuzz_}" \
	>"$build/fuzz-logs/build.log" 2>&1 || {
	tail -20 "$build/fuzz-logs/build.log" >&2
	echo "run.sh: build failed, see $build/fuzz-logs/build.log" >&2
	exit 1
}

status=0
summary=()
for t in "${targets[@]}"; do
	bin=$build/bin/fuzz_$t
	work=$build/fuzz-work/$t
	arts=$build/fuzz-artifacts/$t
	log=$build/fuzz-logs/$t.log
	mkdir -p "$work" "$arts" "$(dirname "$log")"
	dict=()
	[ -f "$here/$t.dict" ] && dict=(-dict="$here/$t.dict")
	echo "== fuzz_$t for ${secs}s (log: $log)"
	# ASan's leak check runs after every input; UBSan reports abort the run
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		"$bin" "$work" "$here/corpus/$t" "${dict[@]}" -max_total_time="$secs" \
		-rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix="$arts/" \
		>"$log" 2>&1
	rc=$?
	last=$(grep -E '^#[0-9]+' "$log" | tail -1)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
	cov=$(sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\) corp: \([^ ]*\).*/cov \1 ft \2 corp \3/p' \
		<<<"$last")
	if [ $rc -ne 0 ]; then
		status=1
		grep -E 'ERROR|invariant failed|SUMMARY|Test unit written' "$log" | head -5
		summary+=("fuzz_$t  FAILED (exit $rc), see $log and $arts")
	else
		summary+=("fuzz_$t  execs ${execs:-?}  exec/s ${rate:-?}  ${cov:-?}  peak rss ${rss:-?} MB")
	fi
	if [ $merge -eq 1 ] && [ $rc -eq 0 ]; then
		# edges only (no hit counts), so that the committed corpus stays small
		"$bin" -merge=1 -use_counters=0 "$here/corpus/$t" "$work" >>"$log" 2>&1 ||
			echo "run.sh: merge into corpus/$t failed, see $log" >&2
		echo "   corpus/$t: $(ls "$here/corpus/$t" | wc -l) files," \
			"$(du -sh "$here/corpus/$t" | cut -f1)"
	fi
done
echo "== results (${secs}s each)"
printf '%s\n' "${summary[@]}"
exit $status
