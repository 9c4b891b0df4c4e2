# report: the best algorithm is the one with the lowest mean per-step
# imbalance on the next window (MoE time follows each step's straggler),
# not the lowest on the window's summed heat.  A hand-made case where the
# two rankings differ: 1 layer, 4 experts, 2 ranks x 2 slots.  eplb fitted
# on 0-5 pairs experts {0,3} and {1,2}; the static layout pairs {0,1} and
# {2,3}.  The next window alternates three kinds of step: experts 0 and 3
# hot (eplb 2.0, static 1.0), 1 and 2 hot (likewise), 0 and 1 hot (eplb
# 1.0, static 2.0).  Summed, eplb is perfect (1.0 against 1.333); per step
# static is better (1.333 against 1.667).
. "$(dirname "$0")/lib.sh"
mt place --list | grep -q "^eplb " || skip "no eplb in this build"

python3 - "$T/t.csv" <<'PY'
import sys
kinds = [(10, 0, 0, 10), (0, 10, 10, 0), (10, 10, 0, 0)]
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens\n")
    for s in range(12):
        row = (10, 9, 2, 1) if s < 6 else kinds[(s - 6) % 3]
        for e in range(4):
            f.write("%d,0,%d,%d\n" % (s, e, row[e]))
PY
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run b --ranks 2 --slots 2

# compare shows the two rankings disagree on this trace
expect_status 0 mt compare "$T/db" --algos static,eplb --format json
python3 - "$T/out" <<'PY' || fail "the case should rank differently summed and per step"
import json, sys
d = {a["algorithm"]: a for a in json.load(open(sys.argv[1]))["algorithms"]}
assert d["eplb"]["next_imbalance"] < d["static"]["next_imbalance"], d
assert d["eplb"]["next_step_mean_imbalance"] > d["static"]["next_step_mean_imbalance"], d
PY
st=$(python3 -c 'import json,sys; d={a["algorithm"]: a for a in json.load(open(sys.argv[1]))["algorithms"]}; print("%.4f" % d["static"]["next_step_mean_imbalance"])' "$T/out")

expect_status 0 mt report "$T/db" -o "$T/rep" --algos static,eplb --episodes 0
expect_grep "$T/out" "^best: static, mean per-step imbalance $st on steps 6-11 \\(fitted on 0-5; "
exit 0
