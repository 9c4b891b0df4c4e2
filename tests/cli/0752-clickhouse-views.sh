#!/bin/sh
# The server's views of the placement in force (counts_placement,
# device_load, layer_imbalance) equal SQLite's row by row on a trace whose
# deployed placement changes mid-run, with steps before the first change
# (static layout), a run without deployed rows, a run without an EP layout
# of its own, counts rows missing for some layers, and run ids with a gap
# (a run deleted), and layers without tokens in a step (and a step without
# any), whose imbalance is NULL on both sides: not scored, not 1.0 (in
# step_heat's expert_imbalance too).
# Missing counts rows stay missing on the server (info counts them the
# same); runs are selected by the file's ids, gaps included.  A schema 1
# database is migrated to 4 by a push, and read (numbering its runs 1, 2,
# ...) before that; a schema 3 one (1.0 for a layer without tokens) too.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ch.sh"

ch_new "$T/ch"
HTTP=$CH_HTTP
URL="clickhouse://127.0.0.1:$HTTP"
q() { ch_q "$HTTP" "$@"; }
# hex I...: int32 little-endian values as an SQLite blob literal
hex() { python3 -c 'import struct, sys; print("X\x27" + b"".join(struct.pack("<i", int(a)) for a in sys.argv[1:]).hex() + "\x27")' "$@"; }

# run 1 'gen': 4 ranks x 3 slots, static until step 20, deployed placements
# from 20 (expert 0 on three ranks) and 40 (experts reversed); run 2
# deleted (the gap); run 3 'flat': no deployed rows; run 4 'bare': no EP
# layout of its own (a model no preset knows), deployed from step 10
expect_status 0 mt gen --model mixtral-8x7b --steps 60 --seed 3 --ranks 4 --slots 3 --run gen -q "$T/t.db"
expect_status 0 mt gen --model mixtral-8x7b --steps 5 --seed 4 --run gone -q "$T/t.db"
expect_status 0 mt gen --model mixtral-8x7b --steps 50 --seed 5 --ranks 2 --slots 5 --run flat -q "$T/t.db"
expect_status 0 mt gen --model mixtral-8x7b --steps 30 --seed 6 --run bare -q "$T/t.db"
A=$(hex 0 1 2 0  3 4 5 0  6 7 1 2)
B=$(hex 7 6 5 4 3 2 1 0 0 1 2 3)
S=$(hex 0 1 2 3 4 5 6 7)
expect_status 0 mt sql --write "$T/t.db" "
	WITH RECURSIVE l(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM l WHERE x < 31)
	INSERT INTO deployed SELECT 1, 20, x, 4, 3, $A FROM l UNION ALL
	SELECT 1, 40, x, 4, 3, $B FROM l UNION ALL SELECT 4, 10, x, 2, 4, $S FROM l;
	DELETE FROM counts WHERE run = 2; DELETE FROM steps WHERE run = 2; DELETE FROM runs WHERE run = 2;
	UPDATE runs SET model = 'in-house-moe', ranks = 0, slots = 0 WHERE run = 4;
	DELETE FROM counts WHERE run = 1 AND ((step = 5 AND layer < 3) OR (step = 30 AND layer = 31));
	DELETE FROM counts WHERE run = 4 AND step = 12 AND layer = 7;
	UPDATE counts SET data = counts_encode('[0,0,0,0,0,0,0,0]') WHERE (run = 1 AND
		(step = 45 OR (step = 25 AND layer = 4) OR (step = 8 AND layer = 0)))
		OR (run = 3 AND step = 10 AND layer = 2)"
expect_status 0 mt info "$T/t.db"
expect_grep "$T/out" "^run 3 'flat'"
expect_grep "$T/out" "counts     4 of 1920 rows"
expect_status 0 mt push "$T/t.db" "$URL/fleet" --deployment v
cp "$T/t.db" "$T/t.orig"

