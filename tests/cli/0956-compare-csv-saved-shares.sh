#!/bin/sh
# compare's CSV has the step-time model's columns the table and JSON
# have: moe_time_saved_share, step_time_saved_share and tokens_per_s,
# the same figures, and empty where they are unknown.
. "$(dirname "$0")/lib.sh"

expect_status 0 mt gen --model mixtral-8x7b --steps 40 --seed 3 -q "$T/db"
expect_status 0 mt compare "$T/db" --algos static,eplb --format json
cp "$T/out" "$T/j"
expect_status 0 mt compare "$T/db" --algos static,eplb --per-layer --format csv
expect_grep "$T/out" "^scope,.*,next_step_p99_imbalance,moe_time_saved_share,step_time_saved_share,tokens_per_s$"
python3 - "$T/j" "$T/out" <<'PY' || fail "the CSV's saved shares differ from JSON's"
import csv, json, sys
j = {a["algorithm"]: a for a in json.load(open(sys.argv[1]))["algorithms"]}
rows = list(csv.DictReader(open(sys.argv[2])))
assert all(len(r) == len(rows[0]) and None not in r for r in rows)
for r in rows:
    if r["scope"] != "overall":
        assert r["tokens_per_s"] == "" and r["moe_time_saved_share"] == "", r
        continue
    a = j[r["algorithm"]]
    for k in ("moe_time_saved_share", "step_time_saved_share", "tokens_per_s"):
        assert a[k] is not None and abs(float(r[k]) - a[k]) <= 1e-4 * max(1, abs(a[k])), (k, r[k], a[k])
PY

# without a model nothing sizes the step: empty fields, as JSON's null
awk 'BEGIN { print "step,layer,expert,tokens"; for (s = 0; s < 8; s++) for (e = 0; e < 4; e++) print s ",0," e "," (1 + (s * e) % 5) }' >"$T/c.csv"
expect_status 0 mt import "$T/c.csv" --into "$T/c.db" --ranks 2 --slots 3
expect_status 0 mt compare "$T/c.db" --algos static,eplb --format csv
expect_grep "$T/out" "^overall,eplb,.*[0-9],,,$"
exit 0
