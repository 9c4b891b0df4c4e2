#!/bin/sh
# An allocation that fails on the sink's path (check build: the Nth
# library allocation fails, MOETRACE_TEST_FAIL_ALLOC=N) never ends the
# process: starting the sink fails with exit 1 "out of memory", a failed
# shipment is a failed attempt retried later, and the server ends with the
# file's copy, each step once.  `push` fails the same way (exit 1) and a
# second push completes the copy.  Against a real ClickHouse server started
# here; the sanitizers catch what an error path would leak.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ch.sh"

case "$MOETRACE" in
*/build/check/*) ;;
*) skip "the allocation hook is in the check build only" ;;
esac
ch_new "$T/ch"
URL="clickhouse://127.0.0.1:$CH_HTTP"
q() { ch_q "$CH_HTTP" "$@"; }
# same_as_file DB SERVER-URL: info (but the first line and storage) agrees
same_as_file() {
	expect_status 0 mt info "$1"
	tail -n +2 "$T/out" | grep -v '^  storage' >"$T/info.file"
	expect_status 0 mt info "$2"
	tail -n +2 "$T/out" | grep -v '^  storage' >"$T/info.url"
	diff "$T/info.file" "$T/info.url" >&2 || fail "info: the server differs from $1"
}

# 1. record --sink with each of these allocations failing in turn
retried=0
for n in 1 2 3 6 12 24 48; do
	env MOETRACE_TEST_FAIL_ALLOC=$n "$MOETRACE" record --model mixtral-8x7b --steps 40 \
		--rate 400 --run r$n --sink "$URL/nomem?deployment=d$n" "$T/r$n.db" >"$T/out" 2>"$T/err"
	st=$?
	if [ $st = 1 ]; then
		expect_grep "$T/err" "^moetrace record: cannot ship: out of memory$"
		continue
	fi
	[ $st = 0 ] || { cat "$T/out" "$T/err" >&2; fail "record with allocation $n failing exited $st"; }
	rec=$(sed -n 's/^recorded \([0-9]*\), dropped .*/\1/p' "$T/out")
	expect_grep "$T/out" "^sink $URL/nomem\?deployment=d$n: shipped $rec, skipped 0, retries [01]$"
	grep -q "retries 1$" "$T/out" && retried=$((retried + 1))
	same_as_file "$T/r$n.db" "$URL/nomem?deployment=d$n&run=r$n"
done
[ $retried -ge 3 ] || fail "only $retried runs met a failed allocation: is the hook built in?"
[ "$(q nomem "SELECT count() = uniqExact(run, step, layer) FROM counts")" = 1 ] ||
	fail "a step was shipped twice"
[ "$(q nomem "SELECT count() = uniqExact(run, step) FROM steps")" = 1 ] ||
	fail "a steps row was shipped twice"

# 2. push: exit 1 saying why, and a second push completes the copy
expect_status 0 mt gen --model mixtral-8x7b --steps 300 --seed 4 --run p "$T/p.db"
failed=0
for n in 4 12 30; do
	env MOETRACE_TEST_FAIL_ALLOC=$n "$MOETRACE" push "$T/p.db" "$URL/push$n" >"$T/out" 2>"$T/err"
	st=$?
	if [ $st = 1 ]; then
		expect_grep "$T/err" "out of memory"
		failed=$((failed + 1))
	else
		[ $st = 0 ] || { cat "$T/err" >&2; fail "push with allocation $n failing exited $st"; }
	fi
	expect_status 0 mt push "$T/p.db" "$URL/push$n"
	same_as_file "$T/p.db" "$URL/push$n?deployment=p&run=p"
done
[ $failed -ge 2 ] || fail "only $failed pushes met a failed allocation"
exit 0
