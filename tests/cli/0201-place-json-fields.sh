# place --json on a small imported trace: the fields the command promises,
# checked for consistency with the heat rather than against fixed numbers.
. "$(dirname "$0")/lib.sh"

python3 - "$T/t.csv" <<'PY'
import random, sys
random.seed(5)
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens\n")
    for s in range(12):
        for l in range(3):
            for e in range(8):
                f.write("%d,%d,%d,%d\n" % (s, l, e, [90, 40, 20, 10, 6, 4, 2, 1][(e + l) % 8] + random.randint(0, 5)))
PY
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run small --ranks 4 --slots 3
algo=eplb
mt place --list | grep -q "^eplb " || algo=static

# without --current the placement in force at the end of the fitting window
# is the current one (none is recorded here: the static layout), as compare
# takes it: the same plan as --current static, its copies counted from it
expect_status 0 mt place "$T/db" --algo $algo --json --steps 2:9 --current static
cp "$T/out" "$T/static.json"
expect_status 0 mt place "$T/db" --algo $algo --json --steps 2:9
python3 - "$T/out" "$T/static.json" <<'PY' || fail "place without --current is not place --current static"
import json, sys
d, s = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert [l["phy2log"] for l in d["layers"]] == [l["phy2log"] for l in s["layers"]]
assert "moves" in d and d["moves"] == s["moves"] and d["current"] == "static", d.get("current")
PY
# --current none places from scratch: no current placement, no moves
expect_status 0 mt place "$T/db" --algo $algo --json --steps 2:9 --current none
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert "moves" not in d and "current" not in d, d.keys()' "$T/out" ||
	fail "place --current none counted moves"
python3 - "$T/out" "$T/t.csv" <<'PY' || fail "place --json fields"
import json, sys, csv
d = json.load(open(sys.argv[1]))
for k in ("algorithm", "seconds", "imbalance", "layers", "balancedness", "peak_to_average_mean",
          "peak_to_average_max", "trtllm_imbalance"):
    assert k in d, k
# token drop only where a capacity factor is given
assert "token_drop" not in d and "capacity_factor" not in d
assert d["steps"] == 8 and d["ranks"] == 4 and d["slots"] == 3
heat = [[0] * 8 for _ in range(3)]
for r in csv.DictReader(open(sys.argv[2])):
    if 2 <= int(r["step"]) <= 9:
        heat[int(r["layer"])][int(r["expert"])] += int(r["tokens"])
smax = smean = 0
assert [l["layer"] for l in d["layers"]] == [0, 1, 2]
for l in d["layers"]:
    p = l["phy2log"]
    assert len(p) == 12 and set(p) == set(range(8))
    cnt = [p.count(e) for e in range(8)]
    load = [sum(heat[l["layer"]][e] / cnt[e] for e in p[r * 3:(r + 1) * 3]) for r in range(4)]
    assert abs(max(load) - l["max_load"]) < 1e-3 * max(load)
    assert abs(sum(load) / 4 - l["mean_load"]) < 1e-3 * max(load)
    assert abs(l["imbalance"] - l["max_load"] / l["mean_load"]) < 1e-4
    assert l["lower_bound"] <= l["max_load"] + 1e-6
    assert l["lower_bound"] >= sum(load) / 4 - 1e-6
    smax += l["max_load"]; smean += l["mean_load"]
assert abs(d["imbalance"] - smax / smean) < 1e-4
assert abs(d["balancedness"] - smean / smax) < 1e-4
par = [l["imbalance"] for l in d["layers"]]
assert abs(d["peak_to_average_mean"] - sum(par) / len(par)) < 1e-4
assert abs(d["peak_to_average_max"] - max(par)) < 1e-4
assert abs(d["trtllm_imbalance"] - (d["peak_to_average_mean"] - 1)) < 1e-4
PY

# with --current static and a model preset: moves per layer and bytes
expect_status 0 mt place "$T/db" --algo $algo --json --current static --model deepseek-v3 --quant bf16
python3 - "$T/out" <<'PY' || fail "place --json moves and bytes"
import json, sys
d = json.load(open(sys.argv[1]))
per = 3 * 7168 * 2048 * 2          # DeepSeek-V3 expert in bf16
assert d["expert_bytes"] == per
static = [p % 8 for p in range(12)]
total = 0
for l in d["layers"]:
    p = l["phy2log"]
    # copies: experts a rank holds now that it did not hold under static
    want = sum(len(set(p[r*3:r*3+3]) - set(static[r*3:r*3+3])) for r in range(4))
    assert l["moves"] == want, (l["moves"], want)
    assert l["bytes"] == want * per
    # each copy [expert, from, to]: the sender held it, the receiver did not and now does
    assert len(l["copies"]) == want
    for e, src, dst in l["copies"]:
        assert e in static[src*3:src*3+3] and e not in static[dst*3:dst*3+3]
        assert e in p[dst*3:dst*3+3]
    total += want
assert d["moves"] == total and d["bytes"] == total * per
assert d["transfer_seconds"] >= 0 and d["link"] == "nvlink4"
sends = [0] * 4; recvs = [0] * 4
for l in d["layers"]:
    for e, src, dst in l["copies"]:
        sends[src] += 1; recvs[dst] += 1
assert d["max_sends"] == max(sends) and d["max_receives"] == max(recvs)
# seconds: the busiest direction of the busiest rank at 450 GB/s
want_s = max(max(sends), max(recvs)) * per / 450e9
assert abs(d["transfer_seconds"] - want_s) < 1e-6 * max(want_s, 1e-3), (d["transfer_seconds"], want_s)
PY

# one layer only
expect_status 0 mt place "$T/db" --algo $algo --json --layer 1
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [l["layer"] for l in d["layers"]]==[1]' "$T/out" ||
	fail "--layer 1"
# --redundant instead of --slots: (8 + 4) / 4 = 3 slots
expect_status 0 mt place "$T/db" --algo $algo --ranks 4 --redundant 4 --json
expect_grep "$T/out" '"ranks":4,"slots":3'
# --capacity F: the share of tokens over F x mean device load, with F
expect_status 0 mt place "$T/db" --algo $algo --json --capacity 1.1
python3 - "$T/out" <<'PY' || fail "place --json --capacity fields"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["capacity_factor"] == 1.1 and 0 <= d["token_drop"] < 1, d
PY
# text output
expect_status 0 mt place "$T/db" --algo $algo --current static --model deepseek-v3 --link pcie5-x16
! grep -q "token drop" "$T/out" || fail "token drop shown without --capacity"
expect_status 0 mt place "$T/db" --algo $algo --current static --model deepseek-v3 --link pcie5-x16 --capacity 1.25
expect_grep "$T/out" "^in hindsight, on the fitted steps: overall imbalance"
expect_grep "$T/out" "^no steps after the fitting window to score on"
expect_grep "$T/out" "balancedness \\(vLLM, SGLang: mean/max\\)"
expect_grep "$T/out" "token drop at capacity 1\\.25 x mean device load: [0-9.]+% of tokens \\(an engine that caps"
expect_grep "$T/out" "at 63\\.0 GB/s per rank \\(pcie5-x16\\)"