# views: SQLite's (run named) against the server's, row by row: the same
# keys and text, and floats equal to 1e-12 relative (a replicated expert's
# tokens split in thirds are summed per rank in another order); a NULL
# (SQLite's empty CSV field, the server's \N) only against a NULL
lite() { mt sql --format csv "$T/t.db" "$1" | tail -n +2 | tr , '\t' | tr -d '"'; }
# cmp_view F NAME SQLITE_QUERY SERVER_QUERY: field F is a float
cmp_view() {
	lite "$3" >"$T/$2.sqlite" || fail "$2 on the trace"
	q "$DB" "$4 FORMAT TSV" >"$T/$2.ch" || fail "$2 on the server"
	[ -s "$T/$2.sqlite" ] || fail "$2: no rows"
	[ "$(wc -l <"$T/$2.sqlite")" = "$(wc -l <"$T/$2.ch")" ] || fail "$2: row counts differ"
	paste "$T/$2.sqlite" "$T/$2.ch" | awk -F'\t' -v f="$1" '{
		n = NF / 2
		for (i = 1; i <= n; i++) {
			a = $i; b = $(i + n)
			if (i == f && (a == "" || b == "\\N")) {
				if ((a == "") != (b == "\\N")) { print "row " NR ": " $0; bad = 1 }
			} else if (i == f) {
				d = a - b; if (d < 0) d = -d
				m = a < 0 ? -a : a
				if (d > 1e-12 * (m > 1 ? m : 1)) { print "row " NR ": " $0; bad = 1 }
			} else if (a != b) { print "row " NR ": " $0; bad = 1 }
		}
	} END { exit bad }' >&2 || fail "$2: the server's rows differ from SQLite's"
}
P2L="concat('[', arrayStringConcat(arrayMap(x -> toString(x), phy2log), ','), ']')"
# check_views DB SUFFIX
check_views() {
	DB=$1
	cmp_view 5 "device_load$2" "SELECT r.name, d.step, d.layer, d.rank, d.load FROM device_load d
		JOIN runs r USING (run) ORDER BY 1, 2, 3, 4" "SELECT run, step, layer, rank, load
		FROM device_load WHERE deployment = 'v' ORDER BY run, step, layer, rank"
	cmp_view 4 "layer_imbalance$2" "SELECT r.name, i.step, i.layer, i.imbalance FROM
		layer_imbalance i JOIN runs r USING (run) ORDER BY 1, 2, 3" "SELECT run, step, layer, imbalance
		FROM layer_imbalance WHERE deployment = 'v' ORDER BY run, step, layer"
	cmp_view 0 "counts_placement$2" "SELECT 0, r.name, p.step, p.layer, p.placement, replace(phy2log_json(p.phy2log), ',', ';'),
		p.ranks, p.slots, counts_sum(p.data) FROM counts_placement p JOIN runs r USING (run)
		ORDER BY 2, 3, 4" "SELECT 0, run, step, layer, placement,
		replace($P2L, ',', ';'), ranks, slots, arraySum(counts) FROM counts_placement
		WHERE deployment = 'v' ORDER BY run, step, layer"
	# 'flat' has no deployed rows: the static view is layer_imbalance
	cmp_view 3 "layer_imbalance_static$2" "SELECT i.step, i.layer, i.imbalance FROM
		layer_imbalance i JOIN runs r USING (run) WHERE r.name = 'flat' ORDER BY 1, 2" \
		"SELECT step, layer, imbalance FROM layer_imbalance_static WHERE deployment = 'v'
		AND run = 'flat' ORDER BY step, layer"
	# step_heat's hottest / mean expert, from the counts in SQLite
	cmp_view 4 "step_heat$2" "SELECT r.name, c.step, c.layer, CASE WHEN counts_sum(c.data) > 0
		THEN 1.0 * counts_max(c.data) * counts_n(c.data) / counts_sum(c.data) END AS x FROM counts c
		JOIN runs r USING (run) ORDER BY 1, 2, 3" \
		"SELECT run, step, layer, expert_imbalance FROM step_heat WHERE deployment = 'v'
		ORDER BY run, step, layer"
	# a layer without tokens is NULL, on the server as in SQLite: layer 4 of
	# step 25 and layer 0 of step 8 of 'gen', all 32 layers of its step 45,
	# layer 2 of step 10 of 'flat'
	[ "$(grep -c '	\\N$' "$T/layer_imbalance$2.ch")" = 35 ] ||
		fail "layer_imbalance$2: not 35 NULL rows"
	grep -q "^gen	25	4	\\\\N$" "$T/layer_imbalance$2.ch" || fail "layer_imbalance$2: gen 25 4"
	[ "$(grep -c '	\\N$' "$T/step_heat$2.ch")" = 35 ] || fail "step_heat$2: not 35 NULL rows"
	[ "$(grep -c '	\\N$' "$T/layer_imbalance_static$2.ch")" = 1 ] ||
		fail "layer_imbalance_static$2: not 1 NULL row"
	grep -q "^10	2	\\\\N$" "$T/layer_imbalance_static$2.ch" ||
		fail "layer_imbalance_static$2: flat 10 2"
	# so avg() leaves them out on both sides: the mean over the scored pairs
	echo "$(q "$DB" "SELECT count(imbalance), avg(imbalance) FROM layer_imbalance
		WHERE deployment = 'v' AND run = 'gen' FORMAT TSV")" \
		"$(lite "SELECT count(i.imbalance), avg(i.imbalance) FROM layer_imbalance i
		JOIN runs r USING (run) WHERE r.name = 'gen'")" | awk '{ d = $2 - $4
		exit !($1 == 60 * 32 - 4 - 34 && $1 == $3 && (d < 0 ? -d : d) <= 1e-12 * $2) }' ||
		fail "layer_imbalance$2: avg() or count() differ"
}
check_views fleet ""
# what the rows hold: static before step 20, deployed after; 'flat' static
# throughout; 'bare' only from its first deployed row; no missing row
[ "$(lite "SELECT count(*) FROM counts_placement WHERE run = 4")" = $(((30 - 10) * 32 - 1)) ] ||
	fail "counts_placement: 'bare' rows"
