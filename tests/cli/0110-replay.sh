# moetrace replay on hand-made traces whose answers are known.
. "$(dirname "$0")/lib.sh"

# 1 layer, 4 experts, 2 ranks x 2 slots (no redundancy).  Steps alternate
# between set A = [10,0,10,0] and set B = [10,10,0,0].  The static layout
# {0,1},{2,3} is perfect for A and 2.0 for B.  The only placement perfect
# for both is {0,3},{1,2}: a window spanning both sets (heat [20,10,10,0])
# finds it; after it takes effect every step scores 1.0.
{
	echo "step,layer,expert,tokens"
	s=0
	while [ $s -lt 40 ]; do
		if [ $((s % 2)) -eq 0 ]; then a=10; b=0; c=10; else a=10; b=10; c=0; fi
		echo "$s,0,0,$a"; echo "$s,0,1,$b"; echo "$s,0,2,$c"; echo "$s,0,3,0"
		s=$((s + 1))
	done
} >"$T/alt.csv"
expect_status 0 mt import "$T/alt.csv" --into "$T/db" --run alt --ranks 2 --slots 2
algos=eplb
"$MOETRACE" place --list 2>/dev/null | grep -q '^ *keel' && algos="eplb keel"
for algo in $algos; do
	expect_status 0 mt replay "$T/db" --algo $algo --interval 4 --window 2 --delay 0 --json
	id=$(sed -n 's/^{"replay": \([0-9]*\),.*/\1/p' "$T/out")
	[ -n "$id" ] || fail "$algo: no replay id in output"
	# baseline: half the steps at 2.0 -> mean 1.5
	expect_grep "$T/out" '"baseline_imbalance_mean": 1.500000'
	# from the first effective step (4) on, every step is perfect
	worst=$(sqlite3 "$T/db" "SELECT max(max_load / mean_load) FROM replay_steps WHERE replay = $id AND step >= 4")
	[ "$worst" = "1.0" ] || fail "$algo: imbalance after the first rebalance is $worst, not 1.0"
	before=$(sqlite3 "$T/db" "SELECT max(max_load / mean_load) FROM replay_steps WHERE replay = $id AND step < 4")
	[ "$before" = "2.0" ] || fail "$algo: imbalance before the first rebalance is $before"
	# the placement never changes again: one event
	expect_grep "$T/out" '"events": 1,'
done

# A static trace: every step the same heat.  One rebalance reaches the
# optimum, later decisions find nothing to move.
{
	echo "step,layer,expert,tokens"
	for s in $(seq 0 29); do
		echo "$s,0,0,40"; echo "$s,0,1,30"; echo "$s,0,2,20"; echo "$s,0,3,10"
		echo "$s,1,0,30"; echo "$s,1,1,30"; echo "$s,1,2,5"; echo "$s,1,3,5"
	done
} >"$T/static.csv"
expect_status 0 mt import "$T/static.csv" --into "$T/db" --run static --ranks 2 --slots 2
expect_status 0 mt replay "$T/db" --run static --algo eplb --interval 5 --window 5 --delay 1 --json
expect_grep "$T/out" '"events": 1,'
id=$(sed -n 's/^{"replay": \([0-9]*\),.*/\1/p' "$T/out")
# layer 0: optimum {0,3},{1,2} = 50|50; layer 1: {0,2},{1,3} = 35|35
after0=$(sqlite3 "$T/db" "SELECT printf('%.3f', max(max_load / mean_load)) FROM replay_steps WHERE replay = $id AND step >= 6 AND layer = 0")
after1=$(sqlite3 "$T/db" "SELECT printf('%.3f', max(max_load / mean_load)) FROM replay_steps WHERE replay = $id AND step >= 6 AND layer = 1")
[ "$after0" = "1.000" ] || fail "static trace layer 0 after rebalance: $after0"
[ "$after1" = "1.000" ] || fail "static trace layer 1 after rebalance: $after1"
# the event took effect exactly delay steps after the decision at step 4
[ "$(sqlite3 "$T/db" "SELECT step, effective_step FROM replay_events WHERE replay = $id")" = "4|6" ] ||
	fail "event steps: $(sqlite3 "$T/db" "SELECT step, effective_step FROM replay_events WHERE replay = $id")"

