#!/bin/sh
# Processes creating and writing the same new database at once, with real
# processes.  A failing import, gen or merge into a database that did not
# exist removes only what it created itself (a private file it renames into
# place on success), never the database another process created and wrote
# meanwhile; two processes creating one database both succeed, whichever
# comes first; an interrupted gen leaves no file.
. "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || skip "no sqlite3 shell"
command -v mkfifo >/dev/null || skip "no mkfifo"
M=mixtral-8x7b # 32 layers x 8 experts

runs() { sqlite3 "$1" "SELECT group_concat(name, ',') FROM (SELECT name FROM runs ORDER BY name)"; }
# whole DB RUN STEPS: the run has its steps, each with every layer
whole() {
	got=$(sqlite3 "$1" "SELECT (SELECT count(*) FROM steps s WHERE s.run = r.run) || ' ' ||
		(SELECT count(*) FROM counts c WHERE c.run = r.run) FROM runs r WHERE name = '$2'")
	[ "$got" = "$3 $((32 * $3))" ] || fail "$1: run $2 has steps and counts rows '$got', not $3 whole steps"
}
no_staging_left() {
	! ls "$T" | grep -q '\.new-' || fail "staging files left: $(ls "$T" | grep '\.new-')"
}

# 20 steps of 2 layers x 8 experts
awk 'BEGIN { print "step,layer,expert,tokens"
	for (s = 0; s < 20; s++) for (l = 0; l < 2; l++) for (e = 0; e < 8; e++)
		print s "," l "," e "," (s + l + e) % 7 }' >"$T/t.csv"

# An import that is going to fail is held after it has written its steps
# (inside its transaction): its --deployed placement is a FIFO, which it
# opens only then, so it waits until a writer opens it too; then it refuses
# it as not a regular file.  While it
# is held, another process creates the same database and writes to it.
# hold DB NAME: starts such an import; returns once it is held
hold() {
	rm -f "$T/fifo"
	mkfifo "$T/fifo"
	"$MOETRACE" import "$T/t.csv" --into "$1" --run "$2" --deployed "$T/fifo" \
		>"$T/held.out" 2>"$T/held.err" &
	held=$!
	# should the import die before it opens the FIFO, the open below would
	# wait for ever: a watchdog opens the FIFO for reading after 60 s
	(
		trap 'kill $s 2>/dev/null; exit 0' TERM
		sleep 60 &
		s=$!
		wait $s
		exec 0<"$T/fifo"
	) >/dev/null 2>&1 &
	dog=$!
	exec 3>"$T/fifo"
	kill $dog 2>/dev/null
}
# release: lets the held import go on and fail, naming the FIFO (fd 3 stays
# open until it is done: its second open needs a writer)
release() {
	# the import may refuse the FIFO as soon as it has opened it, before
	# reading: then nothing reads, and the write must not kill this shell
	(trap '' PIPE; printf '%0300d' 0 >&3) 2>/dev/null
	wait $held
	rc=$?
	exec 3>&-
	[ $rc -ne 0 ] || { cat "$T/held.out"; fail "the held import succeeded"; }
	expect_grep "$T/held.err" "fifo.*not a regular file"
}

# ---- a failing import does not remove the database gen created meanwhile
hold "$T/a.db" doomed
expect_status 0 mt gen --model $M --steps 30 --run other -q "$T/a.db"
release
[ "$(runs "$T/a.db")" = other ] || fail "a.db holds runs '$(runs "$T/a.db")', not other"
whole "$T/a.db" other 30

# ---- two imports into one new database, the first fails: the second keeps its run
hold "$T/b.db" doomed
expect_status 0 mt import "$T/t.csv" --into "$T/b.db" --run good
release
[ "$(runs "$T/b.db")" = good ] || fail "b.db holds runs '$(runs "$T/b.db")', not good"
[ "$(sqlite3 "$T/b.db" "SELECT count(*) FROM steps")" = 20 ] || fail "b.db: steps lost"

# ---- a merge failing into a new database leaves nothing either
expect_status 0 mt record --model $M --steps 4 --shard 0 --run s "$T/s0.db"
expect_status 2 mt merge "$T/m.db" "$T/s0.db"
[ ! -e "$T/m.db" ] || fail "a refused merge left m.db"
no_staging_left

# ---- two processes creating the same new database: both runs, whole, in
# every round (before: "table runs already exists" or "database is locked")
i=0
while [ $i -lt 4 ]; do
	i=$((i + 1))
	db="$T/c$i.db"
	[ $((i % 2)) = 0 ] && : >"$db" # an empty file someone created: same race in place
	"$MOETRACE" gen --model $M --steps 25 --seed 1 --run x -q "$db" 2>"$T/x.err" &
	a=$!
	"$MOETRACE" gen --model $M --steps 15 --seed 2 --run y -q "$db" 2>"$T/y.err" &
	b=$!
	wait $a || { cat "$T/x.err"; fail "round $i: the first gen failed"; }
	wait $b || { cat "$T/y.err"; fail "round $i: the second gen failed"; }
	[ "$(runs "$db")" = x,y ] || fail "round $i: runs '$(runs "$db")', not x,y"
	whole "$db" x 25
	whole "$db" y 15
done
no_staging_left

# ---- a gen interrupted while it writes a new database leaves no file at all
# (before: a 4 KiB file and its log); if it finished first, the run is whole
"$MOETRACE" gen --model deepseek-v3 --steps 1000000 -q "$T/i.db" 2>/dev/null &
pid=$!
started() { kill -0 $pid 2>/dev/null && [ -n "$(ls "$T" | grep '^i\.db')" ]; }
wait_until 120 started || fail "gen did not start writing i.db"
kill -TERM $pid
wait $pid
[ ! -e "$T/i.db" ] || fail "an interrupted gen left i.db"
no_staging_left
exit 0
