# push --rollup-only and record --sink-rollup-only: only the sums of each
# complete window of N steps per layer reach a real ClickHouse server, and
# rollup_heat holds the file's sums per window to the last digit (negative
# steps included; the last, partial window stays in the file); a second
# push adds nothing; a server killed with -9 mid-push shows no partial
# window and the next push completes the run; a run is shipped one way
# only; the reading commands refuse a run shipped as rollups; the live
# sink in rollup-only mode ships the windows a push ships.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ch.sh"

ch_new "$T/ch"
HTTP=$CH_HTTP SERVER=$CH_PID
q() { ch_q "$HTTP" "$@"; }
URL="clickhouse://127.0.0.1:$HTTP"
N=10

# 57 steps from -23 (8 layers x 16 experts, some counts at the UInt32
# limit, so that a window's sums pass 2^32): windows [-30, -20) (3 steps)
# ... [20, 30), and the partial [30, 40) (steps 30..33), not shipped
python3 - >"$T/g.jsonl" <<'PY'
import json, random
rng = random.Random(7)
print(json.dumps({"moetrace": 1, "layers": 8, "experts": 16, "topk": 2}))
for s in range(-23, 34):
    c = [[rng.choice([4294967295, rng.randrange(1000)]) if rng.random() < 0.2
          else rng.randrange(1000) for _ in range(16)] for _ in range(8)]
    print(json.dumps({"step": s, "phase": "decode", "counts": c}))
PY
expect_status 0 mt import "$T/g.jsonl" --into "$T/g.db" --run neg
RUN=$(mt sql --format csv "$T/g.db" "SELECT name FROM runs" | tail -n 1)
# file_windows DB: layer, first step, steps, expert, tokens of the complete windows
file_windows() {
	mt sql --format csv "$1" "SELECT layer, w, count(DISTINCT step), expert, sum(tokens) FROM
		(SELECT layer, expert, tokens, step, (CASE WHEN step >= 0 THEN step / $N
		 ELSE (step + 1) / $N - 1 END) * $N AS w FROM expert_heat)
		WHERE w + $N - 1 <= (SELECT max(step) FROM steps)
		GROUP BY layer, w, expert ORDER BY layer, w, expert" | tail -n +2 | tr , '\t'
}
# server_windows DB DEPLOYMENT
server_windows() {
	q "$1" "SELECT layer, first_step, steps, i - 1 AS expert, x FROM rollup_heat
		ARRAY JOIN counts AS x, arrayEnumerate(counts) AS i WHERE deployment = '$2'
		ORDER BY layer, first_step, expert FORMAT TSV"
}
file_windows "$T/g.db" >"$T/file.win"
[ "$(cut -f2 "$T/file.win" | sort -un | tr '\n' ' ')" = "-30 -20 -10 0 10 20 " ] ||
	fail "unexpected windows in the file: $(cut -f2 "$T/file.win" | sort -un | tr '\n' ' ')"

# 1. a rollup-only push: rollup_heat equals the file's sums; no counts or steps rows
expect_status 0 mt push "$T/g.db" "$URL/r" --deployment a --rollup-steps $N --rollup-only
expect_grep "$T/out" "\\(rollups only\\): 53 steps in complete windows: 6 windows sent, 0 completed, 0 already there; .*4 steps \\(30\\.\\.33\\) wait for their window"
server_windows r a >"$T/a.win"
same_file "$T/file.win" "$T/a.win"
[ "$(q r "SELECT (SELECT count() FROM counts) + (SELECT count() FROM steps)")" = 0 ] ||
	fail "a rollup-only push sent counts or steps rows"
[ "$(q r "SELECT toTypeName(counts) FROM rollup_heat LIMIT 1")" = "Array(UInt64)" ] ||
	fail "rollup sums are not UInt64"

# ... the same rollup_heat as the server derives from a full-resolution push
expect_status 0 mt push "$T/g.db" "$URL/r" --deployment full
q r "SELECT layer, first_step, steps, i - 1 AS expert, x FROM rollup_heat
	ARRAY JOIN counts AS x, arrayEnumerate(counts) AS i WHERE deployment = 'full'
	AND first_step < 30 ORDER BY layer, first_step, expert FORMAT TSV" >"$T/full.win"
same_file "$T/file.win" "$T/full.win"

