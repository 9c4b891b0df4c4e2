#!/bin/sh
# Reading commands leave no -wal/-shm beside a trace nobody else has open,
# and leave a live recorder's alone: what it recorded is all there.
. "$(dirname "$0")/lib.sh"
expect_status 0 mt gen --model mixtral-8x7b --steps 40 -q "$T/t.db"
for c in "info" "balance" "compare --steps 0:19" "sql --format csv" "top --snapshot"; do
	if [ "$c" = "sql --format csv" ]; then
		expect_status 0 mt sql --format csv "$T/t.db" "SELECT count(*) FROM steps"
	else
		# shellcheck disable=SC2086
		expect_status 0 mt $c "$T/t.db"
	fi
	[ ! -e "$T/t.db-wal" ] && [ ! -e "$T/t.db-shm" ] || fail "'moetrace $c' left $(ls "$T" | tr '\n' ' ')"
done

"$MOETRACE" record --model mixtral-8x7b --steps 0 --rate 200 --run live "$T/live.db" >"$T/rec.out" 2>&1 &
rec=$!
i=0
until [ -e "$T/live.db-wal" ]; do i=$((i + 1)); [ $i -lt 100 ] || fail "record made no -wal"; sleep 0.1; done
for n in 1 2 3 4 5; do
	expect_status 0 mt info "$T/live.db"
	[ -e "$T/live.db-wal" ] || fail "a reader removed the live recorder's -wal"
	sleep 0.1
done
kill -INT $rec
wait $rec || fail "record failed: $(cat "$T/rec.out")"
recorded=$(sed -n 's/^recorded \([0-9]*\),.*/\1/p' "$T/rec.out")
[ -n "$recorded" ] && [ "$recorded" -gt 0 ] || fail "record said: $(cat "$T/rec.out")"
expect_status 0 mt sql --format csv "$T/live.db" "SELECT count(*) FROM steps"
[ "$(tail -n 1 "$T/out")" = "$recorded" ] || fail "recorded $recorded, the trace holds $(tail -n 1 "$T/out")"
[ ! -e "$T/live.db-wal" ] && [ ! -e "$T/live.db-shm" ] || fail "files left after the last reader: $(ls "$T")"
