#!/bin/sh
# A window or a layer without a token gives nothing to place on: compare
# refuses such a fitting window as place does (and, with --rounds, such a
# window to fit on or to score on), a layer that got no token
# keeps the placement in force and shows no figure ("-", empty CSV field,
# JSON null), and a replay's decision on such a window moves nothing.
. "$(dirname "$0")/lib.sh"

# 40 steps of 4 layers x 8 experts: layer 2 never gets a token, nor does
# any layer in steps 10-14
awk 'BEGIN { print "step,layer,expert,tokens"; srand(1)
	for (s = 0; s < 40; s++) for (l = 0; l < 4; l++) for (e = 0; e < 8; e++)
		print s "," l "," e "," ((l == 2 || (s >= 10 && s <= 14)) ? 0 : 1 + int(rand() * 50)) }' >"$T/t1.csv"
expect_status 0 mt import "$T/t1.csv" --into "$T/t1.db" --run t --layers 4 --experts 8 --topk 2 --ranks 4 --slots 3

expect_status 2 mt compare "$T/t1.db" --algos static,eplb,keel --steps 10:14
expect_grep "$T/err" "^moetrace compare: the fitting window's steps 10..14 carry no token: nothing to place on$"
expect_status 2 mt compare "$T/t1.db" --algos static,eplb --steps 10:14 --format json
[ ! -s "$T/out" ] || fail "a refused compare printed figures"
# --rounds: 8 windows of 5 steps, window 2 (steps 10..14) without a token,
# scored in round 1 and fitted on in round 2; round 0 alone is fine
expect_status 2 mt compare "$T/t1.db" --algos static,eplb --rounds 8
expect_grep "$T/err" "^moetrace compare: --rounds 8: window 2's steps 10..14 carry no token: nothing to score the placements on"
[ ! -s "$T/out" ] || fail "a refused compare --rounds printed figures"
expect_status 2 mt compare "$T/t1.db" --algos static,eplb --rounds 6 --steps 10:39
expect_grep "$T/err" "^moetrace compare: --rounds 6: window 0's steps 10..14 carry no token: nothing to place on"
expect_status 0 mt compare "$T/t1.db" --algos static,eplb --rounds 5 --steps 15:39

# the empty layer: no gap, no move
expect_status 0 mt place --algo eplb "$T/t1.db"
expect_grep "$T/out" "^    2 +0\.00 +0\.00 +- +0\.00 +- +0$"
expect_status 0 mt place --algo eplb "$T/t1.db" -o "$T/m.json"
expect_status 0 mt place --algo eplb "$T/t1.db" --current "$T/m.json"
expect_status 0 mt compare "$T/t1.db" --algos static,eplb --per-layer --format csv
expect_grep "$T/out" "^layer,eplb,2,,,,,,0,"
expect_nogrep "$T/out" "^layer,[a-z]+,2,.*[0-9]\.[0-9]"
expect_status 0 mt compare "$T/t1.db" --algos static,eplb --per-layer --format json
python3 - "$T/out" <<'PY' || fail "layer 2 has figures in compare's JSON"
import json, sys
for a in json.load(open(sys.argv[1]))["algorithms"]:
    l2 = a["per_layer"][2]
    assert all(l2[k] is None for k in ("fit_imbalance", "next_imbalance", "gap_fit", "gap_next")), l2
    assert l2["moves"] == 0, l2
PY

# replay: the decision on steps 10-14 makes no event, and no stored
# figure of a layer's window claims a perfect 1.0 where no token was
for a in eplb keel; do
	expect_status 0 mt replay "$T/t1.db" --algo $a
	expect_nogrep "$T/out" "^ +[0-9]+ +14 "
done
[ "$(sqlite3 "$T/t1.db" "SELECT count(*) FROM replay_event_layers WHERE layer = 2 OR imbalance_before = 1.0 OR imbalance_after = 1.0")" = 0 ] ||
	fail "a replay stored figures of a window without a token"
[ "$(sqlite3 "$T/t1.db" "SELECT count(*) FROM replay_events WHERE step = 14")" = 0 ] ||
	fail "a replay moved experts on a window without a token"
exit 0
