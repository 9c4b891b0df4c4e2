#!/bin/sh
# Readers work while `moetrace record` writes: `moetrace info` keeps
# succeeding with a growing step count, and a reader never sees a step
# without all its layers.  The recording goes on until the readers have
# read enough (SIGINT), however slow a loaded machine makes them.
. "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || skip "no sqlite3 shell"
db="$T/live.db"
"$MOETRACE" record --model deepseek-v2-lite --steps 0 --rate 100 --batch 4 --block --run live \
	"$db" >"$T/rec.out" 2>&1 &
pid=$!
last=-1 reads=0 grew=0 end=$(($(date +%s) + 300))
while kill -0 $pid 2>/dev/null; do
	[ "$(date +%s)" -lt $end ] || { kill $pid; fail "$reads reads, $grew of them growing, in 300 s"; }
	[ -e "$db" ] || { sleep 0.05; continue; }
	"$MOETRACE" info "$db" >"$T/info" 2>&1 || { cat "$T/info"; fail "info failed while recording"; }
	# before the first batch commits, the run exists with "steps  none"
	n=$(sed -n -e 's/^ *steps *none.*/0/p' -e 's/^ *steps *\([0-9][0-9]*\).*/\1/p' "$T/info")
	[ -n "$n" ] || { cat "$T/info"; fail "info shows no step line"; }
	[ "$n" -ge "$last" ] || fail "step count went down: $last then $n"
	[ "$n" -gt "$last" ] && [ "$last" -ge 0 ] && grew=$((grew + 1))
	last=$n
	half=$(sqlite3 -cmd ".timeout 5000" "$db" "SELECT (SELECT count(*) FROM counts) - 26 * (SELECT count(*) FROM steps)")
	[ "$half" = 0 ] || fail "a reader saw a step without all its layers ($half rows off)"
	reads=$((reads + 1))
	[ $reads -ge 5 ] && [ $grew -ge 2 ] && kill -INT $pid
	sleep 0.1
done
wait $pid || { cat "$T/rec.out"; fail "record failed"; }
[ $reads -ge 5 ] || { cat "$T/rec.out"; fail "record stopped after only $reads reads"; }
expect_grep "$T/rec.out" "interrupted"
# what the recorder says it recorded is in the file, whole, steps 0 .. n-1
n=$(sed -n 's/^recorded \([0-9]*\), dropped.*/\1/p' "$T/rec.out")
[ -n "$n" ] && [ "$n" -gt 0 ] || { cat "$T/rec.out"; fail "no 'recorded N' line"; }
expect_status 0 mt info "$db"
expect_grep "$T/out" "steps +$n \(0 \.\. $((n - 1))\)"
