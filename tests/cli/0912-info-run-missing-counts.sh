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
exit 0
