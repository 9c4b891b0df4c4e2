# Megatron-LM traces beyond one stage and one microbatch: pipeline stages
# that each number their layers from 0 (--pipeline-stages), training
# microbatches that repeat a (step, layer) in one rank's file (summed, with
# a note), and the tokens-per-expert logs.  The samples encode HEAT of
# tests/data/make_samples.py, so each run must hold exactly its cells.
. "$(dirname "$0")/lib.sh"
D="$MOETRACE_TOP/tests/data/megatron"

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
cells() {
	mt sql --format csv "$T/db" "SELECT dense_rank() OVER (ORDER BY e.step) - 1, e.layer,
		e.expert, e.tokens FROM expert_heat e JOIN runs r USING (run) WHERE r.name = '$1'
		ORDER BY e.step, e.layer, e.expert" | grep -v '^[a-z]' >"$T/got.$1"
	cmp -s "$T/want" "$T/got.$1" || { diff "$T/want" "$T/got.$1" >&2; fail "run $1: cells differ"; }
}
field() { sqlite3 "$T/db" "SELECT $2 FROM runs WHERE name = '$1'"; }

# two pipeline stages, each with its MoE layer at local id 1: stage 1's
# comes after stage 0's two layers, model layer 3; microbatches summed
expect_status 0 mt import "$D/pp2" --into "$T/db" --run pp --pipeline-stages 2 --experts 4
expect_grep "$T/out" "as run 'pp': 2 layers x 4 experts"
expect_grep "$T/err" "note: 2 pipeline stages, layer ids offset by 0, 2; 8 repeated \(step, layer\) records of one rank summed \(microbatches\)"
cells pp
[ "$(field pp first_layer)" = 1 ] || fail "pp: model layer 1 is MoE layer 0"
field pp source | grep -q "2 pipeline stages, layer ids offset by 0, 2; 8 repeated" || fail "the note is not in the run's source"
# with the Mixtral preset the stacked ids are model layers 1 and 3
expect_status 0 mt import "$D/pp2" --into "$T/db" --run ppm --pipeline-stages 2 --model mixtral-8x7b
[ "$(mt sql --format csv "$T/db" "SELECT group_concat(DISTINCT layer) FROM (SELECT layer FROM expert_heat
	JOIN runs USING (run) WHERE name = 'ppm' AND tokens > 0 ORDER BY layer)" | tail -n 1 | tr -d '"')" = "1,3" ] ||
	fail "--pipeline-stages with --model: MoE layers 1, 3"
# stages that do not split the ranks, or a missing rank
expect_status 2 mt import "$D/pp2" --into "$T/db" --run x --pipeline-stages 3
expect_grep "$T/err" "4 rank files do not split into 3 pipeline stages"
mkdir "$T/three" && cp "$D/pp2/router_trace_rank0.jsonl" "$D/pp2/router_trace_rank1.jsonl" \
	"$D/pp2/router_trace_rank3.jsonl" "$T/three/"
expect_status 2 mt import "$T/three" --into "$T/db" --run x --pipeline-stages 2
expect_grep "$T/err" "three': rank 2 is missing: no router_trace_rank2.jsonl beside the files of ranks up to 3"
# one rank's file: its two microbatches summed, not refused
expect_status 0 mt import "$D/pp2/router_trace_rank0.jsonl" --into "$T/db" --run r0 --experts 4
[ "$(mt sql --format csv "$T/db" "SELECT sum(tokens) FROM expert_heat JOIN runs USING (run) WHERE name = 'r0'" | tail -n 1)" = 8 ] ||
	fail "rank 0: 2 steps x 2 tokens x top-2"

# tokens-per-expert logs: the --save directory, its tokens_per_expert/, a file
mkdir -p "$T/save" && cp -r "$D/tokens_per_expert" "$T/save/"
expect_status 0 mt import "$T/save" --into "$T/db" --run tpe
expect_grep "$T/out" "as run 'tpe': 2 layers x 4 experts"
cells tpe
[ "$(field tpe first_layer)" = 1 ] || fail "tpe: model layer 1 is MoE layer 0"
expect_status 0 mt import "$D/tokens_per_expert" --into "$T/db" --run tpe2 --experts 4
cells tpe2
# rank 1 alone: its local experts are 2 and 3 of 4
expect_status 0 mt import "$D/tokens_per_expert/rank1.jsonl" --into "$T/db" --run tr1 --experts 4
[ "$(mt sql --format csv "$T/db" "SELECT group_concat(DISTINCT expert) FROM (SELECT expert FROM expert_heat
	JOIN runs USING (run) WHERE name = 'tr1' AND tokens > 0 ORDER BY expert)" | tail -n 1 | tr -d '"')" = "2,3" ] ||
	fail "rank 1's local experts are 2, 3"
# 3 local experts do not divide 4
printf '{"iter": 1, "block": "decoder", "layer": 0, "tpe": [[1, 2, 3]]}\n' >"$T/rank0.jsonl"
expect_status 2 mt import "$T/rank0.jsonl" --into "$T/db" --run x --experts 4 --format megatron
expect_grep "$T/err" "rank0.jsonl:1: field 'tpe': 3 local experts do not divide the run's 4 experts"
exit 0
