# place: hierarchical layout options, phase selection and episodes of a
# recorded window.
. "$(dirname "$0")/lib.sh"

# 1 layer x 8 experts; prefill steps heat experts 0-3, decode steps 4-7
python3 - "$T/t.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens,phase\n")
    for s in range(8):
        pre = s % 2 == 0
        for e in range(8):
            hot = e < 4 if pre else e >= 4
            f.write("%d,0,%d,%d,%s\n" % (s, e, (40 + 10 * (e % 4)) if hot else 1, "prefill" if pre else "decode"))
PY
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run ph --ranks 4 --slots 3

# phase: the window holds only that phase's steps and heat
expect_status 0 mt place "$T/db" --algo static --phase prefill --json
python3 - "$T/out" <<'PY' || fail "--phase prefill"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["steps"] == 4, d["steps"]
l = d["layers"][0]
# static: slots hold 0..7 then 0..3: replicas 2 for experts 0-3
# prefill heat per step: experts 0-3 = 40,50,60,70, 4-7 = 1 -> x4 steps
heat = [4 * h for h in (40, 50, 60, 70, 1, 1, 1, 1)]
p = [s % 8 for s in range(12)]
cnt = [p.count(e) for e in range(8)]
load = [sum(heat[e] / cnt[e] for e in p[r*3:r*3+3]) for r in range(4)]
assert abs(l["max_load"] - max(load)) < 1e-6, (l["max_load"], load)
PY
expect_status 0 mt place "$T/db" --algo static --phase decode --json
expect_grep "$T/out" '"steps":4'
expect_status 2 mt place "$T/db" --algo static --phase both
expect_grep "$T/err" "--phase: 'both' is not prefill or decode"

# episodes split the window; a heat file carries its own
expect_status 0 mt place "$T/db" --algo static --episodes 4 --json
printf '{"heat": [[1, 2, 3, 4, 5, 6, 7, 8]], "episodes": [[[1, 2, 3, 4, 5, 6, 7, 8]]]}' >"$T/h.json"
expect_status 2 mt place --heat "$T/h.json" --algo static --ranks 4 --slots 2 --episodes 2
expect_grep "$T/err" "carries its own"
expect_status 0 mt place --heat "$T/h.json" --algo static --ranks 4 --slots 2 --json
expect_status 2 mt place --heat "$T/h.json" --algo static --ranks 4 --slots 2 --phase decode
expect_grep "$T/err" "not a heat file"

# hierarchical options are checked against the layout
expect_status 2 mt place "$T/db" --algo static --nodes 3 --groups 2
expect_grep "$T/err" "--nodes 3 does not divide 4 ranks"
expect_status 2 mt place "$T/db" --algo static --nodes 2
expect_grep "$T/err" "--nodes needs --groups"
if mt place --list | grep -q "^eplb-hier "; then
	expect_status 0 mt place "$T/db" --algo eplb-hier --nodes 2 --groups 2 --json
	python3 - "$T/out" <<'PY' || fail "eplb-hier placement"
import json, sys
d = json.load(open(sys.argv[1]))
p = d["layers"][0]["phy2log"]
assert len(p) == 12 and set(p) == set(range(8))
PY
fi
