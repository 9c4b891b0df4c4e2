# place: fitted on --steps A:B, scored first on the steps after B (the
# figure a deployment meets), the fitted figure labelled "in hindsight";
# without steps after B, the same fit made on earlier steps (holdout);
# next_imbalance in the JSON equals what compare reports for the same
# windows, and the window after the fitting one ends at the end of the run.
. "$(dirname "$0")/lib.sh"

# 2 layers x 8 experts, 30 steps; the hot experts move at step 10, so a
# placement fitted on 0..9 is far better in hindsight than on 10..19
python3 - "$T/t.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens\n")
    for s in range(30):
        for l in range(2):
            for e in range(8):
                hot = (e + l + (3 if s >= 10 else 0)) % 8
                f.write("%d,%d,%d,%d\n" % (s, l, e, [80, 40, 20, 10, 6, 4, 2, 1][hot] + s % 3))
PY
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run nx --ranks 4 --slots 3
algo=static
mt place --list | grep -q "^eplb " && algo=eplb

# text: the out-of-sample line comes before any fitted figure
expect_status 0 mt place "$T/db" --algo $algo --steps 0:9
expect_grep "$T/out" "^on the next 10 steps \\(10-19\\), not fitted on: imbalance [0-9.]+ "
expect_grep "$T/out" "^in hindsight, on the fitted steps: overall imbalance"
first=$(grep -n "not fitted on" "$T/out" | cut -d: -f1)
fitted=$(grep -n "in hindsight" "$T/out" | head -1 | cut -d: -f1)
[ "$first" -lt "$fitted" ] || fail "the next-window figure should come first"

# JSON: next_imbalance is compare's next_imbalance for the same windows
expect_status 0 mt place "$T/db" --algo $algo --steps 0:9 --current static --json
cp "$T/out" "$T/place.json"
expect_status 0 mt compare "$T/db" --algos $algo --steps 0:9 --current static --format json
python3 - "$T/place.json" "$T/out" <<'PY' || fail "place next_imbalance against compare"
import json, sys
p = json.load(open(sys.argv[1])); c = json.load(open(sys.argv[2]))
a = c["algorithms"][0]
assert p["fit_window"] == [0, 9] and p["next_window"] == c["next_window"] == [10, 19], (p, c)
assert p["next_steps"] == c["next_steps"] == 10
assert abs(p["next_imbalance"] - a["next_imbalance"]) < 1e-6, (p["next_imbalance"], a)
assert abs(p["next_step_mean_imbalance"] - a["next_step_mean_imbalance"]) < 1e-6
assert abs(p["imbalance"] - a["fit_imbalance"]) < 1e-6
# the hot experts moved: the fitted figure flatters the placement
assert p["next_imbalance"] > p["imbalance"] + 0.05, p
PY

# the next window is as long as the fitting one, or runs to the end
expect_status 0 mt place "$T/db" --algo $algo --steps 10:24 --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["next_window"] == [25, 29] and d["next_steps"] == 5, d' "$T/out" ||
	fail "next window to the end of the run"
# no later steps: no next figure, the fitted ones in hindsight, and what to
# expect from the same fit made earlier: on the window's length of steps
# before it and scored on the window, which is place's next-window figure
# for those steps; when the run has no such steps, on the window's first
# half and scored on its second
# (odd: an odd length, the first half's 12 steps fit and the 12 after score)
for w in late:20:29 before:10:19 all:6:29 half:6:17 odd:5:29 oddhalf:5:16; do
	expect_status 0 mt place "$T/db" --algo $algo --steps "${w#*:}" --json
	cp "$T/out" "$T/${w%%:*}.json"
done
python3 - "$T" <<'PY' || fail "the holdout is not place's next-window figure on the earlier steps"
import json, sys
d = lambda n: json.load(open("%s/%s.json" % (sys.argv[1], n)))
late, before, al, half = d("late"), d("before"), d("all"), d("half")
for p, q, on, fit, scored in ((late, before, "window before", [10, 19], [20, 29]),
                              (al, half, "first half", [6, 17], [18, 29]),
                              (d("odd"), d("oddhalf"), "first half", [5, 16], [17, 28])):
    assert "next_imbalance" not in p, p
    h = p["holdout"]
    assert h["fitted_on"] == on and h["fit_window"] == fit == q["fit_window"], (h, q)
    assert h.get("steps_before") == (None if on == "window before" else "are not in the run"), h
    assert h["scored_window"] == scored == q["next_window"] and h["scored_steps"] == q["next_steps"], (h, q)
    assert h["fit_steps"] == q["steps"], (h, q)
    assert abs(h["imbalance"] - q["next_imbalance"]) < 1e-9, (h, q)
    assert abs(h["step_mean_imbalance"] - q["next_step_mean_imbalance"]) < 1e-9, (h, q)
