#!/bin/sh
# Runs the tests: cmocka unit tests, fuzz corpus replays, CLI tests, Python
# tests.  Each test is found by its file name (tests/unit/test_*.c built as
# BUILD/tests/test_*, tests/fuzz/fuzz_*.c as BUILD/fuzz/fuzz_*, tests/cli/
# NNNN-*.sh, tests/py/test_*.py): a new file is a new test, nothing to list.
#
# Usage: sh tests/run.sh [-j N] [unit|fuzz|cli|py|all] [NAME-FILTER]
#          runs the matching tests, N at a time (default: make's -j when run
#          from make, else 1), then prints the summary
#        sh tests/run.sh --list [KIND] [FILTER]   the tests, "KIND NAME" a line
#        sh tests/run.sh --one KIND NAME          runs one test, records its result
#        sh tests/run.sh --summary                summary of the recorded results
#
# Every test runs with its own TMPDIR and HOME (removed afterwards) and a
# time limit (MOETRACE_TEST_TIMEOUT seconds, 900 by default).  Results go to
# MOETRACE_RESULTS (a directory: KIND-NAME.log, the test's output, and
# KIND-NAME.res, "STATUS EXIT SECONDS"); a temporary one by default.
# The summary counts passed, failed and skipped tests, shows each failing
# test's output, and exits 1 if any failed or did not report.
# MOETRACE_BUILD: build dir holding moetrace and tests/ (build/check by default).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${MOETRACE_BUILD:-build/check}
case "$build" in /*) ;; *) build="$top/$build" ;; esac
export MOETRACE="$build/moetrace"
[ -x "$MOETRACE" ] || MOETRACE="$top/moetrace"
export MOETRACE_TOP="$top"
[ -z "${MOETRACE_LIB:-}" ] && [ -f "$build/libmoetrace.so" ] && export MOETRACE_LIB="$build/libmoetrace.so"
export MOETRACE_SHARED="${MOETRACE_SHARED:-$top/../shared}"
# tests run in their own directory: paths given relative to here made absolute
case "$MOETRACE_SHARED" in /*) ;; *) MOETRACE_SHARED="$PWD/$MOETRACE_SHARED" ;; esac
case "${MOETRACE_LIB:-/}" in /*) ;; *) MOETRACE_LIB="$PWD/$MOETRACE_LIB" ;; esac
# A quarantine of 32 MiB instead of 256: a freed block is still held back
# (a use after free of it is caught) until 32 MiB more have been freed.
# The default held so much that nearly every allocation of a long command
# touched fresh pages: 10% of the CPU of a replay or a report went there.
# handle_sigill: UBSan's checks trap (config.mk) and ASan reports the trap
# with its stack.  Each test adds log_path (one()): a report goes to a file
# of the test's, and any such file fails the test, whatever the exit status
# the test expected of the command that made it (a sanitizer exits 1, which
# a test of a refused input would otherwise take for the refusal).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:quarantine_size_mb=32:handle_sigill=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"

# list [KIND] [FILTER]: "KIND NAME" of every matching test
list() {
	only=${1:-all} filter=${2:-}
	case "$only" in all | unit | fuzz | cli | py) ;; *)
		echo "run.sh: unknown kind '$only' (unit, fuzz, cli, py or all)" >&2
		return 2 ;;
	esac
	for f in "$top"/tests/unit/test_*.c "$top"/tests/fuzz/fuzz_*.c \
		"$top"/tests/cli/[0-9]*.sh "$top"/tests/py/test_*.py; do
		[ -f "$f" ] || continue
		case "$f" in
		*/tests/unit/*) kind=unit n=$(basename "$f" .c) ;;
		*/tests/fuzz/*) kind=fuzz n=$(basename "$f" .c) ;;
		*/tests/cli/*) kind=cli n=$(basename "$f" .sh) ;;
		*) kind=py n=$(basename "$f" .py) ;;
		esac
		[ "$only" = all ] || [ "$only" = "$kind" ] || continue
		case "$n" in *"$filter"*) echo "$kind $n" ;; esac
	done
}

# lsan_internal DIR: every sanitizer report in DIR (at least one) is
# LeakSanitizer failing to run at a process's exit (its tracer thread
# crashed or could not stop the threads: "LeakSanitizer has encountered a
# fatal error"), none a finding of any sanitizer
lsan_internal() {
	_li=0
	for f in "$1"/report.*; do
		[ -f "$f" ] || continue
		grep -q "LeakSanitizer has encountered a fatal error" "$f" || return 1
		! grep -Eq "ERROR: (AddressSanitizer|LeakSanitizer: detected)|runtime error" "$f" || return 1
		_li=1
	done
	[ $_li = 1 ]
}

# one KIND NAME: runs the test, writes $R/KIND-NAME.{log,res}, prints a line
one() {
	kind=$1 n=$2
	base="$R/$kind-$n"
	case $kind in
	unit) set -- "$build/tests/$n" ;;
	fuzz) set -- "$build/fuzz/$n" "$top/tests/fuzz/corpus/${n#fuzz_}" ;;
	cli) set -- sh "$top/tests/cli/$n.sh" ;;
	py) set -- python3 "$top/tests/py/$n.py" ;;
	*) echo "run.sh: unknown kind '$kind'" >&2; return 2 ;;
	esac
	# a private temporary directory and home: no test sees another's files
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/moetrace-$kind-$n.XXXXXX") || return 1
	# traversable: 0901 runs commands as user nobody inside it
	chmod 755 "$tmp"
	mkdir "$tmp/home"
	# sanitizer reports, also of commands a test runs as user nobody
	mkdir -m 1777 "$tmp/sanitizer"
	# Debian's python3 is the tests' python3 (the one the project supports,
	# with Debian's numpy and torch), also when another comes first on the
	# PATH: a pyenv shim costs 250 ms a call, and the tests make hundreds
	mkdir "$tmp/bin"
	[ ! -x /usr/bin/python3 ] || ln -s /usr/bin/python3 "$tmp/bin/python3"
	t0=$(date +%s.%N)
	if [ "$kind" != cli ] && [ "$kind" != py ] && [ ! -x "$1" ]; then
		echo "not built: $1 (make check-build)" >"$base.log"
		rc=77
	else
		# a test under make must not think it is part of make's job (the
		# example's own make would warn about the jobserver).  timeout
		# runs the test in a process group of its own, which a Ctrl-C on
		# the terminal does not reach: this shell passes it on (timeout
		# signals the whole group), so that no test outlives the run.
		(cd "$tmp/home" && unset MAKEFLAGS MFLAGS MAKELEVEL &&
			TMPDIR="$tmp" HOME="$tmp/home" PATH="$tmp/bin:$PATH" \
			ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$tmp/sanitizer/report" exec timeout -k 10 \
			"${MOETRACE_TEST_TIMEOUT:-900}" "$@") >"$base.log" 2>&1 </dev/null &
		tpid=$!
		trap 'kill -TERM $tpid 2>/dev/null; interrupted=1' INT TERM HUP
		interrupted=0
		wait $tpid
		rc=$?
		# wait returns early when a trapped signal comes: then once more
		[ $interrupted = 0 ] || { wait $tpid; rc=$?; }
		trap - INT TERM HUP
	fi
	secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	# CPU seconds (user + system) of the test's processes: this shell runs
	# one test, so its children's times are the test's (what make check's
	# wall time is made of on a busy machine; --summary lists the largest)
	# (`times` in this shell itself: in a pipe or $(...) it would report
	# a subshell's children)
	times >"$base.times"
	cpu=$(awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } printf "%.1f", t }' "$base.times")
	rm -f "$base.times"
	# LeakSanitizer that failed to run is no finding of the test's: once,
	# the test runs again, and its log keeps the first run below
	if [ $rc -ne 0 ] && [ $rc -ne 77 ] && [ "${interrupted:-0}" = 0 ] &&
		[ -z "${one_again:-}" ] && lsan_internal "$tmp/sanitizer"; then
		{ echo "run.sh: the run before failed only because LeakSanitizer itself did (not a"
		  echo "finding; the test ran again, above); its output and reports:"
		  cat "$base.log" "$tmp"/sanitizer/report.*; } >"$base.first"
		rm -rf "$tmp"
		one_again=1
		one "$kind" "$n"
		one_again=
		cat "$base.first" >>"$base.log"
		rm -f "$base.first"
		return 0
	fi
	# a sanitizer report (report.PID) fails the test and goes into its log
	for f in "$tmp"/sanitizer/report.*; do
		[ -f "$f" ] || continue
		{ echo "run.sh: sanitizer report ${f##*/}:"; cat "$f"; } >>"$base.log"
		[ $rc -ne 0 ] && [ $rc -ne 77 ] || rc=86
	done
	rm -rf "$tmp"
	[ "${interrupted:-0}" = 0 ] || { echo "INT     $kind $n"; exit 130; }
	if [ $rc -eq 0 ]; then
		st=ok
		echo "ok      $kind $n ($secs s)"
	elif [ $rc -eq 77 ]; then
		st=skip
		echo "skip    $kind $n: $(tail -n 1 "$base.log")"
	else
		st=FAIL
		[ $rc -eq 124 ] && echo "run.sh: timed out after ${MOETRACE_TEST_TIMEOUT:-900} s" >>"$base.log"
		echo "FAIL    $kind $n (exit $rc, $secs s)"
	fi
	echo "$st $rc $secs ${cpu:-0}" >"$base.res"
}