grep -c "	gen	1[0-9]	.*	static	" "$T/counts_placement.ch" | grep -qx $((10 * 32)) ||
	fail "counts_placement: 'gen' static rows"
grep -q "	gen	5	0	" "$T/counts_placement.ch" && fail "counts_placement: a missing counts row is there"
grep -q "	gen	30	31	" "$T/layer_imbalance.ch" && fail "layer_imbalance: a missing counts row is there"
grep -q "	flat	.*	deployed	" "$T/counts_placement.ch" && fail "counts_placement: 'flat' deployed rows"
# the server keeps the absence: the same missing rows as the file
[ "$(q fleet "SELECT count() FROM counts WHERE run = 'gen'")" = $((60 * 32 - 4)) ] ||
	fail "missing counts rows were pushed"
expect_status 0 mt info --json "$T/t.db"
grep -o '"missing_counts": [0-9]*' "$T/out" >"$T/missing.file"
expect_status 0 mt info --json "$URL/fleet?deployment=v"
grep -o '"missing_counts": [0-9]*' "$T/out" >"$T/missing.url"
same_file "$T/missing.file" "$T/missing.url"
expect_grep "$T/missing.url" '"missing_counts": 4'

# run ids with a gap: 1, 3, 4 on both sides, by id and by name
expect_status 0 mt info "$T/t.db"
tail -n +2 "$T/out" | grep -v '^  storage' >"$T/info.file"
expect_status 0 mt info "$URL/fleet?deployment=v"
tail -n +2 "$T/out" | grep -v '^  storage' >"$T/info.url"
diff "$T/info.file" "$T/info.url" >&2 || fail "info: the server's runs differ from the file's"
expect_grep "$T/info.url" "^run 3 'flat'"
for r in 1 3 4 flat; do
	expect_status 0 mt balance --ranks 4 --slots 3 --run "$r" "$T/t.db"
	cp "$T/out" "$T/bal.file"
	expect_status 0 mt balance --ranks 4 --slots 3 "$URL/fleet?deployment=v&run=$r"
	same_file "$T/bal.file" "$T/out"
	expect_status 0 mt info --run "$r" "$T/t.db"
	grep -v '^  storage' "$T/out" | tail -n +2 >"$T/inf.file"
	expect_status 0 mt info "$URL/fleet?deployment=v&run=$r"
	grep -v '^  storage' "$T/out" | tail -n +2 >"$T/inf.url"
	same_file "$T/inf.file" "$T/inf.url"
done
expect_status 0 mt info --run 3 "$URL/fleet?deployment=v"
expect_grep "$T/out" "^run 3 'flat'"
expect_status 2 mt balance --run 2 "$T/t.db"
expect_grep "$T/err" "no run named '2'"
expect_status 2 mt balance "$URL/fleet?deployment=v&run=2"
expect_grep "$T/err" "no run named '2'"

# a schema 1 database (as moetrace wrote it before: no runs.id, none of
# these views): read with runs numbered oldest first, migrated by a push
expect_status 0 mt push "$T/t.db" "$URL/old" --deployment v --run flat
expect_status 0 mt push "$T/t.db" "$URL/old" --deployment v --run gen
for v in layer_imbalance device_load counts_placement placement_replicas placements \
	counts_placed run_layout; do
	q old "DROP TABLE $v" || fail "drop $v"
done
q old "ALTER TABLE runs DROP COLUMN id"
# nor schema 3's tables of shipped rollups (rollup_heat read counts_rollup alone)
q old "DROP TABLE rollup_shipped"
q old "DROP TABLE rollup_windows"
q old "DROP TABLE rollup_heat"
q old "CREATE VIEW rollup_heat AS SELECT deployment, run, layer, first_step,
	countMerge(steps) AS steps, sumForEachMerge(counts) AS counts FROM counts_rollup
	GROUP BY deployment, run, layer, first_step" || fail "the old rollup_heat"
q old "DROP TABLE moetrace_meta"
q old "CREATE TABLE moetrace_meta ENGINE = TinyLog AS SELECT toUInt32(1) AS version,
	toUInt32(100) AS rollup_steps, '' AS cluster, now() AS created"