# with a next window there is no holdout
assert "holdout" not in before, before
PY
# steps missing before the window (a gap in the run): its first half fits
python3 - "$T/gap.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens\n")
    for s in list(range(10)) + list(range(40, 50)):
        for e in range(8):
            f.write("%d,0,%d,%d\n" % (s, e, [80, 40, 20, 10, 6, 4, 2, 1][(e + s // 5) % 8]))
PY
expect_status 0 mt import "$T/gap.csv" --into "$T/gap.db" --run g --ranks 4 --slots 3
expect_status 0 mt place "$T/gap.db" --algo $algo --steps 40:49 --json
python3 -c 'import json,sys; h=json.load(open(sys.argv[1]))["holdout"]
assert h["fit_window"] == [40, 44] and h["fit_steps"] == 5 and h["scored_window"] == [45, 49], h
assert h["fitted_on"] == "first half" and h["steps_before"] == "hold no step with a token", h' "$T/out" ||
	fail "a gap before the window"

# with -o for vllm-ascend, the holdout is of the placement written: second
# replicas on one rank moved (eplb puts some on generated Mixtral)
if [ $algo = eplb ]; then
	expect_status 0 mt gen --model mixtral-8x7b --steps 40 --seed 1 -q "$T/mx.db"
	expect_status 0 mt place "$T/mx.db" --algo eplb --steps 20:39 -o "$T/a.json" --json
	cp "$T/out" "$T/a.out"
	expect_grep "$T/err" "eplb put an expert twice on one rank"
	expect_status 0 mt place "$T/mx.db" --algo eplb --steps 0:19 -o "$T/b.json" --json
	python3 - "$T/a.out" "$T/out" <<'PY' || fail "the holdout of a vllm-ascend file"
import json, sys
h, q = json.load(open(sys.argv[1]))["holdout"], json.load(open(sys.argv[2]))
assert h["fit_window"] == q["fit_window"] and h["scored_window"] == q["next_window"], (h, q)
assert abs(h["imbalance"] - q["next_imbalance"]) < 1e-9, (h, q)
PY
	# where the earlier steps cannot be placed once per rank (an expert
	# with more replicas than ranks), the holdout is left out: the
	# window's own placement is still written, exit 0
	expect_status 0 mt gen --model mixtral-8x7b --steps 200 --seed 11 -q "$T/mx11.db"
	expect_status 2 mt place "$T/mx11.db" --algo eplb --steps 0:99 -o "$T/c.json"
	expect_grep "$T/err" "cannot write .* for vllm-ascend"
	expect_status 0 mt place "$T/mx11.db" --algo eplb -o "$T/c.json"
	[ -s "$T/c.json" ] || fail "no file written"
	expect_grep "$T/out" "^no steps after the fitting window to score on"
	expect_nogrep "$T/out" "^what to expect"
fi

# the holdout starts from the --current given, as the fit it stands for
expect_status 0 mt place "$T/db" --algo $algo --steps 25:29 -o "$T/cur.json" --format sglang
expect_status 0 mt place "$T/db" --steps 20:29 --current "$T/cur.json" --max-moves 2 --json
cp "$T/out" "$T/late.json"
expect_status 0 mt place "$T/db" --steps 10:19 --current "$T/cur.json" --max-moves 2 --json
python3 - "$T/late.json" "$T/out" <<'PY' || fail "the holdout from --current FILE"
import json, sys
h, q = json.load(open(sys.argv[1]))["holdout"], json.load(open(sys.argv[2]))
assert h["fit_window"] == q["fit_window"] and abs(h["imbalance"] - q["next_imbalance"]) < 1e-9, (h, q)
PY
expect_status 0 mt place "$T/db" --algo $algo
expect_grep "$T/out" "^no steps after the fitting window to score on"
expect_nogrep "$T/out" "^on the next"
expect_grep "$T/out" "^what to expect on steps not fitted on: fitted the same way on the 15 steps of 0-14 \\(the window's first half: the window's length of steps before it are not in the run\\), $algo scored [0-9.]+ on steps 15-29 "
first=$(grep -n "^what to expect" "$T/out" | cut -d: -f1)
fitted=$(grep -n "^device load = " "$T/out" | head -1 | cut -d: -f1)
[ "$first" -lt "$fitted" ] || fail "what to expect should come before the fitted figures"

# the flagship says which forecast it fitted: chosen on the window's blocks
# and the history before it (none before step 0), in the text and the JSON;
# no forecast when it is given episodes, nor for another algorithm
expect_status 0 mt place "$T/db" --steps 10:19
expect_grep "$T/out" "^keel fitted its forecast of the next window: .* toward uniform|^keel fitted its forecast of the next window: .*, no hedge"
expect_grep "$T/out" "10 blocks of the window, 10 of history before it\\)$"
expect_status 0 mt place "$T/db" --steps 10:19 --json
python3 - "$T/out" <<'PY' || fail "place's forecast in the JSON"
import json, sys
f = json.load(open(sys.argv[1]))["forecast"]
assert f["estimator"] in ("tokens", "shares"), f
assert f["window_blocks"] == 10 and f["history_blocks"] == 10, f
assert f["half_life_windows"] is None or f["half_life_windows"] >= 0, f
assert 0 <= f["shrink"] < 1 and f["description"], f
PY
expect_status 0 mt place "$T/db" --steps 0:9 --json
python3 -c 'import json,sys; f=json.load(open(sys.argv[1]))["forecast"]; assert f["history_blocks"] == 0 and f["window_blocks"] == 10, f' "$T/out" ||
	fail "a window from the run's start has no history"
for opts in "--episodes 4" "--algo $algo"; do
	expect_status 0 mt place "$T/db" --steps 10:19 $opts --json
	python3 -c 'import json,sys; assert "forecast" not in json.load(open(sys.argv[1]))' "$T/out" ||
		fail "a forecast with $opts"
done
