# replay and compare on a deployment: two link tiers, nodes, the model's
# precision, serving units, every setting stored, and the bad input.
. "$(dirname "$0")/lib.sh"

# Mixtral-8x7B's 32 layers x 8 experts (so its expert size applies; import
# refuses a shape other than the preset's), 4 ranks x 2 slots.  Heat
# [40,30,20,10,0,0,0,0] in every layer and step: the static
# layout {0,1},{2,3},{4,5},{6,7} loads 70|30|0|0 and a rebalance spreads
# the hot experts, copying them to other ranks.
{
	echo "step,layer,expert,tokens"
	for s in $(seq 0 19); do
		for l in $(seq 0 31); do
			echo "$s,$l,0,40"; echo "$s,$l,1,30"; echo "$s,$l,2,20"; echo "$s,$l,3,10"
			for e in 4 5 6 7; do echo "$s,$l,$e,0"; done
		done
	done
} >"$T/hot.csv"
expect_status 0 mt import "$T/hot.csv" --into "$T/db" --run hot --ranks 4 --slots 2 --model mixtral-8x7b
r="mt replay $T/db --algo eplb --interval 5 --window 5 --delay 1 --no-store --json"

field() { # field FILE KEY: the first top-level number or string of KEY
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d[sys.argv[2]])' "$1" "$2"
}

# one node (the preset's 4 ranks per node): nothing crosses nodes
expect_status 0 $r
for k in quant ranks_per_node bytes_intra_node bytes_inter_node transfer_seconds \
	weights_moved_share hbm_redundant_gib_per_rank moe_time_saved_share \
	step_time_saved_share tokens_per_step; do
	expect_grep "$T/out" "\"$k\": "
done
[ "$(field "$T/out" quant)" = bf16 ] || fail "Mixtral is served in bf16"
[ "$(field "$T/out" ranks_per_node)" = 4 ] || fail "ranks per node from the preset"
[ "$(field "$T/out" bytes_inter_node)" = 0 ] || fail "one node moved bytes across nodes"
[ "$(field "$T/out" bytes_intra_node)" -gt 0 ] || fail "the rebalance moved nothing"
# 100 tokens per step (recorded nothing: routed tokens 100 / top-2 = 50)
[ "$(field "$T/out" tokens_per_step)" = 50.0 ] || fail "tokens per step: $(field "$T/out" tokens_per_step)"
cp "$T/out" "$T/one.json"

# every rank its own node: every copy crosses nodes, none stays inside
expect_status 0 $r --ranks-per-node 1 --link-inter roce-200g
[ "$(field "$T/out" bytes_intra_node)" = 0 ] || fail "a copy between ranks stayed inside a node of one rank"
[ "$(field "$T/out" bytes_inter_node)" = "$(field "$T/one.json" bytes_intra_node)" ] ||
	fail "the same copies should cross nodes"
cp "$T/out" "$T/slow.json"
# the same copies at twice the inter-node bandwidth take half the time
expect_status 0 $r --ranks-per-node 1 --link-inter roce-400g
python3 - "$T/slow.json" "$T/out" <<'PY' || fail "transfer time does not follow the inter-node link"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert a["transfer_seconds"] > 0
assert abs(a["transfer_seconds"] - 2 * b["transfer_seconds"]) <= 2e-6, (a["transfer_seconds"], b["transfer_seconds"])
assert a["link_inter"] == "roce-200g" and b["link_inter"] == "roce-400g"
PY

# fp8 halves the bytes (plus one fp32 scale per 128 x 128 block)
expect_status 0 $r --quant fp8
python3 - "$T/one.json" "$T/out" <<'PY' || fail "fp8 should halve the bytes"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert b["quant"] == "fp8"
ratio = 2 * b["bytes_intra_node"] / a["bytes_intra_node"]
assert 1 < ratio < 1.001, ratio
PY
# 4 ranks x 3 slots hold 4 redundant experts: one per rank in each of the
# preset's 32 layers, 3 x 4096 x 14336 bf16 weights each
expect_status 0 $r --slots 3
python3 - "$T/out" <<'PY' || fail "HBM on redundant experts"
import json, sys
d = json.load(open(sys.argv[1]))
want = 32 * 3 * 4096 * 14336 * 2 / 2**30
assert abs(d["hbm_redundant_gib_per_rank"] - want) < 1e-5, (d["hbm_redundant_gib_per_rank"], want)
PY

# a measured step time is the denominator of the step-time share
expect_status 0 $r --step-ms 10
python3 - "$T/out" <<'PY' || fail "--step-ms share"
import json, sys
d = json.load(open(sys.argv[1]))
s = d["summary"]
assert d["estimated"] is False and d["params"]["step_ms"] == 10
assert abs(d["step_time_saved_share"] - s["saved_seconds"] / (0.010 * s["steps"])) < 1e-5
assert abs(d["baseline_step_ms"] - 10) < 1e-9
assert 0 < d["moe_time_saved_share"] <= 1
PY

# a measured step time shorter than the estimated MoE time is pointed out
expect_status 0 mt replay "$T/db" --model mixtral-8x7b --algo eplb --interval 5 --window 5 --delay 1 \
	--no-store --step-ms 0.01
expect_grep "$T/out" "^note: the estimated MoE time per step exceeds the measured --step-ms"

