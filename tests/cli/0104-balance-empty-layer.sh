#!/bin/sh
# balance: a layer that received no token in the window (real traces have
# them: Mixtral's last tokens lack some layers) has no hottest expert, so its
# row shows '-' for hottest and share instead of expert 0 with 0.0%; the
# other layers keep their hottest expert and its share.
. "$(dirname "$0")/lib.sh"
# 3 layers x 4 experts, 2 steps; layer 1 gets no token, in layer 2 the hottest
# expert is 0 (so '0' for an empty layer cannot pass for a real answer)
cat >"$T/t.csv" <<'CSV'
step,layer,expert,tokens
0,0,2,6
0,0,3,2
0,2,0,5
0,2,1,3
1,0,2,4
1,0,1,4
1,2,0,7
1,2,3,1
CSV
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run r --ranks 2 --slots 2
expect_status 0 mt balance "$T/db"
awk '$1 == "0" && NF == 8' "$T/out" >"$T/l0"
awk '$1 == "1" && NF == 8' "$T/out" >"$T/l1"
awk '$1 == "2" && NF == 8' "$T/out" >"$T/l2"
# layer 0: expert 2 has 10 of 16 tokens; layer 2: expert 0 has 12 of 16
expect_grep "$T/l0" " 2  62\.5%$"
expect_grep "$T/l2" " 0  75\.0%$"
expect_grep "$T/l1" " - +-$"
expect_nogrep "$T/l1" "%"
# the same range cut to one step: layer 1 still empty, layer 0 from step 1
expect_status 0 mt balance "$T/db" --steps 1:1
awk '$1 == "0" && NF == 8' "$T/out" >"$T/l0"
awk '$1 == "1" && NF == 8' "$T/out" >"$T/l1"
expect_grep "$T/l0" " [12]  50\.0%$"
expect_grep "$T/l1" " - +-$"

# A layer without tokens in a step did no work in it: it is not scored in
# that step, rather than counted as perfectly balanced (1.0), which would
# flatter the layer's step figures; a step without any token is not scored
# at all.  Step 2: layer 0 gets none; step 3: no layer does.
cat >>"$T/t.csv" <<'CSV'
2,2,2,2
2,2,3,2
3,0,0,0
CSV
rm -f "$T/db"
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run r --ranks 2 --slots 2
expect_status 0 mt balance "$T/db"
awk '$1 == "0" && NF == 8' "$T/out" >"$T/l0"
awk '$1 == "1" && NF == 8' "$T/out" >"$T/l1"
# layer 0 (static: rank 0 holds experts 0-1, rank 1 experts 2-3): step 0
# 8/4 = 2.0, step 1 4/4 = 1.0, step 2 not scored: mean 1.5 (1.333 if step 2
# counted as 1.0), p50 over the two steps
expect_grep "$T/l0" "^ +0 +0 +[0-9.]+ +1\.500 "
# layer 1 never got a token: every figure '-'
expect_grep "$T/l1" "^ +1 +1 +- +- +- +- +- +-$"
# overall per step: steps 0-2 give 2.0, 1.375 and 2.0 (mean 1.792); step 3
# is not scored (1.344 if it and step 2's empty layer counted)
expect_grep "$T/out" "per-step mean 1\.792$"
# 4 (step, layer) pairs not scored: layer 1 in steps 0-2, layer 0 in step 2
expect_grep "$T/out" "^not scored per step: 4 \(step, layer\) pairs with no token"
expect_grep "$T/out" "^not scored per step: 1 step in which no layer got a token$"
# the SQL view leaves the same pairs out: layer_imbalance is NULL there, so
# avg() per layer is balance's step-mean ('-' where nothing was scored)
awk 'NF == 8 && $1 ~ /^[0-9]+$/ { print $1, $4 }' "$T/out" >"$T/bal.mean"
mt sql --format csv "$T/db" "SELECT layer, avg(imbalance) FROM layer_imbalance GROUP BY layer
	ORDER BY layer" | tail -n +2 |
	awk -F, '{ print $1, $2 == "" ? "-" : sprintf("%.3f", $2) }' >"$T/sql.mean"
