#!/bin/sh
# Runs every test: cmocka unit tests, fuzz corpus replays, CLI tests.
# MOETRACE_BUILD: build dir holding moetrace and tests/ (build/check by default).
# Usage: sh tests/run.sh [unit|fuzz|cli|py] [NAME-FILTER]
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${MOETRACE_BUILD:-build/check}
case "$build" in /*) ;; *) build="$top/$build" ;; esac
only=${1:-all}
filter=${2:-}
export MOETRACE="$build/moetrace"
[ -x "$MOETRACE" ] || MOETRACE="$top/moetrace"
export MOETRACE_TOP="$top"
[ -z "${MOETRACE_LIB:-}" ] && [ -f "$build/libmoetrace.so" ] && export MOETRACE_LIB="$build/libmoetrace.so"
export MOETRACE_SHARED="${MOETRACE_SHARED:-$top/../shared}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
pass=0; fail=0; skip=0; failed=""

run_one() { # name command...
	name=$1; shift
	out=$(mktemp)
	"$@" >"$out" 2>&1
	rc=$?
	if [ $rc -eq 0 ]; then
		pass=$((pass + 1)); echo "ok      $name"
	elif [ $rc -eq 77 ]; then
		skip=$((skip + 1)); echo "skip    $name: $(tail -n 1 "$out")"
	else
		fail=$((fail + 1)); failed="$failed $name"
		echo "FAIL    $name (exit $rc)"; sed 's/^/        /' "$out" | tail -n 60
	fi
	rm -f "$out"
}

if [ "$only" = all ] || [ "$only" = unit ]; then
	for t in "$build"/tests/test_*; do
		[ -x "$t" ] || continue
		case "$(basename "$t")" in *"$filter"*) ;; *) continue ;; esac
		# cmocka prints its own summary lines; show them
		echo "== $(basename "$t")"
		"$t"
		rc=$?
		if [ $rc -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); failed="$failed $(basename "$t")"; fi
	done
fi
if [ "$only" = all ] || [ "$only" = fuzz ]; then
	for t in "$build"/fuzz/fuzz_*; do
		[ -x "$t" ] || continue
		n=$(basename "$t")
		case "$n" in *"$filter"*) ;; *) continue ;; esac
		run_one "$n corpus" "$t" "$top/tests/fuzz/corpus/${n#fuzz_}"
	done
fi
if [ "$only" = all ] || [ "$only" = cli ]; then
	for t in "$top"/tests/cli/[0-9]*.sh; do
		[ -f "$t" ] || continue
		n=$(basename "$t" .sh)
		case "$n" in *"$filter"*) ;; *) continue ;; esac
		run_one "$n" sh "$t"
	done
fi
if [ "$only" = all ] || [ "$only" = py ]; then
	for t in "$top"/tests/py/test_*.py; do
		[ -f "$t" ] || continue
		n=$(basename "$t" .py)
		case "$n" in *"$filter"*) ;; *) continue ;; esac
		run_one "$n" python3 "$t"
	done
fi
echo
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