# summary [KIND] [FILTER]: counts over the tests list gives; exit 1 on any failure
summary() {
	pass=0 fail=0 skip=0 failed=""
	list "$@" >"$R/list" || return 2
	while read -r kind n; do
		res="$R/$kind-$n.res"
		st=missing
		[ -f "$res" ] && read -r st _ <"$res"
		case $st in
		ok) pass=$((pass + 1)) ;;
		skip) skip=$((skip + 1)) ;;
		*)
			fail=$((fail + 1)) failed="$failed $n"
			echo
			if [ "$st" = missing ]; then
				echo "---- $kind $n: did not run (no result)"
			else
				echo "---- $kind $n: failed (exit $(cut -d' ' -f2 "$res")), last lines of its output:"
				tail -n 60 "$R/$kind-$n.log" | sed 's/^/        /'
			fi
			;;
		esac
	done <"$R/list"
	echo
	# the five tests that took the most CPU: where make check's time goes
	for f in "$R"/*.res; do
		[ -f "$f" ] || continue
		read -r _ _ w c <"$f"
		b=${f##*/}
		echo "${c:-0} $w ${b%.res}"
	done | sort -rn | head -n 5 | awk 'NR == 1 { printf "most CPU:" } { printf " %s %s s (%s s wall)", $3, $1, $2 } END { if (NR) print "" }'
	[ -n "$failed" ] && echo "failed:$failed"
	echo "$pass passed, $fail failed, $skip skipped"
	[ $fail -eq 0 ]
}