expect_status 0 mt info "$URL/old?deployment=v"
expect_grep "$T/out" "^run 1 'gen'"
expect_grep "$T/out" "^run 2 'flat'"
expect_status 0 mt push "$T/t.db" "$URL/old" --deployment v
[ "$(q old "SELECT version FROM moetrace_meta")" = 4 ] || fail "not migrated to schema 4"
[ "$(q old "SELECT count() FROM system.tables WHERE database = 'old' AND
	name IN ('rollup_shipped', 'rollup_windows')")" = 2 ] || fail "schema 3's tables not created"
[ "$(q old "SELECT run, id FROM runs ORDER BY run FORMAT CSV" | tr '\n' ' ')" = \
  '"bare",4 "flat",0 "gen",0 ' ] || fail "runs.id after the migration"
# runs pushed before the migration have no id: the deployment is numbered
expect_status 0 mt info "$URL/old?deployment=v"
expect_grep "$T/out" "^run 3 'bare'"
check_views old ".migrated"

# a schema 3 database: the imbalance views said 1.0 for a layer without
# tokens (made here from the current ones, NULL put back to 1.0); read as
# it is, then migrated to 4 by a push
expect_status 0 mt push "$T/t.db" "$URL/three" --deployment v
for v in layer_imbalance_static layer_imbalance step_heat; do
	def=$(q three "SELECT create_table_query FROM system.tables WHERE database = 'three'
		AND name = '$v' FORMAT TSVRaw" | sed 's/^.*) AS SELECT /SELECT /; s/if(\([a-zA-Z]*([a-z]*) [<=]* 0\), NULL, /if(\1, 1., /')
	case $def in *" 0, 1., "*) ;; *) fail "$v: no schema 3 definition made: $def" ;; esac
	q three "DROP TABLE $v" && q three "CREATE VIEW $v AS $def" || fail "the old $v"
done
q three "DROP TABLE moetrace_meta"
q three "CREATE TABLE moetrace_meta ENGINE = TinyLog AS SELECT toUInt32(3) AS version,
	toUInt32(100) AS rollup_steps, '' AS cluster, now() AS created"
[ "$(q three "SELECT imbalance FROM layer_imbalance WHERE run = 'gen' AND step = 25 AND layer = 4")" = 1 ] ||
	fail "the schema 3 layer_imbalance does not say 1 for a layer without tokens"
expect_status 0 mt info "$URL/three?deployment=v"
expect_grep "$T/out" "^run 3 'flat'"
expect_status 0 mt push "$T/t.db" "$URL/three" --deployment v
[ "$(q three "SELECT version FROM moetrace_meta")" = 4 ] || fail "not migrated from 3 to 4"
check_views three ".v3"
# a migration cut short after dropping moetrace_meta is completed
q default "CREATE DATABASE cut"
expect_status 0 mt push "$T/t.db" "$URL/cut" --deployment v --run flat
q cut "RENAME TABLE moetrace_meta TO moetrace_meta_new"
expect_status 0 mt push "$T/t.db" "$URL/cut" --deployment v --run flat
[ "$(q cut "SELECT version FROM moetrace_meta")" = 4 ] || fail "cut-short migration not completed"
# a migration from 3 cut short between dropping a view and making it again
q cut "DROP TABLE layer_imbalance"
q cut "DROP TABLE moetrace_meta"
q cut "CREATE TABLE moetrace_meta ENGINE = TinyLog AS SELECT toUInt32(3) AS version,
	toUInt32(100) AS rollup_steps, '' AS cluster, now() AS created"
expect_status 0 mt push "$T/t.db" "$URL/cut" --deployment v --run flat
[ "$(q cut "SELECT version FROM moetrace_meta")" = 4 ] || fail "cut-short migration from 3"
[ "$(q cut "SELECT count(), countIf(imbalance IS NULL) FROM layer_imbalance WHERE run = 'flat'
	FORMAT CSV")" = "$((50 * 32)),1" ] || fail "layer_imbalance not made again"
# a newer schema is refused before its unknown tables are
q cut "CREATE TABLE future (x UInt8) ENGINE = TinyLog"
q cut "DROP TABLE moetrace_meta"
q cut "CREATE TABLE moetrace_meta ENGINE = TinyLog AS SELECT toUInt32(5) AS version,
	toUInt32(100) AS rollup_steps, '' AS cluster, now() AS created"
expect_status 2 mt push "$T/t.db" "$URL/cut" --deployment v
expect_grep "$T/err" "has moetrace schema version 5, newer than this moetrace knows \(4\): upgrade moetrace"
same_file "$T/t.db" "$T/t.orig"
exit 0
