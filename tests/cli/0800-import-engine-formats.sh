# moetrace import of every engine format in tests/data/: the samples all
# encode the trace HEAT of tests/data/make_samples.py (2 steps x 2 MoE
# layers x 4 experts), so each run must hold exactly those cells, whatever
# the format spreads over ranks, files, per-token ids or keys.
. "$(dirname "$0")/lib.sh"
D="$MOETRACE_TOP/tests/data"

# HEAT, written out by hand: step index, layer, expert, tokens
cat >"$T/want" <<'W'
0,0,0,3
0,0,1,0
0,0,2,1
0,0,3,4
0,1,0,2
0,1,1,2
0,1,2,2
0,1,3,2
1,0,0,2
1,0,1,3
1,0,2,0
1,0,3,3
1,1,0,1
1,1,1,3
1,1,2,3
1,1,3,1
W
# cells of one run, steps renumbered 0, 1 in order
cells() {
	mt sql --format csv "$T/db" "SELECT dense_rank() OVER (ORDER BY e.step) - 1, e.layer,
		e.expert, e.tokens FROM expert_heat e JOIN runs r USING (run) WHERE r.name = '$1'
		ORDER BY e.step, e.layer, e.expert" | grep -v '^[a-z]' >"$T/got.$1"
	cmp -s "$T/want" "$T/got.$1" || { diff "$T/want" "$T/got.$1" >&2; fail "run $1: cells differ"; }
}
field() { sqlite3 "$T/db" "SELECT $2 FROM runs WHERE name = '$1'"; }

expect_status 0 mt import "$D/heat.csv" --into "$T/db"
cells heat
expect_status 0 mt import "$D/jsonl/heat.jsonl" --into "$T/db" --run jsonl
expect_grep "$T/out" "as run 'jsonl': 2 layers x 4 experts"
cells jsonl
[ "$(field jsonl topk)" = 2 ] || fail "jsonl topk"
[ "$(sqlite3 "$T/db" "SELECT group_concat(phase || ':' || tokens) FROM steps JOIN runs USING (run)
	WHERE name = 'jsonl' ORDER BY step")" = "2:4,1:8" ] || fail "jsonl phases/tokens"

# Megatron-LM: the directory of rank files (ranks summed, the MTP record skipped)
expect_status 0 mt import "$D/megatron/" --into "$T/db" --experts 4
expect_grep "$T/out" "as run 'megatron': 2 layers x 4 experts"
cells megatron
[ "$(field megatron first_layer)" = 1 ] || fail "megatron: model layer 1 is MoE layer 0"
[ "$(field megatron topk)" = 2 ] || fail "megatron topk"
[ "$(field megatron source)" = "import megatron $D/megatron/" ] || fail "megatron source"
# one rank file alone holds only its own tokens
expect_status 0 mt import "$D/megatron/router_trace_rank1.jsonl" --into "$T/db" --run r1 --format megatron --experts 4
[ "$(mt sql --format csv "$T/db" "SELECT sum(tokens) FROM expert_heat JOIN runs USING (run) WHERE name = 'r1'" | tail -n 1)" = 12 ] ||
	fail "rank 1 routed 6 tokens x top-2"

# TensorRT-LLM: the directory, its meta_info.json, and --format given
expect_status 0 mt import "$D/trtllm" --into "$T/db"
cells trtllm
[ "$(field trtllm first_layer)" = 3 ] || fail "trtllm first layer"
[ "$(field trtllm "topk || ' ' || ranks")" = "2 2" ] || fail "trtllm topk/ranks from meta_info and rank files"
expect_status 0 mt import "$D/trtllm/meta_info.json" --into "$T/db" --run trt2 --format trtllm
cells trt2
# --model checks the shape (Mixtral has 8 experts) ...
expect_status 2 mt import "$D/trtllm" --into "$T/db" --run trt3 --model mixtral-8x7b
expect_grep "$T/err" "trtllm: the data has 4 experts, --model mixtral-8x7b has 8: the trace is not of mixtral-8x7b"
# ... and maps model layer ids through the preset (Mixtral: every layer is MoE)
expect_status 0 mt import "$D/megatron" --into "$T/db" --run mg3 --model mixtral-8x7b
[ "$(mt sql --format csv "$T/db" "SELECT group_concat(DISTINCT layer) FROM (SELECT layer FROM expert_heat
	JOIN runs USING (run) WHERE name = 'mg3' AND tokens > 0 ORDER BY layer)" | tail -n 1 | tr -d '"')" = "1,3" ] ||
	fail "--model keeps model layers 1, 3 as MoE layers 1, 3 of Mixtral"

# --deployed: the vllm-ascend map becomes the run's layout and placement
expect_status 0 mt import "$D/jsonl/heat.jsonl" --into "$T/db" --run dep --deployed "$D/deployed/expert_map.json"
expect_grep "$T/out" "deployed placement from .*: 2 ranks x 3 slots"
[ "$(field dep "ranks || 'x' || slots")" = "2x3" ] || fail "deployed layout"
expect_status 0 mt export "$T/db" --run dep --placement deployed --format sglang -o "$T/sg.json"
tr -d ' \n' <"$T/sg.json" >"$T/sg.flat"
expect_grep "$T/sg.flat" '\[\[0,1,3,2,3,0\],\[1,2,0,3,1,2\]\]'
# the same placement given as an SGLang mapping (ranks from --ranks)
expect_status 0 mt import "$D/heat.csv" --into "$T/db" --run dep2 --ranks 2 --deployed "$D/deployed/sglang_map.json"
[ "$(sqlite3 "$T/db" "SELECT count(DISTINCT phy2log) FROM deployed")" = 2 ] || fail "same placement twice"

# unknown format name
expect_status 2 mt import "$D/heat.csv" --into "$T/db" --run x --format parquet
expect_grep "$T/err" "--format: unknown format 'parquet'"
sqlite3 "$T/db" "PRAGMA integrity_check" | grep -qx ok || fail "integrity"
exit 0
