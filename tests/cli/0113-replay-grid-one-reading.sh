# moetrace replay reads a trace once for many replays (docs/replay.md,
# "Threads"): a --grid's rows are the figures of the same settings replayed
# one by one, on one thread or on three, and a stored replay writes the same
# rows whether its reader thread writes them or the replay's own thread.
. "$(dirname "$0")/lib.sh"

expect_status 0 mt gen --model deepseek-v2-lite --steps 240 --seed 5 "$T/db" -q

# The grid, on one thread and on the reader and two scoring threads: the
# same rows.  interval 40 and 60, redundant 0 and 16 (two start layouts,
# so two baselines), pay no and yes: 8 combinations.
grid="algos=eplb redundant=0,16 interval=40,60 pay=no,yes"
expect_status 0 mt replay "$T/db" --grid $grid --delay 5 --format csv --threads 1
cp "$T/out" "$T/grid1.csv"
expect_status 0 mt replay "$T/db" --grid $grid --delay 5 --format csv
cmp -s "$T/out" "$T/grid1.csv" || fail "grid rows differ between one thread and three: $(diff "$T/grid1.csv" "$T/out")"
[ "$(wc -l <"$T/out")" -eq 9 ] || fail "grid should print a header and 8 rows: $(cat "$T/out")"

# Each row equals its settings replayed alone (the text of both prints the
# figures at 6 decimals).
python3 - "$T/out" >"$T/rows" <<'PY' || fail "cannot read the grid's CSV"
import csv, sys
for r in csv.DictReader(open(sys.argv[1])):
    print(r["slots"], r["interval"], r["pay"], r["imbalance_mean"],
          r["baseline_imbalance_mean"], r["imbalance_p99"], r["events"], r["moves"],
          r["net_stop_seconds"])
PY
[ "$(wc -l <"$T/rows")" -eq 8 ] || fail "8 rows expected: $(cat "$T/rows")"
while read -r slots k pay mean base p99 ev mv net; do
	payflag=; [ "$pay" = yes ] && payflag=--pay
	expect_status 0 mt replay "$T/db" --algo eplb --slots "$slots" --interval "$k" --delay 5 \
		$payflag --no-store --json
	python3 - "$T/out" "$mean" "$base" "$p99" "$ev" "$mv" "$net" <<'PY' ||
import json, sys
o = json.load(open(sys.argv[1]))["summary"]
got = ["%.6f" % o["imbalance_mean"], "%.6f" % o["baseline_imbalance_mean"],
       "%.6f" % o["imbalance_p99"], str(o["events"]), str(o["moves"]),
       "%.6f" % o["net_stop_seconds"]]
want_ = sys.argv[2:]
sys.exit(0 if got == want_ else "single replay %s, grid row %s" % (got, want_))
PY
		fail "slots=$slots interval=$k pay=$pay: the grid's row is not the replay's"
done <"$T/rows"

# A stored replay: the same rows with the reader thread writing them
# (--threads 2) as with one thread doing everything.
for t in 1 2; do
	expect_status 0 mt replay "$T/db" --algo eplb --interval 50 --delay 5 --threads $t --json
	id=$(sed -n 's/^{"replay": \([0-9]*\),.*/\1/p' "$T/out")
	[ -n "$id" ] || fail "threads $t: no replay id"
	for tb in replay_steps replay_layers replay_event_layers; do
		sqlite3 "$T/db" "SELECT * FROM $tb WHERE replay = $id" | cut -d'|' -f2- >"$T/$tb.$t"
	done
	sqlite3 "$T/db" "SELECT event, step, effective_step, layers, moves, bytes FROM replay_events
		WHERE replay = $id" >"$T/replay_events.$t"
done
[ "$(wc -l <"$T/replay_steps.1")" -eq $((240 * 26)) ] ||
	fail "one row per step and layer expected: $(wc -l <"$T/replay_steps.1")"
for tb in replay_steps replay_layers replay_event_layers replay_events; do
	cmp -s "$T/$tb.1" "$T/$tb.2" || fail "$tb differs between --threads 1 and 2"
done
[ -s "$T/replay_events.1" ] || fail "the stored replay made no rebalance"

# A malformed blob half-way: every way of reading stops with the step and
# layer named, exit 2, and a stored replay leaves no row behind.
cp "$T/db" "$T/bad.db"
sqlite3 "$T/bad.db" "UPDATE counts SET data = x'01ff07' WHERE step = 100 AND layer = 3"
for t in 1 2; do
	expect_status 2 mt replay "$T/bad.db" --grid algos=eplb interval=40,60 --threads $t
	expect_grep "$T/err" "step 100 layer 3: malformed counts blob"
	expect_status 2 mt replay "$T/bad.db" --algo eplb --interval 40 --threads $t
	expect_grep "$T/err" "step 100 layer 3: malformed counts blob"
	expect_status 2 mt replay "$T/bad.db" --algo eplb --interval 40 --threads $t --no-store
	expect_grep "$T/err" "step 100 layer 3: malformed counts blob"
done
[ "$(sqlite3 "$T/bad.db" "SELECT count(*) FROM replays WHERE run = (SELECT run FROM runs LIMIT 1)")" -eq \
	"$(sqlite3 "$T/db" "SELECT count(*) FROM replays")" ] || fail "a failed replay left a row"
[ "$(sqlite3 "$T/bad.db" "SELECT count(*) FROM replay_steps")" -eq \
	"$(sqlite3 "$T/db" "SELECT count(*) FROM replay_steps")" ] || fail "a failed replay left step rows"
