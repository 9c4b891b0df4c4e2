# top --snapshot: one frame as JSON, checked against hand-computed loads
# and against `moetrace place --json` fitted on the window's steps before
# it and scored on the window ("after" is out of sample, as a replay
# scores a rebalance); bad input.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || skip "python3 not installed"

# The hand trace of 0101: 1 layer, 4 experts, 2 ranks x 2 slots, static.
# Window heat [13,9,8,6]: static loads 22,14 (mean 18).
cat >"$T/t.csv" <<'CSV'
step,layer,expert,tokens
0,0,0,8
0,0,1,4
0,0,2,2
0,0,3,2
1,0,0,5
1,0,1,5
1,0,2,6
1,0,3,4
CSV
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run hand --ranks 2 --slots 2
expect_status 0 mt top --snapshot --algo eplb "$T/db"
cp "$T/out" "$T/hand.json"
python3 - "$T/hand.json" <<'PY' || fail "hand trace snapshot"
import json, sys
d = json.load(open(sys.argv[1]))
s = d["selected"]
assert d["run"]["name"] == "hand", d["run"]
assert d["layout"] == {"ranks": 2, "slots": 2, "placement": "static"}, d["layout"]
# a run shorter than the window: it starts at the first step, not at -254
assert d["window"]["from"] == 0 and d["window"]["to"] == 1 and d["window"]["steps"] == 2, d["window"]
assert d["header"]["last_step"] == 1 and d["header"]["dropped"] == 0, d["header"]
assert s["before"] == [22, 14] and s["mean"] == 18, s
assert abs(s["imbalance_before"] - 22 / 18) < 1e-6
# no steps before the window: no "after" rather than one fitted on the
# steps it would be scored on
assert s["after"] is None and s["imbalance_after"] is None, s
assert d["layers"][0]["after"] is None and d["layers"][0]["moves"] is None, d["layers"]
assert s["heat"] == [13, 9, 8, 6]
assert [round(x, 3) for x in s["history"]] == [1.5, 1.0], s["history"]
PY

# A generated DeepSeek-V3-shaped trace: the "after" bars are the device
# loads on the window of the placement `place --json --current static`
# fits on the 8 steps before it (the flagship's forecast from those steps
# and the history before them, as top fits it), the "after" column is place's next_imbalance for them, and the
# "before" bars are the static layout's.
expect_status 0 mt gen --model deepseek-v3 --steps 40 --seed 3 -q "$T/g.db"
expect_status 0 mt top --snapshot --layer 5 --window 8 "$T/g.db"
cp "$T/out" "$T/g.json"
range=$(python3 -c 'import json,sys; w=json.load(open(sys.argv[1]))["window"]; print("%d:%d" % (w["from"], w["to"]))' "$T/g.json")
[ "$range" = "32:39" ] || fail "window of 8 steps ending at 39 is $range"
fit=$(python3 -c 'import json,sys; w=json.load(open(sys.argv[1]))["selected"]["after_window"]; print("%d:%d" % (w["from"], w["to"]))' "$T/g.json")
[ "$fit" = "24:31" ] || fail "after fitted on $fit, not the 8 steps before the window"
expect_status 0 mt place "$T/g.db" --steps "$fit" --layer 5 --current static --json
cp "$T/out" "$T/place.json"
python3 - "$T/g.json" "$T/place.json" <<'PY' || fail "snapshot and place disagree"
import json, sys
snap, place = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
s = snap["selected"]
R, S, E = place["ranks"], place["slots"], snap["run"]["experts"]
assert s["layer"] == 5 and len(s["before"]) == R == 64 and S == 5
heat = s["heat"]
def loads(p2l):
    cnt = [0] * E
    for e in p2l: cnt[e] += 1
    return [sum(heat[e] / cnt[e] for e in p2l[r * S:(r + 1) * S]) for r in range(R)]
static = [p % E for p in range(R * S)]
lay = [l for l in place["layers"] if l["layer"] == 5][0]
want_after, want_before = loads(lay["phy2log"]), loads(static)
for got, want in ((s["after"], want_after), (s["before"], want_before)):
    assert all(abs(a - b) < 1e-3 for a, b in zip(got, want)), (got, want)
# the out-of-sample score, not the fitted one
assert place["next_window"] == [32, 39], place["next_window"]
assert abs(s["imbalance_after"] - place["next_imbalance"]) < 1e-4, (s["imbalance_after"], place)
assert abs(s["imbalance_after"] - lay["imbalance"]) > 1e-3, (s["imbalance_after"], lay["imbalance"])
row = snap["layers"][5]
assert row["moves"] == lay["moves"], (row["moves"], lay["moves"])
assert abs(row["after"] - place["next_imbalance"]) < 1e-4
assert snap["algo"] == place["algorithm"]
PY

# --phase decode: the window's decode steps only, as place --phase decode
# fitted on the 16 steps before it and scored on it
expect_status 0 mt top --snapshot --phase decode --window 16 --layer 2 "$T/g.db"
cp "$T/out" "$T/d.json"
expect_status 0 mt place "$T/g.db" --phase decode --steps 8:23 --layer 2 --current static --json
python3 - "$T/d.json" "$T/out" <<'PY' || fail "--phase decode disagrees with place"
import json, sys
snap, place = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
w = snap["window"]
assert w["phase"] == "decode" and w["from"] == 24 and w["to"] == 39, w
assert w["steps"] == place["next_steps"] and 0 < w["steps"] < 16, (w, place["next_steps"])
assert abs(snap["selected"]["imbalance_after"] - place["next_imbalance"]) < 1e-4
PY
expect_status 2 mt top --snapshot --phase warmup "$T/db"
expect_grep "$T/err" "--phase: 'warmup' is not prefill or decode"

# bad input: clear messages, exit 2, nothing written
expect_status 2 mt top --snapshot "$T/nosuch.db"
expect_grep "$T/err" "moetrace top: cannot open '.*nosuch.db'"
expect_status 2 mt top --snapshot --algo nosuch "$T/db"
expect_grep "$T/err" "no algorithm named 'nosuch' \\(known: .*eplb"
expect_status 2 mt top --snapshot --layer 3 "$T/db"
expect_grep "$T/err" "--layer 3: run 'hand' has 1 layers"
expect_status 2 mt top --snapshot --window 2 "$T/db"
expect_grep "$T/err" "--window"
expect_status 2 mt top --snapshot --ranks 3 --slots 1 "$T/db"
expect_grep "$T/err" "cannot hold 4 experts"
expect_status 2 mt top --snapshot --run nosuch "$T/db"
expect_grep "$T/err" "no run named 'nosuch'"
expect_status 2 mt top "$T/db" </dev/null
expect_grep "$T/err" "must be a terminal"
expect_status 2 mt top --snapshot
# read-only: a database it cannot write is fine, and is not changed
chmod a-w "$T/db"
sum1=$(cksum <"$T/db")
expect_status 0 mt top --snapshot "$T/db"
[ "$(cksum <"$T/db")" = "$sum1" ] || fail "top changed the database"
exit 0