# A threshold above every layer's imbalance never moves anything.
expect_status 0 mt replay "$T/db" --run static --algo eplb --interval 5 --window 5 --delay 1 --threshold 3 --json
expect_grep "$T/out" '"events": 0, "moves": 0, "bytes": 0'
# ... and one between the layers' imbalances re-places only the worse layer
# (static layout: layer 0 = 70|30 -> 1.4, layer 1 = 60|10 -> 1.714)
expect_status 0 mt replay "$T/db" --run static --algo eplb --interval 5 --window 5 --delay 1 --threshold 1.5 --json
id=$(sed -n 's/^{"replay": \([0-9]*\),.*/\1/p' "$T/out")
[ "$(sqlite3 "$T/db" "SELECT group_concat(layer) FROM replay_event_layers WHERE replay = $id AND moves > 0")" = "1" ] ||
	fail "threshold 1.5 should re-place layer 1 only"

# --pay: a move is made only when the straggler time it is predicted to
# save before the next rebalance exceeds its transfer time.  8 experts (4
# cold) so that Mixtral-8x7B's expert size applies; static layout 100|0 and
# 70|0 tokens per step.  With an instant link every move pays and --pay
# changes nothing; with a slow one (or nvlink4 at this tiny scale: 250
# tokens saved, 0.2 ms, against 0.8 ms per copy) nothing pays.
{
	echo "step,layer,expert,tokens"
	for s in $(seq 0 29); do
		for e in 0 1 2 3 4 5 6 7; do
			case $e in 0) a=40 b=30 ;; 1) a=30 b=30 ;; 2) a=20 b=5 ;; 3) a=10 b=5 ;; *) a=0 b=0 ;; esac
			echo "$s,0,$e,$a"
			echo "$s,1,$e,$b"
		done
	done
} >"$T/s8.csv"
expect_status 0 mt import "$T/s8.csv" --into "$T/s8.db" --run s8 --ranks 2 --slots 4
r8() { mt replay "$T/s8.db" --algo eplb --interval 5 --window 5 --delay 1 --model mixtral-8x7b --no-store --json "$@"; }
expect_status 0 r8
plain=$(grep -o '"events": [0-9]*, "moves": [0-9]*' "$T/out" | head -1)
[ "$plain" = '"events": 1, "moves": 8' ] || fail "s8 without --pay: $plain"
expect_status 0 r8 --pay --bandwidth 1000000
[ "$(grep -o '"events": [0-9]*, "moves": [0-9]*' "$T/out" | head -1)" = "$plain" ] ||
	fail "--pay on an instant link changed the replay"
expect_grep "$T/out" '"pay": true'
expect_status 0 r8 --pay --bandwidth 0.001
expect_grep "$T/out" '"events": 0, "moves": 0, "bytes": 0'
expect_status 0 r8 --pay
expect_grep "$T/out" '"events": 0, "moves": 0, "bytes": 0'
expect_status 0 mt replay "$T/s8.db" --algo eplb --interval 5 --window 5 --delay 1 --model mixtral-8x7b --no-store --pay
expect_grep "$T/out" '^only moves predicted to save more straggler time'
# the grid compares both: on the slow link only the row without --pay moves
expect_status 0 mt replay "$T/s8.db" --algo eplb --interval 5 --window 5 --delay 1 --model mixtral-8x7b \
	--bandwidth 0.001 --grid pay=no,yes --format csv
