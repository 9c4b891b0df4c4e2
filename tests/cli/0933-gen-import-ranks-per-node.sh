#!/bin/sh
# A run's nodes are 0 (unknown) or a divisor of its ranks: replay, place
# and compare price copies by node and refuse any other ("the run's ranks
# per node 3 does not divide 4 ranks").  gen and import refuse such a
# --ranks-per-node, and import a JSON description's ranks_per_node, up
# front (exit 2, nothing written), instead of storing what every analysis
# of the run would then refuse; a default node size that does not divide
# the ranks is recorded as unknown.
. "$(dirname "$0")/lib.sh"
D="$MOETRACE_TOP/tests/data"

refused() { # DB REGEX CMD...
	db=$1 re=$2; shift 2
	expect_status 2 mt "$@"
	expect_grep "$T/err" "$re"
	[ ! -e "$db" ] || fail "a refused '$1' left $db"
}
refused "$T/g.db" "^moetrace gen: --ranks-per-node 3 does not divide 4 ranks$" \
	gen --model mixtral-8x7b --ranks-per-node 3 --steps 5 -q "$T/g.db"
refused "$T/i.db" "^moetrace import: --ranks-per-node 3 does not divide 4 ranks$" \
	import "$D/heat.csv" --into "$T/i.db" --ranks 4 --slots 1 --ranks-per-node 3
# the preset's 8 ranks on nodes of 3
refused "$T/i.db" "^moetrace import: --ranks-per-node 3 does not divide 8 ranks$" \
	import "$D/heat.csv" --into "$T/i.db" --model deepseek-v2-lite --layers 26 --ranks-per-node 3
printf '%s\n' '{"moetrace":1,"layers":1,"experts":2,"ranks":2,"slots":1,"ranks_per_node":3}' \
	'{"step":0,"layer":0,"counts":[1,2]}' >"$T/j.jsonl"
refused "$T/j.db" "j.jsonl: the description's ranks per node 3 does not divide its 2 ranks" \
	import "$T/j.jsonl" --into "$T/j.db"
# an existing database is left as it was
expect_status 0 mt gen --model mixtral-8x7b --steps 3 -q "$T/ok.db"
sum=$(cksum <"$T/ok.db")
expect_status 2 mt import "$T/j.jsonl" --into "$T/ok.db"
[ "$(cksum <"$T/ok.db")" = "$sum" ] || fail "a refused import changed ok.db"

# what stays accepted, and replays: a divisor, one node, no nodes known
expect_status 0 mt gen --model mixtral-8x7b --ranks-per-node 2 --steps 5 -q --run two "$T/ok.db"
expect_status 0 mt import "$D/heat.csv" --into "$T/ok.db" --run four --ranks 4 --slots 1 --ranks-per-node 4
# 12 ranks: the preset's nodes of 8 do not divide them, so none is recorded
expect_status 0 mt gen --model deepseek-v3 --ranks 12 --steps 2 -q --run twelve "$T/ok.db"
[ "$(sqlite3 "$T/ok.db" "SELECT group_concat(name || ' ' || ranks || '/' || ranks_per_node, ', ')
	FROM (SELECT * FROM runs ORDER BY run)")" = "gen-mixtral-8x7b-seed1 4/4, two 4/2, four 4/4, twelve 12/0" ] ||
	fail "runs: $(sqlite3 "$T/ok.db" "SELECT name, ranks, ranks_per_node FROM runs")"
expect_status 0 mt replay "$T/ok.db" --run two --no-store --window 2 --interval 2
expect_status 0 mt replay "$T/ok.db" --run twelve --no-store --window 2 --interval 2 --ranks-per-node 4
printf '%s\n' '{"moetrace":1,"layers":1,"experts":2,"ranks":12,"slots":1}' \
	'{"step":0,"layer":0,"counts":[1,2]}' >"$T/j12.jsonl"
expect_status 0 mt import "$T/j12.jsonl" --into "$T/ok.db" --run j12
[ "$(sqlite3 "$T/ok.db" "SELECT ranks_per_node FROM runs WHERE name = 'j12'")" = 0 ] ||
	fail "12 ranks on a default of 8 per node were recorded"
exit 0
