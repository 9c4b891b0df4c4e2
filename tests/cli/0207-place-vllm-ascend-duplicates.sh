# vllm-ascend's expert_map_path loader (vllm_ascend/eplb/core/eplb_utils.py)
# maps each device's experts to local slots by expert id and numbers the
# global slots by device 0's count of distinct experts, so a device that
# holds an expert twice shifts routes and the engine does not refuse it.
# moetrace never writes such a file: `place` moves the second replica to
# another rank, or refuses when it cannot; `export` refuses.
. "$(dirname "$0")/lib.sh"

# the routes vllm-ascend builds from a file: per device, expert -> local
# slot (the last slot of an expert wins), global slot = local + device x
# (distinct experts of device 0); every route must land on its expert
cat >"$T/routes.py" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
bad = total = 0
for layer in d["layer_list"]:
    devs = [dev["device_expert"] for dev in layer["device_list"]]
    flat = [e for dev in devs for e in dev]
    local = [{e: k for k, e in enumerate(dev)} for dev in devs]
    width = len(local[0])
    for dev, m in enumerate(local):
        for e, k in m.items():
            total += 1
            g = k + dev * width
            bad += g >= len(flat) or flat[g] != e
print(bad, total)
sys.exit(1 if bad else 0)
PY

# the FlashLB example heat (8 experts, 8 ranks x 2 slots): DeepSeek's EPLB
# puts both replicas of expert 1 on one rank
python3 - "$T/fl.csv" <<'PY'
import sys
w = [600, 560, 120, 120, 20, 10, 10, 10]
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens\n")
    for s in range(2):
        for l in range(2):
            for e in range(8):
                f.write("%d,%d,%d,%d\n" % (s, l, e, w[e]))
PY
expect_status 0 mt import "$T/fl.csv" --into "$T/db" --run f
# written for SGLang, eplb's own answer (a duplicate SGLang holds)
expect_status 0 mt place "$T/db" --algo eplb --ranks 8 --slots 2 --json -o "$T/s.json" --format sglang
python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))["physical_to_logical_map"][0]
assert any(p[2*r] == p[2*r+1] for r in range(8)), p' "$T/s.json" ||
	fail "eplb no longer reproduces DeepSeek's duplicate (fix this test's premise)"
cp "$T/out" "$T/sglang.json"
# written for vllm-ascend: no device holds an expert twice, every route is
# right, the replica counts and the maximum load are eplb's
expect_status 0 mt place "$T/db" --algo eplb --ranks 8 --slots 2 --json -o "$T/v.json"
expect_grep "$T/err" "note: eplb put an expert twice on one rank in 2 of 2 layers"
python3 "$T/routes.py" "$T/v.json" >/dev/null || fail "vllm-ascend would misroute $(python3 "$T/routes.py" "$T/v.json") routes"
python3 - "$T/out" "$T/sglang.json" "$T/v.json" <<'PY' || fail "moved placement"
import json, sys
from collections import Counter
new = json.load(open(sys.argv[1])); old = json.load(open(sys.argv[2]))
f = json.load(open(sys.argv[3]))
for ln, lo, lf in zip(new["layers"], old["layers"], f["layer_list"]):
    p = ln["phy2log"]
    assert [e for d in lf["device_list"] for e in d["device_expert"]] == p
    assert all(p[2*r] != p[2*r+1] for r in range(8)), p
    assert Counter(p) == Counter(lo["phy2log"])
    assert ln["max_load"] == lo["max_load"], (ln["max_load"], lo["max_load"])
PY

# too skewed to keep the counts: expert 0 gets 9 replicas on 2 ranks
python3 - "$T/sk.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens\n")
    for s in range(2):
        for e in range(16):
            f.write("%d,0,%d,%d\n" % (s, e, 10000 if e == 0 else 10 + e))
PY
expect_status 0 mt import "$T/sk.csv" --into "$T/sk" --run s
expect_status 2 mt place "$T/sk" --algo eplb --ranks 2 --slots 12 -o "$T/m.json" --format vllm-ascend
expect_grep "$T/err" "cannot write '.*m.json' for vllm-ascend.*expert 0 has 9 replicas on 2 ranks"
[ -e "$T/m.json" ] && fail "a refused map was written"
ls "$T" | grep -q tmp && fail "temporary file left behind"
# an algorithm that places an expert once per rank writes it
expect_status 0 mt place "$T/sk" --algo flashlb --ranks 2 --slots 12 -o "$T/m.json" --format vllm-ascend
python3 "$T/routes.py" "$T/m.json" >/dev/null || fail "flashlb map misroutes"

# export of a deployed placement with a duplicate (from an SGLang map):
# refused for vllm-ascend, written for the engines that hold it
printf '{"physical_to_logical_map": [[0, 1, 2, 3, 0, 0], [0, 1, 2, 3, 0, 0]]}\n' >"$T/dup_map.json"
expect_status 0 mt import "$MOETRACE_TOP/tests/data/heat.csv" --into "$T/dep" --run d \
	--deployed "$T/dup_map.json" --ranks 2
expect_status 2 mt export "$T/dep" --placement deployed --format vllm-ascend -o "$T/e.json"
expect_grep "$T/err" "cannot write '.*e.json': MoE layer 0: expert 0 is twice on rank 1, which vllm-ascend's loader misroutes"
[ -e "$T/e.json" ] && fail "a refused export was written"
expect_status 0 mt export "$T/dep" --placement deployed --format sglang -o "$T/e.json"
expect_status 0 mt export "$T/dep" --placement deployed --format trtllm -o "$T/e.yaml"
exit 0
