#!/bin/sh
# kill -9 of a recording process at random moments leaves a database that
# opens, passes PRAGMA integrity_check, reads with `moetrace info`, and
# holds whole steps only, without holes (the blocking policy drops nothing,
# so a kill can only lose the tail: the batch in flight and the ring).
# MOETRACE_KILL_ROUNDS sets the number of kills (default 30).
. "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || skip "no sqlite3 shell"
rounds=${MOETRACE_KILL_ROUNDS:-30}
db="$T/k.db"
seed=$$
has_steps() { # RUN: the run has steps in the file
	n=$(sqlite3 "$db" "SELECT count(*) FROM steps s JOIN runs r USING (run)
		WHERE r.name = '$1'" 2>/dev/null) && [ "${n:-0}" -gt 0 ]
}
i=0
while [ $i -lt "$rounds" ]; do
	i=$((i + 1))
	# a new file every 10 rounds: each kill still lands on a file that
	# holds the runs of earlier kills, and PRAGMA integrity_check, which
	# reads the whole file each round, does not grow with all 30
	if [ $((i % 10)) = 1 ] && [ $i -gt 1 ]; then
		rm -f "$db" "$db-wal" "$db-shm"
	fi
	# a delay in [0, 0.6) s: sometimes during creation, mostly mid-batch
	delay=$(awk -v s="$seed" -v i="$i" 'BEGIN { srand(s + i); printf "%.3f", rand() * 0.6 }')
	killable "$MOETRACE" record --model deepseek-v2-lite --steps 1000000 --block --batch 8 \
		--run "k$i" "$db" >/dev/null 2>"$T/rec.err"
	pid=$!
	if [ $i -eq 1 ]; then
		# the first kill lands mid-recording, however busy the machine:
		# once the run has steps in the file
		wait_until 120 has_steps "k1" || fail "round 1: no step recorded in 120 s"
		delay="the first steps"
	else
		sleep "$delay"
		delay="${delay}s"
	fi
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	killed_reports
	[ -e "$db" ] || continue # killed before the file was created: nothing to check
	ic=$(sqlite3 "$db" "PRAGMA integrity_check" 2>&1)
	steps_seen=$(sqlite3 "$db" "SELECT count(*) FROM steps")
	[ "$ic" = ok ] || fail "round $i (kill after ${delay}): integrity_check says: $ic"
	"$MOETRACE" info "$db" >"$T/info" 2>&1 || { cat "$T/info"; fail "round $i: info fails"; }
	# whole steps: every step has all 26 layers; no holes: steps are 0..n-1
	chk=$(sqlite3 "$db" "SELECT r.name, (SELECT count(*) FROM steps s WHERE s.run = r.run),
		(SELECT coalesce(max(step) + 1, 0) FROM steps s WHERE s.run = r.run),
		(SELECT count(*) FROM counts c WHERE c.run = r.run) FROM runs r
		WHERE r.name = 'k$i'")
	echo "$chk" | awk -F'|' -v r="$i" '$1 != "" && ($2 != $3 || $4 != 26 * $2) {
		print "round " r ": run " $1 ": " $2 " steps, max+1 " $3 ", " $4 " counts rows"; bad = 1 }
		END { exit bad }' || fail "half-written or missing steps"
done
[ "${steps_seen:-0}" -gt 0 ] || fail "no round recorded any step: the kills came too early"
# the surviving file still takes new runs
expect_status 0 mt record --model deepseek-v2-lite --steps 3 --run after "$db"
expect_status 0 mt info "$db"
expect_grep "$T/out" "'after'"
exit 0
