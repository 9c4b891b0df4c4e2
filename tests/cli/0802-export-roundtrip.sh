# moetrace export: heat as CSV and JSON lines read back by import cell for
# cell (a generated DeepSeek-V2-Lite trace with prefill and decode steps),
# step ranges, standard output, the deployed placement in engine formats,
# and bad options.
. "$(dirname "$0")/lib.sh"

expect_status 0 mt gen --model deepseek-v2-lite --steps 12 --seed 5 --run orig -q "$T/db"
# every cell of a run, and its steps' phases
dump() {
	mt sql --format csv "$T/db" "SELECT e.step, e.layer, e.expert, e.tokens FROM expert_heat e
		JOIN runs r USING (run) WHERE r.name = '$1' ORDER BY 1, 2, 3" >"$T/cells.$1"
	mt sql --format csv "$T/db" "SELECT s.step, s.phase FROM steps s JOIN runs r USING (run)
		WHERE r.name = '$1' ORDER BY 1" >"$T/phases.$1"
}
dump orig
[ "$(wc -l <"$T/cells.orig")" -eq $((12 * 26 * 64 + 1)) ] || fail "expected every cell of 12 steps"

# CSV: dense, re-imported with the same shape
expect_status 0 mt export "$T/db" --run orig --format csv -o "$T/h.csv"
expect_grep "$T/out" "exported 12 steps of run 'orig' \\(26 layers x 64 experts\\)"
[ "$(head -n 1 "$T/h.csv")" = "step,layer,expert,tokens,phase" ] || fail "CSV header"
[ "$(wc -l <"$T/h.csv")" -eq $((12 * 26 * 64 + 1)) ] || fail "dense CSV rows"
expect_status 0 mt import "$T/h.csv" --into "$T/db" --run csv
dump csv
same_file "$T/cells.orig" "$T/cells.csv"
same_file "$T/phases.orig" "$T/phases.csv"

# JSON lines: the description line brings the model and layout back too
expect_status 0 mt export "$T/db" --run orig --format jsonl -o "$T/h.jsonl"
[ "$(wc -l <"$T/h.jsonl")" -eq 13 ] || fail "one description line and one line per step"
expect_grep "$T/h.jsonl" '^\{"moetrace":1,"run":"orig","model":"deepseek-v2-lite","layers":26,"experts":64,"topk":6'
expect_status 0 mt import "$T/h.jsonl" --into "$T/db" --run jsonl
dump jsonl
same_file "$T/cells.orig" "$T/cells.jsonl"
same_file "$T/phases.orig" "$T/phases.jsonl"
[ "$(sqlite3 "$T/db" "SELECT model || ' ' || topk || ' ' || ranks || 'x' || slots FROM runs WHERE name = 'jsonl'")" = \
  "$(sqlite3 "$T/db" "SELECT model || ' ' || topk || ' ' || ranks || 'x' || slots FROM runs WHERE name = 'orig'")" ] ||
	fail "the JSON-lines description did not carry model, top-k and layout"
[ "$(sqlite3 "$T/db" "SELECT group_concat(tokens) FROM (SELECT tokens FROM steps WHERE run = 1 ORDER BY step)")" = \
  "$(sqlite3 "$T/db" "SELECT group_concat(tokens) FROM (SELECT s.tokens FROM steps s JOIN runs USING (run) WHERE name = 'jsonl' ORDER BY step)")" ] ||
	fail "step tokens differ after the JSON-lines round trip"

# a step range, standard output, sparse rows
first=$(sqlite3 "$T/db" "SELECT min(step) FROM steps WHERE run = 1")
expect_status 0 mt export "$T/db" --run orig --format jsonl --steps "$((first + 2)):$((first + 4))" -o -
[ "$(grep -c '"counts"' "$T/out")" -eq 3 ] || fail "--steps A:B selects 3 steps"
expect_status 0 mt export "$T/db" --run orig --format csv --sparse --steps "$first" -o -
# the non-zero cells, and the step's last cell (layer 25, expert 63) even
# when zero, which keeps the shape and a step without heat
nz=$(awk -F, -v s="$first" '$1 == s && ($4 != 0 || ($2 == 25 && $3 == 63))' "$T/cells.orig" | wc -l)
[ "$(($(wc -l <"$T/out") - 1))" -eq "$nz" ] || fail "--sparse writes the non-zero cells and the last"
expect_grep "$T/out" "^$first,25,63,"
# a sparse export reads back to the same cells, steps, phases and shape,
# a step with no heat and an empty last layer and expert included
expect_status 0 mt sql --write "$T/db" "UPDATE counts SET data = counts_encode(json_array(0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0))
	WHERE run = 1 AND (step = $((first + 3)) OR layer = 25)"