# 2. a second push adds nothing
before=$(q r "SELECT count() FROM rollup_shipped")-$(q r "SELECT count() FROM rollup_windows")
expect_status 0 mt push "$T/g.db" "$URL/r" --deployment a --rollup-only
expect_grep "$T/out" "53 steps in complete windows: 0 windows sent, 0 completed, 6 already there"
after=$(q r "SELECT count() FROM rollup_shipped")-$(q r "SELECT count() FROM rollup_windows")
[ "$before" = "$after" ] || fail "a second push added rows: $before -> $after"

# 3. one run, one way: both mixes refused (exit 2), nothing sent
expect_status 2 mt push "$T/g.db" "$URL/r" --deployment a
expect_grep "$T/err" "holds run '$RUN' of deployment 'a' as rollups only: shipping it at full resolution would mix both"
expect_status 2 mt push "$T/g.db" "$URL/r" --deployment full --rollup-only
expect_grep "$T/err" "holds run '$RUN' of deployment 'full' at full resolution: shipping it as rollups only would mix both"
[ "$(q r "SELECT count() FROM steps WHERE deployment = 'a'")" = 0 ] || fail "the refused push sent steps"

# 4. the reading commands refuse a run shipped as rollups, naming what is missing
expect_status 2 mt info "$URL/r?deployment=a"
expect_grep "$T/err" "run '$RUN' of deployment 'a' was shipped as rollups only .*not the steps and counts this command reads"
expect_status 2 mt balance "$URL/r?deployment=a&run=$RUN"
expect_grep "$T/err" "shipped as rollups only"
expect_status 0 mt info "$URL/r?deployment=full"

# 5. rows that arrived without their window's marker are checked and committed
expect_status 0 mt push "$T/g.db" "$URL/o" --deployment a --rollup-steps $N --rollup-only
q o "TRUNCATE TABLE rollup_windows"
q o "INSERT INTO rollup_windows SELECT * FROM r.rollup_windows WHERE first_step != 0"
[ "$(q o "SELECT count() FROM rollup_heat WHERE first_step = 0")" = 0 ] ||
	fail "a window without its marker is visible"
expect_status 0 mt push "$T/g.db" "$URL/o" --deployment a --rollup-only
expect_grep "$T/out" "0 windows sent, 1 completed, 5 already there"
server_windows o a >"$T/o.win"
same_file "$T/file.win" "$T/o.win"

# 5b. a schema 2 database (no tables of shipped rollups) is migrated to 3
# (and on to 4) by a rollup-only push, its full-resolution rollups kept
expect_status 0 mt push "$T/g.db" "$URL/two" --deployment full --rollup-steps $N
q two "DROP TABLE rollup_shipped"
q two "DROP TABLE rollup_windows"
q two "DROP TABLE rollup_heat"
q two "CREATE VIEW rollup_heat AS SELECT deployment, run, layer, first_step,
	countMerge(steps) AS steps, sumForEachMerge(counts) AS counts FROM counts_rollup
	GROUP BY deployment, run, layer, first_step" || fail "the old rollup_heat"
q two "DROP TABLE moetrace_meta"
q two "CREATE TABLE moetrace_meta ENGINE = TinyLog AS SELECT toUInt32(2) AS version,
	toUInt32($N) AS rollup_steps, '' AS cluster, now() AS created"
expect_status 0 mt push "$T/g.db" "$URL/two" --deployment a --rollup-only
[ "$(q two "SELECT version FROM moetrace_meta")" = 4 ] || fail "not migrated to schema 4"
server_windows two a >"$T/two.win"
same_file "$T/file.win" "$T/two.win"
[ "$(q two "SELECT count() FROM rollup_heat WHERE deployment = 'full'")" = 56 ] ||
	fail "the derived rollups after the migration"

