#!/bin/sh
# JSON lines carry a run's deployed placements: export writes one line per
# step at which a placement took effect (the one in force at the first
# exported step included), import stores them with the run in one
# transaction, so a round trip keeps what `info`, `balance` and the
# deployed table say.  Placements that do not fit the run, or a --deployed
# map beside them, are refused (exit 2, line and field named, nothing
# written).  A CSV export, which holds heat alone, says on stderr what it
# leaves out.
. "$(dirname "$0")/lib.sh"
D="$MOETRACE_TOP/tests/data"

# rows DB RUN, bal DB RUN [options]: the deployed rows, and balance's report
# without its first line (which names the run)
rows() { sqlite3 "$1" "SELECT step, layer, ranks, slots, hex(phy2log) FROM deployed
	WHERE run = (SELECT run FROM runs WHERE name = '$2') ORDER BY step, layer"; }
bal() { db=$1; shift; mt balance "$db" --run "$@" | tail -n +2; }

# a placement from the first step (import --deployed)
expect_status 0 mt import "$D/heat.csv" --into "$T/db" --run a --deployed "$D/deployed/expert_map.json"
expect_status 0 mt export "$T/db" --run a --format jsonl -o "$T/a.jsonl"
expect_grep "$T/a.jsonl" '^\{"deployed":10,"ranks":2,"slots":3,"phy2log":\[\[0,1,3,2,3,0\],\[1,2,0,3,1,2\]\]\}$'
expect_status 0 mt import "$T/a.jsonl" --into "$T/db" --run a2
expect_status 0 mt info "$T/db" --run a2
expect_grep "$T/out" "deployed +placement recorded"
[ "$(rows "$T/db" a)" = "$(rows "$T/db" a2)" ] || fail "the deployed rows changed through JSON lines"
[ "$(bal "$T/db" a)" = "$(bal "$T/db" a2)" ] || fail "balance changed through JSON lines"
expect_status 0 mt export "$T/db" --run a2 --format jsonl -o "$T/a2.jsonl"
[ "$(tail -n +2 "$T/a.jsonl")" = "$(tail -n +2 "$T/a2.jsonl")" ] || fail "a second export differs"

# a placement changed mid-run (deploy_mid_run writes run 1), and a range
# that starts after it took effect
G=$T/g.db
expect_status 0 mt gen --model mixtral-8x7b --steps 40 --seed 5 --ranks 4 --slots 3 --run g -q "$G"
deploy_mid_run "$G" 20
expect_status 0 mt export "$G" --run g --format jsonl -o "$T/g.jsonl"
expect_status 0 mt import "$T/g.jsonl" --into "$G" --run g2
[ -n "$(rows "$G" g)" ] && [ "$(rows "$G" g)" = "$(rows "$G" g2)" ] ||
	fail "a mid-run placement changed through JSON lines"
[ "$(bal "$G" g)" = "$(bal "$G" g2)" ] || fail "balance of a mid-run placement changed"
expect_status 0 mt export "$G" --run g --format jsonl -o "$T/g30.jsonl" --steps 30:39
[ "$(grep -c '^{"deployed":20,' "$T/g30.jsonl")" = 1 ] ||
	fail "the placement in force at step 30 is not in the range's file"
expect_status 0 mt import "$T/g30.jsonl" --into "$G" --run g30
[ "$(bal "$G" g --steps 30:39)" = "$(bal "$G" g30)" ] || fail "balance of a range changed"
expect_status 0 mt export "$G" --run g --format jsonl -o "$T/g10.jsonl" --steps 0:10
expect_nogrep "$T/g10.jsonl" '"deployed"'

# CSV holds no placement, and says so
expect_status 0 mt export "$T/db" --run a --format csv -o "$T/a.csv"
expect_grep "$T/err" "note: run 'a' has a deployed placement, which a CSV does not hold"
expect_status 0 mt gen --model mixtral-8x7b --steps 2 --run plain -q "$T/db"
expect_status 0 mt export "$T/db" --run plain --format csv -o "$T/p.csv"
expect_nogrep "$T/err" "note"

# refused: nothing written
bad() {
	expect_status 2 mt import "$T/bad.jsonl" --into "$T/new.db" "$@"
	[ ! -e "$T/new.db" ] || fail "a refused import left a database"
}
head -n 1 "$T/a.jsonl" >"$T/h"
tail -n +3 "$T/a.jsonl" >"$T/recs"
put() { { cat "$T/h"; printf '%s\n' "$@"; cat "$T/recs"; } >"$T/bad.jsonl"; }
put '{"deployed":10,"ranks":2,"slots":3,"phy2log":[[0,1,3,2,3,0],[1,2,0,3,1,2]]}'
bad --deployed "$D/deployed/expert_map.json"
expect_grep "$T/err" "bad.jsonl:2: the file carries the run's deployed placements: --deployed '.*expert_map.json' would replace them"
bad --ranks 3 --slots 2
expect_grep "$T/err" "bad.jsonl:2: fields 'ranks', 'slots': a placement of 2 ranks x 3 slots, the run has 3 x 2"
put '{"deployed":10,"ranks":2,"slots":3,"phy2log":[[0,1,3,2,3,0]]}'
bad
expect_grep "$T/err" "bad.jsonl:2: field 'phy2log': 1 layers, the run has 2 MoE layers"
put '{"deployed":10,"ranks":2,"slots":3,"phy2log":[[0,1,3,2,3,0],[1,2,0,1,1,2]]}'
bad
expect_grep "$T/err" "bad.jsonl:2: field 'phy2log'\\[1\\]: expert 3 has no slot"
put '{"deployed":10,"ranks":2,"slots":3,"phy2log":[[0,1,3,2,3,0],[1,2,0,3,1,4]]}'
bad
expect_grep "$T/err" "bad.jsonl:2: field 'phy2log'\\[1\\]: slot 5 \\(rank 1\\) holds expert 4, out of range"
put '{"deployed":10,"ranks":2,"slots":3,"phy2log":[[0,1,3,2,3,0],[1,2,0,3,1]]}'
bad
expect_grep "$T/err" "bad.jsonl:2: field 'phy2log'\\[1\\]: not an array of 6 expert ids"
put '{"deployed":10,"ranks":2,"slots":3,"phy2log":[[0,1,3,2,3,0],[1,2,0,3,1,2.0]]}'
bad
expect_grep "$T/err" "bad.jsonl:2: field 'phy2log'\\[1\\]\\[5\\]: 2.0 is not an expert id"
put '{"deployed":11,"ranks":2,"slots":3,"phy2log":[[0,1,3,2,3,0],[1,2,0,3,1,2]]}' \
	'{"deployed":11,"ranks":2,"slots":3,"phy2log":[[0,1,3,2,3,0],[1,2,0,3,1,2]]}'
bad
expect_grep "$T/err" "bad.jsonl:3: field 'deployed': step 11 after the placement of step 11 \\(line 2\\)"
put '{"deployed":9007199254740992,"ranks":2,"slots":3,"phy2log":[[0,1,3,2,3,0],[1,2,0,3,1,2]]}'
bad
expect_grep "$T/err" "bad.jsonl:2: field 'deployed': 9007199254740992 is out of range"
# into an existing database: it is left as it was
before=$(sqlite3 "$T/db" "SELECT count(*) FROM runs; SELECT count(*) FROM deployed")
put '{"deployed":10,"ranks":2,"slots":3,"phy2log":[[0,1,3,2,3,0],[1,2,0,1,1,2]]}'
expect_status 2 mt import "$T/bad.jsonl" --into "$T/db" --run b
[ "$(sqlite3 "$T/db" "SELECT count(*) FROM runs; SELECT count(*) FROM deployed")" = "$before" ] ||
	fail "a refused import changed the database"

# files without placement lines read as before
expect_status 0 mt import "$D/jsonl/heat.jsonl" --into "$T/db" --run old
expect_status 0 mt info "$T/db" --run old
expect_grep "$T/out" "deployed +none"
exit 0