expect_status 0 mt sql --write "$T/db" "UPDATE counts SET data = counts_encode(json_set(counts_json(data), '\$[63]', 0)) WHERE run = 1"
dump orig
expect_status 0 mt export "$T/db" --run orig --format csv --sparse -o "$T/s.csv"
expect_status 0 mt import "$T/s.csv" --into "$T/db" --run sparse
dump sparse
same_file "$T/cells.orig" "$T/cells.sparse"
same_file "$T/phases.orig" "$T/phases.sparse"

# the deployed placement: import one, export it in each engine format, and
# read the vllm-ascend file back as the deployed placement of another run
python3 - "$T/map.json" <<'PY' || skip "python3 writes the map"
import json, sys
# 8 ranks x 10 slots for 64 experts: rotate the identity by layer, 16 redundant copies
doc = {"moe_layer_count": 26, "layer_list": []}
for l in range(26):
    slots = [(s + l) % 64 for s in range(64)] + [(l + k) % 64 for k in range(16)]
    doc["layer_list"].append({"layer_id": l, "device_count": 8, "device_list": [
        {"device_id": d, "device_expert": slots[d * 10:(d + 1) * 10]} for d in range(8)]})
json.dump(doc, open(sys.argv[1], "w"))
PY
expect_status 0 mt import "$T/h.csv" --into "$T/db" --run dep --model deepseek-v2-lite --deployed "$T/map.json"
for f in vllm-ascend sglang trtllm; do
	expect_status 0 mt export "$T/db" --run dep --placement deployed --format $f -o "$T/dep.$f"
	expect_grep "$T/out" "exported the placement deployed from step $first of run 'dep'"
done
expect_status 0 mt import "$T/h.csv" --into "$T/db" --run dep2 --model deepseek-v2-lite --deployed "$T/dep.vllm-ascend"
[ "$(sqlite3 "$T/db" "SELECT count(DISTINCT phy2log) FROM deployed")" = 26 ] || fail "26 layers, the same placement twice"
[ "$(sqlite3 "$T/db" "SELECT count(*) FROM deployed")" = 52 ] || fail "two runs x 26 layers"
expect_status 0 mt import "$T/h.csv" --into "$T/db" --run dep3 --model deepseek-v2-lite --ranks 8 --deployed "$T/dep.sglang"
[ "$(sqlite3 "$T/db" "SELECT count(DISTINCT phy2log) FROM deployed")" = 26 ] || fail "SGLang rows by model layer id read back"

# bad options and runs without what is asked
expect_status 2 mt export "$T/db" --format parquet -o "$T/x"
expect_grep "$T/err" "--format: 'parquet' is not a heat format"
expect_status 2 mt export "$T/db" --run orig --placement deployed --format vllm-ascend -o "$T/x"
expect_grep "$T/err" "run 'orig' has no deployed placement"
expect_status 2 mt export "$T/db" --run orig --placement computed --format sglang -o "$T/x"
expect_grep "$T/err" "only 'deployed'"
expect_status 2 mt export "$T/db" --run orig --format csv --steps 999999:1000000 -o "$T/x"
expect_grep "$T/err" "has no steps in the range"
[ ! -e "$T/x" ] || fail "a failed export left a file"
ls "$T" | grep -q 'tmp' && fail "a temporary file was left behind"
expect_status 2 mt export "$T/db" --run nosuch --format csv -o "$T/x"
expect_status 2 mt export "$T/db" --format csv
exit 0