[ "$(wc -l <"$T/bal.mean")" = 3 ] || fail "balance: not 3 layer rows"
same_file "$T/bal.mean" "$T/sql.mean"
# the replay scores the same steps: its baseline (the static layout
# throughout) is the overall per-step figure above
expect_status 0 mt replay "$T/db" --no-store --interval 2 --window 2 --delay 0
expect_grep "$T/out" "imbalance, mean over steps +1\.792 "
# compare's per-step figure of the scored window (steps 2-3): step 2 only
# (1.5 if the empty step 3 counted as 1.0)
expect_status 0 mt compare "$T/db" --steps 0:1 --algos static --format csv
expect_grep "$T/out" "^overall,static,,[0-9.]+,2\.000000,2\.000000,"
# compare --per-layer: layer 1 got no token in the fitting window nor in the
# scored one, so neither figure is scored ('-', an empty CSV field, JSON
# null), not 1.0
expect_status 0 mt compare "$T/db" --steps 0:1 --algos static --per-layer
expect_grep "$T/out" "^ +1 +- / - *$"
expect_status 0 mt compare "$T/db" --steps 0:1 --algos static --per-layer --format csv
expect_grep "$T/out" "^layer,static,1,,,,"
expect_status 0 mt compare "$T/db" --steps 0:1 --algos static --per-layer --format json
tr -d ' \n' <"$T/out" | grep -q '"layer":1,"fit_imbalance":null,"next_imbalance":null' ||
	fail "layer 1's fit_imbalance and next_imbalance are not null in compare --format json"
# a scored window without a single token (step 3 alone) scores nothing:
# compare refuses it, place labels its figures hindsight and its JSON stays
# JSON (no bare nan), the replay says which steps it left out
expect_status 2 mt compare "$T/db" --steps 2:2 --algos static
expect_grep "$T/err" "steps 3..3 carry no token: nothing to score the placements on"
expect_status 0 mt place "$T/db" --steps 2:2
expect_grep "$T/out" "^no steps after the fitting window to score on"
# place's per-layer table on steps 0-1: layer 1 is not scored ('-', JSON
# null), and the engines' per-layer figures (vllm-ascend's peak-to-average
# mean) leave it out: layers 0 and 2 only
expect_status 0 mt place "$T/db" --steps 0:1 --algo static --current none
expect_grep "$T/out" "^ +1 +0\.00 +0\.00 +- +0\.00"
expect_grep "$T/out" "peak-to-average \(vllm-ascend\) mean 1\.6875 max 1\.8750"
expect_status 0 mt place "$T/db" --steps 0:1 --algo static --current none --json
tr -d ' \n' <"$T/out" | grep -q '"layer":1,"phy2log":\[[0-9,]*\],"max_load":0,"mean_load":0,"imbalance":null' ||
	fail "place --json: layer 1's imbalance is not null"
expect_status 0 mt place "$T/db" --steps 2:2 --json
python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$T/out" ||
	fail "place --json is not JSON: $(cat "$T/out")"
expect_status 0 mt replay "$T/db" --no-store --interval 2 --window 2 --delay 0
expect_grep "$T/out" "3 steps scored under the placement in force \(1 more in which no layer got a token, not scored\)"
# render imbalance: a step without tokens is a gap in the line, not a point
# at 1.0 (tests/unit/test_render.c looks at the pixels); a chart with no
# scored step at all is refused, whichever way its series is made (the
# flagship replayed, a fitted placement, a stored replay)
expect_status 0 mt render "$T/db" imbalance --layer 0 -o "$T/l0.png"
expect_status 2 mt render "$T/db" imbalance --layer 1 -o "$T/l1.png"
expect_grep "$T/err" "^moetrace render: no step of steps 0-3 routed a token to this layer: no imbalance to draw$"
expect_status 2 mt render "$T/db" imbalance --layer 1 --algo static -o "$T/l1.png"
expect_grep "$T/err" "no step of steps 0-3 routed a token to this layer"
expect_status 2 mt render "$T/db" imbalance --steps 3:3 --algo eplb -o "$T/s3.png"
expect_grep "$T/err" "^moetrace render: no step of step 3 routed a token: no imbalance to draw$"
expect_status 0 mt replay "$T/db" --interval 2 --window 2 --delay 0
id=$(mt sql "$T/db" "SELECT max(replay) FROM replays" --format csv | tail -n 1)
expect_status 2 mt render "$T/db" imbalance --replay "$id" --layer 1 -o "$T/r1.png"
expect_grep "$T/err" "routed a token to this layer"
expect_status 0 mt render "$T/db" imbalance --replay "$id" -o "$T/r.png"
[ ! -e "$T/l1.png" ] && [ ! -e "$T/s3.png" ] && [ ! -e "$T/r1.png" ] || fail "a refused chart was written"

