#!/bin/sh
# SIGHUP (the terminal or ssh session closing) stops record as SIGINT and
# SIGTERM do: it flushes what it took, closes the file and reports, and its
# count is what the file holds.  Before, SIGHUP killed it outright.  Under
# --rate a signal takes no step of its own.
. "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || skip "no sqlite3 shell"
db="$T/h.db"
steps() { sqlite3 "$db" "SELECT count(*) FROM steps" 2>/dev/null || echo 0; }
# wait_steps N PID: until the file holds N steps (without a clock)
wait_steps() {
	i=0
	while [ "$(steps)" -lt "$1" ]; do
		i=$((i + 1))
		[ $i -lt 3000 ] || { kill "$2"; fail "record wrote fewer than $1 steps"; }
		kill -0 "$2" 2>/dev/null || { cat "$T/bg.out"; fail "record died before the signal"; }
		sleep 0.01
	done
}
"$MOETRACE" record --model mixtral-8x7b --steps 0 --rate 200 --batch 4 --block --run hup "$db" \
	>"$T/bg.out" 2>&1 &
pid=$!
# until some batches are in the file
wait_steps 8 $pid
kill -HUP $pid
wait $pid
rc=$?
[ $rc -eq 0 ] || { cat "$T/bg.out"; fail "record exited $rc on SIGHUP, not 0"; }
expect_grep "$T/bg.out" ", interrupted$"
n=$(steps)
grep -q "^recorded $n, dropped 0, failed 0;" "$T/bg.out" ||
	{ cat "$T/bg.out"; fail "the summary does not count the $n stored steps"; }

# under --rate, a signal that ends the wait for the next step takes no
# step: one a second, stopped a fraction of a second after the second
db="$T/r.db"
"$MOETRACE" record --model mixtral-8x7b --steps 0 --rate 1 --batch 1 --block --run r "$db" \
	>"$T/bg.out" 2>&1 &
pid=$!
wait_steps 2 $pid
sleep 0.2
before=$(steps)
kill -INT $pid
wait $pid || { cat "$T/bg.out"; fail "record exited $? on SIGINT"; }
[ "$(steps)" = "$before" ] || fail "$(steps) steps after SIGINT, $before before it: a step taken off the rate"
exit 0
