#!/bin/sh
# SIGHUP (the terminal or ssh session closing) stops record as SIGINT and
# SIGTERM do: it flushes what it took, closes the file and reports, and its
# count is what the file holds.  Before, SIGHUP killed it outright.
. "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || skip "no sqlite3 shell"
db="$T/h.db"
steps() { sqlite3 "$db" "SELECT count(*) FROM steps" 2>/dev/null || echo 0; }
"$MOETRACE" record --model mixtral-8x7b --steps 0 --rate 200 --batch 4 --block --run hup "$db" \
	>"$T/bg.out" 2>&1 &
pid=$!
# wait (without a clock) until some batches are in the file
i=0
while [ "$(steps)" -lt 8 ]; do
	i=$((i + 1))
	[ $i -lt 3000 ] || { kill $pid; fail "record wrote no steps"; }
	kill -0 $pid 2>/dev/null || { cat "$T/bg.out"; fail "record died before SIGHUP"; }
	sleep 0.01
done
kill -HUP $pid
wait $pid
rc=$?
[ $rc -eq 0 ] || { cat "$T/bg.out"; fail "record exited $rc on SIGHUP, not 0"; }
expect_grep "$T/bg.out" ", interrupted$"
n=$(steps)
grep -q "^recorded $n, dropped 0, failed 0;" "$T/bg.out" ||
	{ cat "$T/bg.out"; fail "the summary does not count the $n stored steps"; }
exit 0