# the replay's per-layer figures: layer 1 never got a token, so it has none
# ('-', JSON null, no replay_layers row), never 1.0; a replay of steps
# with no token at all scores nothing and is refused (exit 2, nothing stored)
expect_status 0 mt replay "$T/db" --no-store --interval 2 --window 2 --delay 0
expect_grep "$T/out" "^ +1 +- +- +- +- +0$"
expect_grep "$T/out" "^ +0 +[0-9.]+ +[0-9.]+ "
expect_status 0 mt replay "$T/db" --no-store --interval 2 --window 2 --delay 0 --json
python3 - "$T/out" <<'PY' || fail "replay --json: layer 1 is not null"
import json, sys
ly = {l["layer"]: l for l in json.load(open(sys.argv[1]))["layers"]}
assert ly[1]["imbalance_mean"] is None and ly[1]["baseline_imbalance_p99"] is None, ly[1]
assert ly[0]["imbalance_mean"] is not None
PY
expect_status 0 mt replay "$T/db" --interval 2 --window 2 --delay 0
[ "$(mt sql "$T/db" "SELECT group_concat(layer, ' ') FROM replay_layers WHERE replay = (SELECT max(replay) FROM replays)" --format csv | tail -n 1)" = "0 2" ] ||
	fail "replay_layers holds a row for layer 1, which no step scored"
printf 'step,layer,expert,tokens\n0,0,0,0\n1,0,1,0\n2,0,2,0\n' >"$T/zero.csv"
expect_status 0 mt import "$T/zero.csv" --into "$T/z.db" --run z --ranks 2 --slots 2
expect_status 2 mt replay "$T/z.db" --interval 1 --window 1 --delay 0
expect_grep "$T/err" "no step of the 3 replayed routed a token: nothing to score"
[ "$(mt sql "$T/z.db" "SELECT count(*) FROM replays" --format csv | tail -n 1)" = 0 ] ||
	fail "a replay that scored nothing was stored"
# place on a window without a token (or a layer without one) has nothing to
# place on: refused, not a placement that fits nothing "perfectly"
expect_status 2 mt place "$T/z.db"
expect_grep "$T/err" "^moetrace place: the 3 steps of run 'z' in the chosen range carry no token: nothing to place on$"
expect_status 2 mt place "$T/db" --layer 1 --json
expect_grep "$T/err" "carry no token in this layer: nothing to place on$"
[ ! -s "$T/out" ] || fail "place printed a placement fitted on no token"
# the devices chart of a layer without a token has no load to draw, and a
# fitting range without one nothing to fit on: both refused, nothing written
expect_status 2 mt render "$T/db" devices --layer 1 -o "$T/d1.png"
expect_grep "$T/err" "^moetrace render: layer 1 got no token in the chosen steps: no device load to draw$"
expect_status 2 mt render "$T/db" devices --layer 0 --fit 3:3 --steps 0:1 -o "$T/d0.png"
expect_grep "$T/err" "layer 0 got no token in the fitting range 3-3: nothing to fit a placement on$"
[ ! -e "$T/d1.png" ] && [ ! -e "$T/d0.png" ] || fail "a refused devices chart was written"
expect_status 0 mt render "$T/db" devices --layer 0 -o "$T/d0.png"
# top and serve: layer 1 got no token in the window, so its imbalance is
# null in the snapshot and NaN in the metrics, not 1.0 (the others are
# numbers), with no hottest expert; in top's table it sorts last
expect_status 0 mt top --snapshot "$T/db"
python3 - "$T/out" <<'PY' || fail "top --snapshot: layer 1 is not null"
import json, sys
ly = {l["layer"]: l for l in json.load(open(sys.argv[1]))["layers"]}
assert ly[1]["now"] is None and ly[1]["after"] is None, ly[1]
assert isinstance(ly[0]["now"], float) and isinstance(ly[2]["now"], float), ly
# nor a hottest expert (0 would name expert 0), as the table shows '-'
assert ly[1]["hottest"] is None and ly[1]["hottest_share"] is None, ly[1]
assert isinstance(ly[0]["hottest"], int), ly[0]
PY
expect_status 0 mt serve "$T/db" --once
expect_grep "$T/out" '^moetrace_layer_imbalance\{layer="1"\} NaN$'
expect_grep "$T/out" '^moetrace_layer_imbalance\{layer="0"\} [0-9.]+$'
# balance over steps without a token: no window figure either, not 1.000
expect_status 0 mt balance "$T/z.db"
expect_grep "$T/out" "^overall \\(sum of max / sum of mean\\): window -, per-step mean -$"
exit 0
