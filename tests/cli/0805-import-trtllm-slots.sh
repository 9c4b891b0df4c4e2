# TensorRT-LLM statistics recorded with its MoE load balancer on count
# global slots (meta_info.json's num_experts is num_slots): they are folded
# back to experts through the load balancer's YAML given with --deployed,
# or refused with what is missing.  tests/data/trtllm_lb encodes HEAT of
# tests/data/make_samples.py on 2 ranks x 3 slots.
. "$(dirname "$0")/lib.sh"
D="$MOETRACE_TOP/tests/data"
Y="$D/trtllm_lb/moe_load_balancer.yaml"

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

# slot statistics against a known expert count, no placement: refused
expect_status 2 mt import "$D/trtllm_lb" --into "$T/db" --run x --experts 4
expect_grep "$T/err" "meta_info.json: num_experts is 6, the run has 4 experts: TensorRT-LLM counts load-balancer slots.*--deployed"
[ -e "$T/db" ] && fail "a refused import left a database"

# with the load balancer's YAML: folded to 4 experts, the YAML deployed
expect_status 0 mt import "$D/trtllm_lb" --into "$T/db" --run lb --deployed "$Y"
expect_grep "$T/out" "as run 'lb': 2 layers x 4 experts"
expect_grep "$T/out" "deployed placement from .*: 2 ranks x 3 slots"
expect_grep "$T/err" "note: 6 load-balancer slots folded to 4 experts through the initial_global_assignments"
cells lb
expect_status 0 mt export "$T/db" --run lb --placement deployed --format trtllm -o "$T/back.yaml"
expect_grep "$T/back.yaml" "^  3: \[0, 1, 3, 2, 3, 0\]$"
expect_grep "$T/back.yaml" "^  4: \[1, 0, 2, 3, 2, 1\]$"

# a placement the balancer moved online: the slots cannot be folded
sed 's/^layer_updates_per_iter: 0/layer_updates_per_iter: 1/' "$Y" >"$T/online.yaml"
expect_status 2 mt import "$D/trtllm_lb" --into "$T/db" --run x --deployed "$T/online.yaml"
expect_grep "$T/err" "load-balancer slots and '.*online.yaml' moved the placement online"
printf 'num_slots: 6\nlayer_updates_per_iter: 1\n' >"$T/dynamic.yaml"
expect_status 2 mt import "$D/trtllm_lb" --into "$T/db" --run x --deployed "$T/dynamic.yaml"
expect_grep "$T/err" "dynamic.yaml' moved the placement online"
printf 'moe_config:\n  load_balancer:\n    num_slots: 6\n' >"$T/noassign.yaml"
expect_status 2 mt import "$D/trtllm_lb" --into "$T/db" --run x --deployed "$T/noassign.yaml"
expect_grep "$T/err" "noassign.yaml' has no initial_global_assignments, so which expert a slot held is not recorded"
# a YAML of other slots than the statistics: not the balancer they ran under
sed 's/^num_slots: 6/num_slots: 4/; s/: \[.*\]/: [0, 1, 2, 3]/' "$Y" >"$T/four.yaml"
expect_status 2 mt import "$D/trtllm_lb" --into "$T/db" --run x --deployed "$T/four.yaml"
expect_grep "$T/err" "num_experts is 6, but '.*four.yaml' has 4 slots: these statistics were not recorded under that load balancer"

# the dynamic forms as the placement of an expert-level trace (our CSV):
# accepted, with a note on what is recorded
sed 's/^  3:/  0:/; s/^  4:/  1:/' "$T/online.yaml" >"$T/online0.yaml"
expect_status 0 mt import "$D/heat.csv" --into "$T/db" --run dyn --ranks 2 --deployed "$T/dynamic.yaml"
expect_grep "$T/err" "note: .*dynamic.yaml' has no initial_global_assignments .*no deployed placement recorded"
expect_nogrep "$T/out" "deployed placement from"
cells dyn
expect_status 0 mt import "$D/heat.csv" --into "$T/db" --run dyn2 --ranks 2 --deployed "$T/online0.yaml"
expect_grep "$T/err" "note: .*online0.yaml' lets the load balancer move experts online \(layer_updates_per_iter: 1\)"
expect_grep "$T/out" "deployed placement from .*: 2 ranks x 3 slots"
cells dyn2
exit 0