# 6. kill -9 of the server mid-push (one window per INSERT): no partial
# window visible after the restart; the next push completes the run exactly
expect_status 0 mt gen --model deepseek-v3 --steps 120 --seed 4 -q "$T/k.db"
# crash_round DB: one push into DB, the server killed once two windows are
# in; fails if the kill left something wrong, returns 1 if the push had
# ended first (a busy machine let it run on between two looks: the round is
# repeated on a new database)
crash_round() {
	mt push "$T/k.db" "$URL/$1" --deployment k --rollup-steps $N --rollup-only --batch 1 \
		>"$T/kout" 2>"$T/kerr" &
	PUSH=$!
	i=0
	while kill -STOP $PUSH 2>/dev/null; do
		# ended (a zombie until waited for): no kill mid-push this round
		[ "$(cut -d' ' -f3 /proc/$PUSH/stat 2>/dev/null)" = Z ] && break
		[ "$(q "$1" "SELECT count() FROM rollup_shipped" 2>/dev/null || echo 0)" -ge 116 ] && break
		kill -CONT $PUSH
		i=$((i + 1)); [ $i -lt 3000 ] || break
		sleep 0.02
	done
	kill -9 "$SERVER"
	kill -CONT $PUSH 2>/dev/null
	ch_stop "$SERVER" KILL
	wait $PUSH
	st=$?
	ch_start "$T/ch" "$HTTP"
	SERVER=$CH_PID
	[ $st -eq 0 ] && return 1 # the push had ended
	[ $st -eq 1 ] || { cat "$T/kout" "$T/kerr" >&2; fail "push during the kill exited $st, expected 1"; }
	[ "$(q "$1" "SELECT count() FROM (SELECT first_step, count() AS n FROM rollup_heat
		GROUP BY first_step) WHERE n != 58")" = 0 ] || fail "a partial window is visible after the kill"
	[ "$(q "$1" "SELECT count() FROM rollup_windows")" -lt 12 ] || return 1
}
r=1
until crash_round crash$r; do
	r=$((r + 1))
	[ $r -le 5 ] || fail "the push ended before the kill in 5 rounds"
done
crash=crash$r
expect_status 0 mt push "$T/k.db" "$URL/$crash" --deployment k --rollup-only
file_windows "$T/k.db" >"$T/kfile.win"
server_windows $crash k >"$T/k.win"
same_file "$T/kfile.win" "$T/k.win"
[ "$(q $crash "SELECT count() = uniqExact(first_step, layer) FROM rollup_shipped")" = 1 ] ||
	fail "duplicate rollup rows after the kill"

# 7. the live sink in rollup-only mode ships the windows a push ships
# (the schema of N = 10 made first: the sink makes one of the default N)
expect_status 0 mt push "$T/g.db" "$URL/s" --deployment other --rollup-steps $N --rollup-only
expect_status 0 mt push "$T/g.db" "$URL/p" --deployment other --rollup-steps $N --rollup-only
expect_status 0 mt record --model deepseek-v3 --steps 57 --batch 8 --run live "$T/s.db" \
	--sink "$URL/s?deployment=live" --sink-rollup-only --sink-wait 60000
cp "$T/out" "$T/rec.out"
[ "$(q s "SELECT count() FROM steps")" = 0 ] || fail "the rollup-only sink sent steps"
expect_status 0 mt push "$T/s.db" "$URL/p" --deployment live --rollup-only
server_windows s live >"$T/s.win"
server_windows p live >"$T/p.win"
[ -s "$T/s.win" ] || fail "the sink shipped no window"
same_file "$T/p.win" "$T/s.win"
# the 57 steps: 0..49 shipped in 5 windows, the partial 50..56 skipped
expect_grep "$T/rec.out" "^sink .*: shipped 50, skipped 7"

# 8. the library's rollup-only sink from Python (a schema it creates: N = 100)
if [ -n "${MOETRACE_LIB:-}" ]; then
	expect_status 0 env PYTHONPATH="$MOETRACE_TOP/collector/python" python3 - "$T/py.db" "$URL/py?deployment=d4" <<'PY'
import sys, random
import moetrace
path, url = sys.argv[1:3]
r = moetrace.Recorder(path, "py", layers=4, experts=16, topk=2, ranks=4, slots=4,
                     block=True)  # every step recorded, however busy the machine
r.ship(url, rollup_only=True, wait_ms=60000)
rng = random.Random(3)
for s in range(450):
    r.step(s, [[rng.randrange(100) for _ in range(16)] for _ in range(4)])
r.close()
st = r.sink_stats()
assert st["shipped"] == 400 and st["skipped"] == 50 and st["lag"] == 0, st
PY
	[ "$(q py "SELECT (SELECT count() FROM steps) + (SELECT count() FROM counts)")" = 0 ] ||
		fail "the Python rollup-only sink sent steps or counts"
	expect_status 0 mt push "$T/py.db" "$URL/pyp" --deployment d4 --rollup-only
	server_windows py d4 >"$T/py.win"
	server_windows pyp d4 >"$T/pyp.win"
	[ "$(wc -l <"$T/py.win")" = $((4 * 4 * 16)) ] || fail "the Python sink's windows"
	same_file "$T/pyp.win" "$T/py.win"
fi
exit 0