# stored replays keep every setting; `replays` shows them
expect_status 0 mt replay "$T/db" --algo eplb --interval 5 --window 5 --delay 1 --pay \
	--link-intra pcie5-x16 --link-inter ib-hdr-200g --ranks-per-node 2 --hardware h200
expect_grep "$T/out" "2 nodes x 2 ranks; pcie5-x16 inside a node .* ib-hdr-200g across nodes"
expect_grep "$T/out" "stop-the-world .* overlapped"
[ "$(sqlite3 "$T/db" "SELECT pay, quant, link_intra, link_inter, ranks_per_node, hardware FROM replays")" = \
	"1|bf16|pcie5-x16|ib-hdr-200g|2|h200" ] || fail "stored settings: $(sqlite3 "$T/db" "SELECT * FROM replays")"
expect_status 0 mt replays "$T/db"
expect_grep "$T/out" "2x2x2 .* yes bf16 +pcie5-x16/ib-hdr-200g"
expect_grep "$T/out" "net-overlap"
expect_status 0 mt replays --json "$T/db"
expect_grep "$T/out" '"pay": true, "quant": "bf16", "ranks_per_node": 2, "link_intra": "pcie5-x16", "link_inter": "ib-hdr-200g", "hardware": "h200"'

# compare carries the same deployment fields
expect_status 0 mt compare "$T/db" --algos static,eplb --steps 0:9 --format json --ranks-per-node 2
python3 - "$T/out" <<'PY' || fail "compare --json deployment fields"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["quant"] == "bf16" and d["ranks_per_node"] == 2 and d["tokens_per_step"] == 50
for a in d["algorithms"]:
    for k in ("bytes_intra_node", "bytes_inter_node", "transfer_seconds", "weights_moved_share",
              "hbm_redundant_gib_per_rank", "moe_time_saved_share", "step_time_saved_share"):
        assert k in a, k
    assert a["bytes_intra_node"] + a["bytes_inter_node"] == a["bytes"]
st = [a for a in d["algorithms"] if a["algorithm"] == "static"][0]
assert st["moe_time_saved_share"] == 0 and st["bytes"] == 0
PY

# place prices its copies the same way: every rank its own node, all across
expect_status 0 mt place "$T/db" --algo eplb --current static --json --ranks-per-node 1
python3 - "$T/out" <<'PY' || fail "place --json on two tiers"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ranks_per_node"] == 1 and d["link_inter"] == "ib-ndr-400g" and d["quant"] == "bf16"
assert d["moves"] > 0 and d["bytes_intra_node"] == 0 and d["bytes_inter_node"] == d["bytes"]
# the longest queue of any rank across nodes, at 50 GB/s
want = max(d["max_sends"], d["max_receives"]) * d["expert_bytes"] / 50e9
assert abs(d["transfer_seconds"] - want) < 1e-6 * want, (d["transfer_seconds"], want)
PY
expect_status 0 mt place "$T/db" --algo eplb --current static --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["bytes_inter_node"] == 0 and d["bytes_intra_node"] == d["bytes"] > 0' "$T/out" ||
	fail "place on one node moved bytes across nodes"
expect_status 2 mt place "$T/db" --algo eplb --ranks-per-node 3
expect_grep "$T/err" "^moetrace place: --ranks-per-node 3 does not divide 4 ranks"

# bad input: exit 2, naming the choices
expect_status 2 $r --link-intra nvlink9
expect_grep "$T/err" "^moetrace replay: --link-intra: unknown link 'nvlink9'(; did you mean 'nvlink3'\?)? \(nvlink3, .*roce-400g, .*ib-ndr-400g\)"
expect_status 2 $r --hardware tpu
expect_grep "$T/err" "^moetrace replay: --hardware: unknown preset 'tpu' \(h100, h200, b200, ascend-910b or ascend-910c\)"
expect_status 2 mt compare "$T/db" --hardware tpu
expect_grep "$T/err" "ascend-910c"
expect_status 2 $r --ranks-per-node 3
expect_grep "$T/err" "^moetrace replay: --ranks-per-node 3 does not divide 4 ranks"
expect_status 2 $r --step-ms 0
expect_grep "$T/err" "^moetrace replay: --step-ms: 0 is not a step time"
expect_status 2 $r --step-ms -5
expect_status 2 $r --link nvlink4 --link-inter roce-200g
expect_status 2 mt compare "$T/db" --step-ms 0

# without a model preset --us-per-token still times MoE compute, but there is
# no step time to take a share of: null, not 0
expect_status 0 mt import "$T/hot.csv" --into "$T/db" --run bare --ranks 4 --slots 2
expect_status 0 mt replay "$T/db" --run bare --algo eplb --interval 5 --window 5 --delay 1 \
	--no-store --json --us-per-token 1
python3 - "$T/out" <<'PY' || fail "--us-per-token without a model"
import json, sys
d = json.load(open(sys.argv[1]))
s = d["summary"]
assert d["step_time_saved_share"] is None and d["tokens_per_s"] is None
# no expert has a size: what the copies move is unknown, not 0
assert d["weights_moved_share"] is None and s["moves"] > 0 and s["bytes"] is None
# compute only: MoE time is 1 us x the busiest rank's tokens
want = s["saved_seconds"] / (d["baseline_moe_ms_per_step"] * 1e-3 * s["steps"])
assert s["saved_seconds"] > 0 and abs(d["moe_time_saved_share"] - want) < 1e-4, (d, want)
PY
