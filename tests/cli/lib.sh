# Helpers for CLI tests: sourced by tests/cli/NNNN-*.sh.
# $MOETRACE is the binary under test, $MOETRACE_SHARED the shared data dir.
set -u
T=$(mktemp -d "${TMPDIR:-/tmp}/moetrace-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
# a test stopped with SIGTERM (tests/run.sh passes a Ctrl-C on as one, and
# so does its time limit) exits through its EXIT trap, which stops what it
# started (tmux and other servers): sh runs no EXIT trap on a signal it
# does not catch
trap 'exit 143' TERM
trap 'exit 129' HUP
# MOETRACE_VALGRIND=1 (make check-valgrind) runs the binary under valgrind:
# a memory error or leak makes the command exit 99.
if [ "${MOETRACE_VALGRIND:-0}" = 1 ]; then
	mt() { valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect -q "$MOETRACE" "$@"; }
else
	mt() { "$MOETRACE" "$@"; }
fi
fail() { echo "FAIL: $*" >&2; exit 1; }
# stop_left DIR: for an EXIT trap, kills what is still running with DIR (a
# test's $T) in its command line: a program a killed terminal left behind.
# Under the sanitizers a program whose terminal is hung up while it exits
# can spin in LeakSanitizer's stop-the-world for ever, one core at 100 %.
stop_left() { pkill -KILL -f "$1/" 2>/dev/null || :; }
skip() { echo "$*"; exit 77; }
# expect_status N cmd...: runs cmd, output in $T/out and $T/err
expect_status() {
	want=$1; shift
	"$@" >"$T/out" 2>"$T/err"
	got=$?
	[ "$got" -eq "$want" ] || { cat "$T/out" "$T/err" >&2; fail "'$*' exited $got, expected $want"; }
}
# expect_grep FILE PATTERN: FILE must match the extended regex
expect_grep() { grep -Eq -- "$2" "$1" || { echo "--- $1:" >&2; cat "$1" >&2; fail "no line matching /$2/ in $1"; }; }
expect_nogrep() { ! grep -Eq -- "$2" "$1" || { cat "$1" >&2; fail "unexpected /$2/ in $1"; }; }
shared_or_skip() { [ -d "$MOETRACE_SHARED/data" ] || skip "no shared data beside the repository"; }
# same_file A B: byte-identical
same_file() { cmp -s "$1" "$2" || fail "$1 and $2 differ"; }
# wait_until SECONDS CMD...: runs CMD every 0.1 s until it succeeds; returns 1
# if it still fails after SECONDS on the clock.  A bound for a loaded machine
# (tests run in parallel), never a speed asked of the code: be generous.
wait_until() {
	_wu_end=$(($(date +%s) + $1))
	shift
	until "$@"; do
		[ "$(date +%s)" -lt "$_wu_end" ] || return 1
		sleep 0.1
	done
}
# killable CMD...: runs CMD (in the background, as `CMD &` would: its PID in
# $!) for a test that kills it with SIGKILL at a random moment.  Its
# sanitizer reports go to $T/killed-san/, not to the test's own report
# directory (tests/run.sh fails a test on any report there): a kill that
# lands while LeakSanitizer scans the exiting process leaves a report of
# LeakSanitizer's own failure ("Unable to get registers from thread N"),
# which says nothing was checked, not that anything is wrong.
# killed_reports then fails the test on any other report, and clears them.
killable() {
	mkdir -p "$T/killed-san"
	ASAN_OPTIONS="${ASAN_OPTIONS:-}:log_path=$T/killed-san/report" "$@" &
}
killed_reports() {
	for _kr in "$T"/killed-san/report.*; do
		[ -f "$_kr" ] || continue
		if grep -Ev -e 'Unable to get registers from thread' \
			-e 'LeakSanitizer has encountered a fatal error' -e '^(==[0-9]+==)?HINT: ' -e '^ *$' \
			"$_kr" >/dev/null; then
			cat "$_kr" >&2
			fail "a killed process left a sanitizer report: $_kr"
		fi
		rm -f "$_kr"
	done
}
# free_port: a TCP port of 127.0.0.1 free now (the kernel's pick, released)
# have_torch: Debian's python3-torch is installed (found, not imported:
# importing it costs two seconds of CPU)
have_torch() { /usr/bin/python3 -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("torch") is None)' 2>/dev/null; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# deploy_mid_run DB STEP: records in run 1 of DB (a Mixtral-8x7B trace at 4
# ranks x 3 slots, as `gen --model mixtral-8x7b` makes it) a placement
# deployed from STEP on in all 32 layers: rank r holds 2r, 2r+1, (2r+4) mod 8
deploy_mid_run() {
	_dm_hex=""
	for _dm_r in 0 1 2 3; do
		for _dm_e in $((2 * _dm_r)) $((2 * _dm_r + 1)) $(((2 * _dm_r + 4) % 8)); do
			_dm_hex="$_dm_hex$(printf '%02x000000' "$_dm_e")"
		done
	done
	_dm_q=""
	for _dm_l in $(seq 0 31); do
		_dm_q="$_dm_q INSERT INTO deployed VALUES (1, $2, $_dm_l, 4, 3, X'$_dm_hex');"
	done
	"$MOETRACE" sql --write "$1" "$_dm_q" >/dev/null || fail "cannot record a deployed placement in $1"
}
