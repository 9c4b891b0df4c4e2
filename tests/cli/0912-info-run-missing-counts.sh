#!/bin/sh
# info --run follows the rule of every command's --run: the run of that
# name, else the run of that id; a run that does not exist is exit 2
# naming it.  Counts rows a step lacks (deleted by hand) read as zero heat:
# info counts them, and the analysing commands warn before their output.
. "$(dirname "$0")/lib.sh"

expect_status 0 mt gen --model mixtral-8x7b --steps 10 --run first -q "$T/db"
expect_status 0 mt gen --model mixtral-8x7b --steps 12 --run 1 -q "$T/db"
expect_status 0 mt gen --model mixtral-8x7b --steps 14 --run third -q "$T/db"

expect_status 2 mt info --run NOSUCH "$T/db"
expect_grep "$T/err" "^moetrace info: no run named 'NOSUCH' in '.*db'"
[ ! -s "$T/out" ] || fail "info --run NOSUCH printed a listing"
expect_status 2 mt info --json --run 9 "$T/db"
expect_grep "$T/err" "no run named '9'"
# "1" is run 2's name and run 1's id: the name wins, as in balance
expect_status 0 mt info --run 1 "$T/db"
expect_grep "$T/out" "^run 2 '1'"
expect_nogrep "$T/out" "^run 1 "
expect_grep "$T/out" "steps      12 "
expect_status 0 mt balance --run 1 "$T/db"
expect_grep "$T/out" "^run '1': .* 12 steps"
# an id no run is named after selects by id
expect_status 0 mt info --run 3 "$T/db"
expect_grep "$T/out" "^run 3 'third'"
[ "$(grep -c '^run ' "$T/out")" = 1 ] || fail "info --run 3 listed more than one run"

# ---- missing counts rows
expect_status 0 mt info --run third "$T/db"
expect_nogrep "$T/out" "counts .* missing"
expect_status 0 mt sql --write "$T/db" "DELETE FROM counts WHERE run = 3 AND step = 4 AND layer < 3;
	DELETE FROM counts WHERE run = 3 AND step = 9 AND layer = 31"
expect_status 0 mt info --run third "$T/db"
expect_grep "$T/out" "^  counts     4 of 448 rows \\(step x layer\\) missing: they read as zero heat$"
expect_status 0 mt info --json --run third "$T/db"
expect_grep "$T/out" "\"missing_counts\": 4,"
expect_status 0 mt info --json --run first "$T/db"
expect_grep "$T/out" "\"missing_counts\": 0,"
warn="warning: run 'third' lacks 4 counts rows \\(step x layer; moetrace info shows them\\): they read as zero heat"
for c in balance "place -o $T/p.json" compare "replay --window 4 --interval 4 --no-store" \
	"render -o $T/h.png" "report -o $T/rep"; do
	case $c in render*) set -- $c --run third "$T/db" heatmap ;; *) set -- $c --run third "$T/db" ;; esac
	expect_status 0 mt "$@"
	expect_grep "$T/err" "^moetrace ${c%% *}: $warn$"
done
# a complete run gets no warning
expect_status 0 mt balance --run first "$T/db"
[ ! -s "$T/err" ] || fail "balance warned about a complete run"

# a file of one run counts its counts rows another way (the whole table):
# the same answer, also with a row of a run that is not there
expect_status 0 mt gen --model mixtral-8x7b --steps 10 --run only -q "$T/one.db"
expect_status 0 mt sql --write "$T/one.db" "DELETE FROM counts WHERE step = 2 AND layer < 5"
expect_status 0 mt info "$T/one.db"
expect_grep "$T/out" "^  counts     5 of 320 rows \\(step x layer\\) missing: they read as zero heat$"
expect_status 0 mt sql --write "$T/one.db" "INSERT INTO counts SELECT 7, step, layer, data FROM counts WHERE step = 3"
expect_status 0 mt info "$T/one.db"
expect_grep "$T/out" "^  counts     5 of 320 rows \\(step x layer\\) missing: they read as zero heat$"

# steps/s is the engine's rate (its step ids over the recorded time, as
# top counts it); with holes, info gives the recorded rate beside it:
# steps 0-6 over 6 s, 3 and 4 not recorded: 1.0 steps/s, 0.7 recorded
for s in 0 1 2 5 6; do
	printf '{"step":%d,"layer":0,"counts":[1,2],"time":%d}\n' "$s" "$s"
done >"$T/holes.jsonl"
expect_status 0 mt import "$T/holes.jsonl" --into "$T/h.db" --run holes
expect_status 0 mt info "$T/h.db"
expect_grep "$T/out" "^  steps      5 \(0 \.\. 6\), 2 missing$"
expect_grep "$T/out" "^  duration   6\.0 s \(1\.0 steps/s, 0\.7 of them recorded\)$"
exit 0
