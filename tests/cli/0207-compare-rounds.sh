# compare --rounds N: the trace cut into N windows, each algorithm fitted on
# window k from its placement of round k-1 and scored on window k+1.  The
# expected figures are computed here: the windows from the step count, the
# placements by chaining `place --steps` rounds with --current, their
# next-window imbalance and copies from the trace itself.
. "$(dirname "$0")/lib.sh"

# 3 layers x 8 experts, 30 steps: the hot experts drift every 10 steps
python3 - "$T/t.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens\n")
    for s in range(30):
        for l in range(3):
            for e in range(8):
                hot = (e + l + s // 10) % 8
                f.write("%d,%d,%d,%d\n" % (s, l, e, [90, 40, 22, 11, 7, 4, 2, 1][hot] + (s * 7 + e) % 5))
PY
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run rnd --ranks 4 --slots 3
algos=static,keel
mt place --list | grep -q "^eplb " && algos=static,eplb,keel

expect_status 0 mt compare "$T/db" --rounds 3 --algos $algos --format json
cp "$T/out" "$T/rounds.json"
# 30 steps in 3 windows of 10
expect_grep "$T/rounds.json" '"rounds":2,"current":"static","windows":\[\[0,9\],\[10,19\],\[20,29\]\]'

# the chain of rounds by hand, per algorithm: place on window k from the
# previous placement, keep its layers' phy2log and copies (in SGLang's
# format, which holds an expert twice on one rank as the algorithms may
# place it; a vllm-ascend file would have the duplicates moved)
for al in $(echo $algos | tr , ' '); do
	cur=static
	for k in 0 1; do
		a=$((k * 10)); b=$((a + 9))
		expect_status 0 mt place "$T/db" --algo $al --steps $a:$b --current $cur --json \
			-o "$T/$al.$k.map" --format sglang
		cp "$T/out" "$T/$al.$k.json"
		cur="$T/$al.$k.map"
	done
done
python3 - "$T/rounds.json" "$T/t.csv" "$T" $algos <<'PY' || fail "rounds figures differ from the chained placements"
import csv, json, sys
d = json.load(open(sys.argv[1])); tdir = sys.argv[3]; algos = sys.argv[4].split(",")
R, S, E, L = 4, 3, 8, 3
heat = {}
for r in csv.DictReader(open(sys.argv[2])):
    s, l, e, t = int(r["step"]), int(r["layer"]), int(r["expert"]), int(r["tokens"])
    heat.setdefault(s, [[0] * E for _ in range(L)])[l][e] += t
def score(pl, steps):  # summed window figure and mean per-step figure
    def fig(h):
        mx = mn = 0
        for l in range(L):
            p = pl[l]; cnt = [p.count(e) for e in range(E)]
            load = [sum(h[l][p[r * S + j]] / cnt[p[r * S + j]] for j in range(S)) for r in range(R)]
            mx += max(load); mn += sum(load) / R
        return mx / mn
    tot = [[sum(heat[s][l][e] for s in steps) for e in range(E)] for l in range(L)]
    return fig(tot), sum(fig(heat[s]) for s in steps) / len(steps)
byname = {a["algorithm"]: a for a in d["algorithms"]}
for al in algos:
    a = byname[al]
    assert len(a["rounds"]) == 2
    nexts, steps_m, moves = [], [], []
    for k in range(2):
        p = json.load(open("%s/%s.%d.json" % (tdir, al, k)))
        pl = [x["phy2log"] for x in p["layers"]]
        nx, st = score(pl, range(10 * (k + 1), 10 * (k + 2)))
        r = a["rounds"][k]
        assert abs(r["next_imbalance"] - nx) < 1e-4, (al, k, r["next_imbalance"], nx)
        assert abs(r["next_step_mean_imbalance"] - st) < 1e-4, (al, k, r, st)
        assert r["moves"] == p.get("moves", 0), (al, k, r["moves"], p.get("moves"))
        # the flagship's forecast is the one place chose on that window
        # and the history before it; no other algorithm has one
        assert r.get("forecast") == p.get("forecast"), (al, k, r.get("forecast"), p.get("forecast"))
        assert ("forecast" in r) == (al == "keel"), (al, k)
        nexts.append(nx); steps_m.append(st); moves.append(r["moves"])
    assert abs(a["next_imbalance"] - sum(nexts) / 2) < 1e-4
    assert abs(a["next_step_mean_imbalance"] - sum(steps_m) / 2) < 1e-4
    assert abs(a["moves_per_round"] - sum(moves) / 2) < 1e-6
# the drift makes the static layout worse than a fitted one
assert byname["keel"]["next_imbalance"] < byname["static"]["next_imbalance"]
PY

# every format
expect_status 0 mt compare "$T/db" --rounds 3 --algos $algos --format csv
expect_grep "$T/out" "^scope,algorithm,round,fit_imbalance,next_imbalance,next_step_mean_imbalance,moves,seconds,forecast_estimator,forecast_half_life_windows,forecast_shrink$"
expect_grep "$T/out" "^mean,keel,,[0-9.]+,[0-9.]+,[0-9.]+,[0-9.]+,[0-9.]+,,,$"
expect_grep "$T/out" "^round,static,1,([0-9.]+,){3}[0-9]+,[0-9.]+,,,$"
cp "$T/out" "$T/rounds.csv"
# each round's estimator as the JSON has it (inf: every block alike)
python3 - "$T/rounds.csv" "$T/rounds.json" <<'PY' || fail "CSV forecast differs from the JSON"
import csv, json, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["scope"] == "round" and r["algorithm"] == "keel"]
js = {a["algorithm"]: a for a in json.load(open(sys.argv[2]))["algorithms"]}["keel"]["rounds"]
assert len(rows) == 2
for r, j in zip(rows, js):
    f = j["forecast"]
    assert r["forecast_estimator"] == f["estimator"], (r, f)
    h = f["half_life_windows"]
    assert float(r["forecast_half_life_windows"]) == (float("inf") if h is None else h), (r, f)
    assert float(r["forecast_shrink"]) == f["shrink"], (r, f)