[ "$(awk -F, 'NR > 1 { print $8 ":" $13 }' "$T/out" | sort | tr '\n' ' ')" = "no:8 yes:0 " ] ||
	fail "grid pay=no,yes: $(cat "$T/out")"
expect_status 2 mt replay "$T/s8.db" --grid pay=maybe
expect_grep "$T/err" "pay=maybe: not no or yes"
# no model: no expert size, no seconds per token
expect_status 2 mt replay "$T/s8.db" --algo eplb --interval 5 --no-store --pay
expect_grep "$T/err" "--pay needs the cost model"

# replays lists them; --no-store stores nothing
n=$(sqlite3 "$T/db" "SELECT count(*) FROM replays")
expect_status 0 mt replays "$T/db"
expect_grep "$T/out" "eplb +2x2"
expect_status 0 mt replay "$T/db" --run static --algo eplb --interval 5 --window 5 --delay 1 --no-store
[ "$(sqlite3 "$T/db" "SELECT count(*) FROM replays")" = "$n" ] || fail "--no-store stored a replay"

# bad input: exit 2, nothing stored
expect_status 2 mt replay "$T/db" --run static --window 31 --interval 5
expect_grep "$T/err" "window 31 is longer than the trace \\(30 steps"
# without --window the window is the interval: the message names --interval
expect_status 2 mt replay "$T/db" --run static --interval 31
expect_grep "$T/err" "^moetrace replay: --interval 31 is longer than the trace \\(30 steps selected\\), and so is the window"
expect_status 2 mt replay "$T/db" --run static --interval 0
expect_grep "$T/err" "interval"
expect_status 2 mt replay "$T/db" --run static --interval 5 --threshold 0.5
expect_grep "$T/err" "threshold: 0.5 is below 1"
expect_status 2 mt replay "$T/db" --run static --interval 5 --delay 5
expect_grep "$T/err" "delay 5 must be .* shorter than --interval 5"
expect_status 2 mt replay "$T/db" --run static --algo nosuch
expect_grep "$T/err" "unknown algorithm 'nosuch'"
printf '{"physical_to_logical_map": [[0, 1, 2]]}\n' >"$T/bad.json"
expect_status 2 mt replay "$T/db" --run static --interval 5 --start "$T/bad.json"
expect_grep "$T/err" "start"
# one step (a snapshot of summed counts): no step after a decision to
# score it on, so no replay, alone, in a grid or as render's chart
expect_status 2 mt replay "$T/db" --run static --steps 7:7
expect_grep "$T/err" "^moetrace replay: run 'static' has one step in the chosen range \(a snapshot"
expect_status 2 mt replay "$T/db" --run static --steps 7:7 --no-store --grid interval=1,2
expect_grep "$T/err" "has one step in the chosen range"
expect_status 2 mt render -o "$T/one.png" "$T/db" --run static --steps 7:7 imbalance
expect_grep "$T/err" "^moetrace render: .*has one step in the chosen range"
[ ! -e "$T/one.png" ] || fail "a refused render wrote its chart"
[ "$(sqlite3 "$T/db" "SELECT count(*) FROM replays")" = "$n" ] || fail "a failed replay stored something"

# grid: every combination, ranked
expect_status 0 mt replay "$T/db" --run alt --grid algos=eplb,static interval=2,4 --format csv
[ "$(wc -l <"$T/out")" -eq 5 ] || fail "grid should print a header and 4 rows"
expect_grep "$T/out" "^1,"
# bad grids: exit 2, the key or value named
expect_status 2 mt replay "$T/db" --run alt --grid foo=1
expect_grep "$T/err" "unknown key 'foo'"
expect_status 2 mt replay "$T/db" --run alt --grid redundant=1
expect_grep "$T/err" "redundant=1: 4 experts \\+ 1 is not a multiple of 2 ranks"
expect_status 2 mt replay "$T/db" --run alt --grid algos=nope
expect_grep "$T/err" "unknown algorithm 'nope'"
exit 0
