#!/bin/sh
# The per-step fields of JSON lines — time, tokens, phase — survive an
# export and re-import exactly, and the importer never picks one of two
# values it was given: records of one step that disagree on time or tokens,
# a field given twice on one line, a non-finite time and a description of
# another format version are refused (exit 2, file, line and field named,
# no database written), and so is a record of layer rows shorter than the
# run's layers.
. "$(dirname "$0")/lib.sh"

# a recorded trace: its times carry sub-microsecond digits
expect_status 0 mt gen --model mixtral-8x7b --steps 30 --seed 3 --run orig -q "$T/db"
expect_status 0 mt sql "$T/db" "UPDATE steps SET tokens = 0 WHERE step % 7 = 0" --write
expect_status 0 mt export "$T/db" --run orig --format jsonl -o "$T/h.jsonl"
expect_status 0 mt import "$T/h.jsonl" --into "$T/db" --run back
same=$(sqlite3 "$T/db" "SELECT count(*) FROM steps a JOIN steps b USING (step)
	WHERE a.run = 1 AND b.run = 2 AND a.time = b.time AND a.tokens = b.tokens AND a.phase = b.phase")
[ "$same" = 30 ] || fail "only $same of 30 steps kept time, tokens and phase through JSON lines"
# and a second round writes the same file
expect_status 0 mt export "$T/db" --run back --format jsonl -o "$T/h2.jsonl"
[ "$(tail -n +2 "$T/h.jsonl")" = "$(tail -n +2 "$T/h2.jsonl")" ] || fail "the second export differs"

# the EP layout's nodes too (they price the copies between ranks), and
# --ranks-per-node alone puts the data's ranks on other nodes
expect_status 0 mt gen --model mixtral-8x7b --steps 3 --ranks 4 --slots 3 --ranks-per-node 2 --run nodes -q "$T/db"
expect_status 0 mt export "$T/db" --run nodes --format jsonl -o "$T/n.jsonl"
expect_status 0 mt import "$T/n.jsonl" --into "$T/db" --run nodes2
expect_status 0 mt import "$T/n.jsonl" --into "$T/db" --run nodes1 --ranks-per-node 1
[ "$(sqlite3 "$T/db" "SELECT group_concat(name || ' ' || ranks || 'x' || slots || '/' || ranks_per_node, ', ')
	FROM (SELECT * FROM runs WHERE name LIKE 'nodes%' ORDER BY run)")" = "nodes 4x3/2, nodes2 4x3/2, nodes1 4x3/1" ] ||
	fail "ranks per node changed through JSON lines"

# times at the edges of a double
printf '%s\n' '{"step":0,"layer":0,"counts":[1,2],"time":1e-300,"tokens":0}' \
	'{"step":1,"layer":0,"counts":[1,2],"time":1731000000.1234567,"tokens":9007199254740991}' >"$T/edge.jsonl"
expect_status 0 mt import "$T/edge.jsonl" --into "$T/db" --run edge
expect_status 0 mt export "$T/db" --run edge --format jsonl -o "$T/edge2.jsonl"
expect_status 0 mt import "$T/edge2.jsonl" --into "$T/db" --run edge2
[ "$(sqlite3 "$T/db" "SELECT count(*) FROM steps a JOIN steps b USING (step) WHERE
	a.run = (SELECT run FROM runs WHERE name = 'edge') AND b.run = (SELECT run FROM runs WHERE name = 'edge2')
	AND a.time = b.time AND a.tokens = b.tokens")" = 2 ] || fail "edge times or tokens changed"
[ "$(sqlite3 "$T/db" "SELECT time > 0 FROM steps WHERE run = (SELECT run FROM runs WHERE name = 'edge2') AND step = 0")" = 1 ] ||
	fail "a time of 1e-300 came back as 0"

# refused, and nothing written
bad() {
	printf '%s\n' "$@" >"$T/bad.jsonl"
	expect_status 2 mt import "$T/bad.jsonl" --into "$T/new.db"
	[ ! -e "$T/new.db" ] || fail "a refused import left a database"
}
bad '{"step":0,"layer":0,"counts":[1,2],"time":5}' '{"step":0,"layer":1,"counts":[1,2],"time":6}'
expect_grep "$T/err" "bad.jsonl:2: field 'time': step 0 has time 6 here but 5 at .*bad.jsonl:1"
bad '{"step":0,"layer":0,"counts":[1,2],"tokens":5}' '{"step":0,"layer":1,"counts":[1,2],"tokens":6}'
expect_grep "$T/err" "bad.jsonl:2: field 'tokens': step 0 has 6 tokens here but 5 at .*bad.jsonl:1"
bad '{"step":0,"step":5,"layer":0,"counts":[1,2]}'
expect_grep "$T/err" "bad.jsonl:1: field 'step' appears twice"
bad '{"step":0,"layer":0,"counts":[1,2],"counts":[3,4]}'
expect_grep "$T/err" "bad.jsonl:1: field 'counts' appears twice"
bad '{"moetrace":1,"layers":1,"experts":2,"experts":3}' '{"step":0,"layer":0,"counts":[1,2]}'
expect_grep "$T/err" "bad.jsonl:1: field 'experts' appears twice"
bad '{"step":0,"layer":0,"counts":[1,2],"time":1e999}'
expect_grep "$T/err" "bad.jsonl:1: field 'time': 1e999 is not a finite number"
bad '{"moetrace":2,"layers":1,"experts":2}' '{"step":0,"layer":0,"counts":[1,2]}'
expect_grep "$T/err" "bad.jsonl:1: field 'moetrace': 2 is not a version"

# a record of rows holds every layer: fewer than the description's layers
# or the preset's are refused, not read as zero heat in the others
bad '{"moetrace":1,"layers":4,"experts":2}' '{"step":0,"counts":[[1,2],[3,4]]}'
expect_grep "$T/err" "bad.jsonl:2: field 'counts': 2 layer rows, the description says 4 MoE layers"
printf '%s\n' '{"step":0,"counts":[[1,2,3,4,5,6,7,8]]}' >"$T/bad.jsonl"
expect_status 2 mt import "$T/bad.jsonl" --into "$T/new.db" --model mixtral-8x7b
expect_grep "$T/err" "the data has 1 MoE layers, --model mixtral-8x7b has 32"
expect_status 0 mt import "$T/bad.jsonl" --into "$T/db" --run widened --model mixtral-8x7b --layers 32

# what stays accepted: the same value twice across records, a field on
# one record of the step only, other keys inside nested values
printf '%s\n' '{"step":0,"layer":0,"counts":[1,2],"tokens":5,"time":3}' \
	'{"step":0,"layer":1,"counts":[1,2],"tokens":5}' '{"step":0,"layer":2,"counts":[1,2],"time":3,"x":{"a":1,"b":[{"a":2}]}}' >"$T/ok.jsonl"
expect_status 0 mt import "$T/ok.jsonl" --into "$T/db" --run ok
[ "$(sqlite3 "$T/db" "SELECT time || ' ' || tokens FROM steps WHERE run = (SELECT run FROM runs WHERE name = 'ok')")" = "3.0 5" ] ||
	fail "agreeing records stored another time or tokens"

# a description naming a preset holds the data to it, as --model does: a
# run stored as deepseek-v3 with 1 layer of 3 experts would take
# deepseek-v3's figures (expert bytes, layer ids) for another model's
printf '{"moetrace":1,"model":"deepseek-v3","layers":1,"experts":3}\n{"step":0,"counts":[[1,2,3]]}\n' >"$T/dm.jsonl"
expect_status 2 mt import "$T/dm.jsonl" --into "$T/dm.db"
expect_grep "$T/err" "dm.jsonl: the data has 3 experts, its description's model deepseek-v3 has 256: the trace is not of deepseek-v3"
[ ! -e "$T/dm.db" ] || fail "a refused import left $T/dm.db"
# a name that is no preset is kept as given, without a check
printf '{"moetrace":1,"model":"my-moe","layers":1,"experts":3}\n{"step":0,"counts":[[1,2,3]]}\n' >"$T/mm.jsonl"
expect_status 0 mt import "$T/mm.jsonl" --into "$T/mm.db"
exit 0