PY
[ "$(grep -c '^round,' "$T/out")" -eq $(( $(echo $algos | tr , '\n' | wc -l) * 2 )) ] || fail "round CSV rows"
expect_status 0 mt compare "$T/db" --rounds 3 --algos $algos
expect_grep "$T/out" "30 steps cut into 3 windows"
# fit is on the steps the placement was fitted on: labelled in hindsight
expect_grep "$T/out" "fit = on the window the placement was fitted on, in hindsight; next = on the window after it"
expect_grep "$T/out" "^keel +[0-9.]+ +[0-9.]+ "
# what the flagship made of the traffic, round by round, as place says it
expect_grep "$T/out" "^keel's forecast of the next window, chosen each round on the trace before it"
for k in 0 1; do
	line=$(python3 -c 'import json,sys; f = json.load(open(sys.argv[1]))["forecast"]
print("  round %s: %s (%d blocks of the window, %d of history)" % (sys.argv[2],
      f["description"], f["window_blocks"], f["history_blocks"]))' "$T/keel.$k.json" $k)
	grep -qxF "$line" "$T/out" || fail "round $k's forecast is not place's: $line"
done
[ "$(grep -c "^  round " "$T/out")" -eq 2 ] || fail "one forecast line per round, for keel only"
expect_status 0 mt compare "$T/db" --rounds 3 --algos $algos --format markdown
expect_grep "$T/out" "^\\| keel \\| [0-9.]+ \\| "
expect_grep "$T/out" "^\\| 1 \\| 20\\.\\.29 \\| "
# a --steps range is cut the same way: 12 steps in 4 windows of 3
expect_status 0 mt compare "$T/db" --rounds 4 --steps 5:16 --algos static --format json
expect_grep "$T/out" '"windows":\[\[5,7\],\[8,10\],\[11,13\],\[14,16\]\]'

# bad input
expect_status 2 mt compare "$T/db" --rounds 1
expect_grep "$T/err" "--rounds"
expect_status 2 mt compare "$T/db" --rounds 31
expect_grep "$T/err" "31 windows|fewer than 31"
expect_status 2 mt compare "$T/db" --rounds 4 --steps 5:6
expect_grep "$T/err" "2 selected steps, fewer than 4 windows"
expect_status 2 mt compare "$T/db" --rounds 3 --per-layer
expect_grep "$T/err" "--per-layer does not combine with --rounds"
