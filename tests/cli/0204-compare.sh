# compare: fitting window and the window after it, every output format,
# and the static row's "next" imbalance recomputed here from the CSV.
. "$(dirname "$0")/lib.sh"

# 2 layers x 8 experts, 20 steps; the hot experts change at step 10 so the
# following window differs from the fitting one.
python3 - "$T/t.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens,phase\n")
    for s in range(20):
        for l in range(2):
            for e in range(8):
                hot = (e + l + (3 if s >= 10 else 0)) % 8
                f.write("%d,%d,%d,%d,%s\n" % (s, l, e, [80, 40, 20, 10, 6, 4, 2, 1][hot] + s % 3,
                                              "prefill" if s % 4 == 0 else "decode"))
PY
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run cmp --ranks 4 --slots 3
algos=static
mt place --list | grep -q "^eplb " && algos=static,eplb

check_static_next() { # JSON file, first step, last step of the next window, phase filter
	python3 - "$1" "$T/t.csv" "$2" "$3" "${4:-}" <<'PY'
import csv, json, sys
d = json.load(open(sys.argv[1])); a, b, ph = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
heat = [[0] * 8 for _ in range(2)]
for r in csv.DictReader(open(sys.argv[2])):
    if a <= int(r["step"]) <= b and (not ph or r["phase"] == ph):
        heat[int(r["layer"])][int(r["expert"])] += int(r["tokens"])
p = [s % 8 for s in range(12)]             # static: slot s holds expert s mod 8
cnt = [p.count(e) for e in range(8)]
smax = smean = 0
for l in range(2):
    load = [sum(heat[l][e] / cnt[e] for e in p[r*3:r*3+3]) for r in range(4)]
    smax += max(load); smean += sum(load) / 4
st = [x for x in d["algorithms"] if x["algorithm"] == "static"][0]
assert abs(st["next_imbalance"] - smax / smean) < 1e-4, (st["next_imbalance"], smax / smean)
# per step: the overall imbalance of each step, its mean and p99 (linear interpolation)
steps = {}
for r in csv.DictReader(open(sys.argv[2])):
    s = int(r["step"])
    if a <= s <= b and (not ph or r["phase"] == ph):
        steps.setdefault(s, [[0] * 8 for _ in range(2)])[int(r["layer"])][int(r["expert"])] += int(r["tokens"])
v = []
for h in steps.values():
    mx = mn = 0
    for l in range(2):
        load = [sum(h[l][e] / cnt[e] for e in p[r*3:r*3+3]) for r in range(4)]
        mx += max(load); mn += sum(load) / 4
    v.append(mx / mn)
v.sort()
k = 0.99 * (len(v) - 1); lo = int(k); hi = min(lo + 1, len(v) - 1)
p99 = v[lo] + (v[hi] - v[lo]) * (k - lo)
assert abs(st["next_step_mean_imbalance"] - sum(v) / len(v)) < 1e-4
assert abs(st["next_step_p99_imbalance"] - p99) < 1e-4, (st["next_step_p99_imbalance"], p99)
assert st["moves"] == 0
PY
}

# --steps A:B fits on A..B and scores on the same number of steps after B
expect_status 0 mt compare "$T/db" --algos $algos --steps 2:6 --format json
expect_grep "$T/out" '"fit_window":\[2,6\],"fit_steps":5,"next_window":\[7,11\],"next_steps":5'
check_static_next "$T/out" 7 11 || fail "static next imbalance on 7..11"
# default: first half fits, second half scores
expect_status 0 mt compare "$T/db" --algos $algos --format json
expect_grep "$T/out" '"fit_window":\[0,9\],"fit_steps":10,"next_window":\[10,19\]'
check_static_next "$T/out" 10 19 || fail "static next imbalance on 10..19"
python3 - "$T/out" <<'PY' || fail "compare JSON fields"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["current"] == "static"
for a in d["algorithms"]:
    for k in ("fit_imbalance", "next_imbalance", "next_step_mean_imbalance", "gap_fit", "gap_next",
              "moves", "bytes", "transfer_seconds", "seconds", "per_layer"):
        assert k in a, k
    assert len(a["per_layer"]) == 2
    for l in a["per_layer"]:
        assert l["gap_fit"] >= -1e-9 and l["gap_next"] >= -1e-9
    assert a["gap_fit"] >= -1e-9 and a["gap_next"] >= -1e-9   # never below the lower bound
byname = {a["algorithm"]: a for a in d["algorithms"]}
if "eplb" in byname:
    assert byname["eplb"]["fit_imbalance"] <= byname["static"]["fit_imbalance"]
PY
# phase: only decode steps
expect_status 0 mt compare "$T/db" --algos static --phase decode --format json
check_static_next "$T/out" 10 19 decode || fail "static next imbalance, decode only"
expect_grep "$T/out" '"fit_steps":7,"next_window":\[10,19\],"next_steps":8'

# every format shows one row per algorithm
expect_status 0 mt compare "$T/db" --algos $algos --model deepseek-v3 --quant w4a8 --link hccs
expect_grep "$T/out" "^static +[0-9.]+ +[0-9.]+ "
expect_grep "$T/out" "\\(deepseek-v3 w4a8\\); 1 node x 4 ranks, transfer at 196\\.0 GB/s per rank inside a node \\(hccs\\) and 196\\.0 GB/s across \\(hccs\\)"
expect_status 0 mt compare "$T/db" --algos $algos --format markdown --per-layer
expect_grep "$T/out" "^\\| algorithm \\| fit \\| next \\|"
expect_grep "$T/out" "^\\| static \\| "
expect_grep "$T/out" "^\\| 1 \\| "
expect_status 0 mt compare "$T/db" --algos $algos --format csv --per-layer --bandwidth 10
expect_grep "$T/out" "^scope,algorithm,layer,fit_imbalance,next_imbalance"
expect_grep "$T/out" "^overall,static,,"
expect_grep "$T/out" "^layer,static,1,"
[ "$(grep -c '^layer,' "$T/out")" -eq $(( $(echo $algos | tr , '\n' | wc -l) * 2 )) ] || fail "per-layer CSV rows"

# bad input
expect_status 2 mt compare "$T/db" --algos static,nosuch
expect_grep "$T/err" "unknown algorithm 'nosuch'"
expect_status 2 mt compare "$T/db" --steps 10:19
expect_grep "$T/err" "no steps of run 'cmp' after the fitting window"
expect_status 2 mt compare "$T/db" --format xml
expect_status 2 mt compare "$T/db" --ranks 1 --slots 2
expect_grep "$T/err" "cannot hold 8 experts"