# make's -j (MAKEFLAGS holds " -j2 --jobserver..." or " -j" for no limit)
make_jobs() {
	for w in ${MAKEFLAGS:-}; do
		case $w in
		-j) nproc 2>/dev/null || echo 2; return ;;
		-j[0-9]*) echo "${w#-j}"; return ;;
		esac
	done
	echo 1
}

fresh_results() {
	if [ -n "${MOETRACE_RESULTS:-}" ]; then
		R=$MOETRACE_RESULTS
		mkdir -p "$R"
	else
		R=$(mktemp -d "${TMPDIR:-/tmp}/moetrace-results.XXXXXX") || exit 1
		trap 'rm -rf "$R"' EXIT
	fi
}

case "${1:-}" in
--list)
	shift
	list "$@"
	exit
	;;
--one)
	[ $# -eq 3 ] || { echo "usage: run.sh --one KIND NAME" >&2; exit 2; }
	R=${MOETRACE_RESULTS:?run.sh --one: set MOETRACE_RESULTS}
	mkdir -p "$R"
	one "$2" "$3"
	exit
	;;
--summary)
	shift
	R=${MOETRACE_RESULTS:?run.sh --summary: set MOETRACE_RESULTS}
	summary "$@"
	exit
	;;
esac

jobs=$(make_jobs)
if [ "${1:-}" = -j ]; then
	jobs=${2:?run.sh: -j needs a number}
	shift 2
elif [ "${1#-j}" != "${1:-}" ]; then
	jobs=${1#-j}
	shift
fi
case "$jobs" in '' | *[!0-9]* | 0) echo "run.sh: bad job count '$jobs'" >&2; exit 2 ;; esac
fresh_results
list "$@" >"$R/list" || exit 2
[ -s "$R/list" ] || { echo "run.sh: no ${1:-} test matches '${2:-}'" >&2; exit 2; }
# the test itself is picked by --one in a fresh shell, N at a time
export MOETRACE_RESULTS="$R" MOETRACE_BUILD="$build"
# shellcheck disable=SC2016
xargs -r -P "$jobs" -L 1 sh -c 'exec sh "$0" --one "$1" "$2"' "$0" <"$R/list"
summary "$@"
