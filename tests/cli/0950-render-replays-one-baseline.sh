# render imbalance: replays drawn together share one baseline (layout, steps,
# start placement), else they are refused with both ids and what differs.
. "$(dirname "$0")/lib.sh"

mt replays --help >/dev/null 2>&1 || skip "no replay command in this build"
db=$T/mx.db
expect_status 0 mt gen --model mixtral-8x7b --steps 60 --seed 11 "$db"
expect_status 0 mt place --algo eplb "$db" -o "$T/sg.json" --format sglang
expect_status 0 mt replay "$db" --start "$T/sg.json"       # 1: from the placement file
expect_status 0 mt replay "$db" --algo eplb                # 2: from the static placement
expect_status 0 mt replay "$db"                            # 3: from the static placement
expect_status 0 mt replay "$db" --ranks 3 --slots 3        # 4: another layout

for pair in "1 2" "2 1"; do
	set -- $pair
	expect_status 2 mt render "$db" imbalance --replay "$1" --replay "$2" -o "$T/x.png"
	expect_grep "$T/err" "replays $1 and $2 start from different placements \(baseline mean [0-9.]+ against [0-9.]+; at step [0-9]+, [0-9.]+ against [0-9.]+\): draw them one at a time"
done
expect_status 2 mt render "$db" imbalance --replay 1 --replay 2 --layer 5 -o "$T/x.png"
expect_grep "$T/err" "replays 1 and 2 start from different placements"
expect_status 2 mt render "$db" imbalance --replay 3 --replay 4 -o "$T/x.png"
expect_grep "$T/err" "replays 3 and 4 are of different layouts \(4 x 3 against 3 x 3 ranks x slots\)"
expect_status 2 mt render "$db" imbalance --replay 2 --replay 3 --replay 1 -o "$T/x.png"
expect_grep "$T/err" "replays 2 and 1 start from different placements"
[ ! -e "$T/x.png" ] || fail "x.png written on a refusal"

# two replays from the same start: one baseline, the chart drawn
expect_status 0 mt render "$db" imbalance --replay 2 --replay 3 -o "$T/two.png"
expect_grep "$T/out" "wrote .*two.png"
[ -s "$T/two.png" ] || fail "no chart of replays 2 and 3"
expect_status 0 mt render "$db" imbalance --replay 3 --replay 2 --steps 10:40 -o "$T/part.png"
[ -s "$T/part.png" ] || fail "no chart of replays 3 and 2 on steps 10-40"
exit 0
