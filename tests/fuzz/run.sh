#!/bin/sh
# Runs every libFuzzer target of `make fuzz` for a bounded time.
# Usage: sh tests/fuzz/run.sh FUZZ_DIR SECONDS [TARGET-FILTER]
# Each target starts from its seed corpus (tests/fuzz/corpus/<X>/, never
# written) plus the inputs it found before (FUZZ_DIR/corpus/<X>/, kept
# between runs); crashers go to FUZZ_DIR/crashes/<X>-*; the log of each run
# is FUZZ_DIR/<X>.log.  A crasher worth keeping is copied into the seed
# corpus as crash-<what> so that `make check` replays it from then on.
# Prints one line per target: executions, coverage (edges), features,
# corpus size; exits 1 if any target crashed.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-build/fuzz}
secs=${2:-60}
filter=${3:-}
bad=0
mkdir -p "$dir/crashes"
for bin in "$dir"/fuzz_*; do
	[ -x "$bin" ] || continue
	t=${bin##*/fuzz_}
	case "$t" in *"$filter"*) ;; *) continue ;; esac
	mkdir -p "$dir/corpus/$t"
	log="$dir/$t.log"
	"$bin" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$dir/crashes/$t-" "$dir/corpus/$t" "$top/tests/fuzz/corpus/$t" \
		>"$log" 2>&1
	rc=$?
	last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
	if [ $rc -eq 0 ]; then
		echo "ok      fuzz_$t: ${execs:-?} executions in ${secs} s, cov ${cov:-?} edges, ft ${ft:-?}, corpus ${corp:-?}"
	else
		bad=1
		echo "FAIL    fuzz_$t (exit $rc): ${execs:-?} executions; see $log and $dir/crashes/"
		grep -E 'ERROR|invariant|SUMMARY' "$log" | head -n 5 | sed 's/^/        /'
	fi
done
exit $bad
