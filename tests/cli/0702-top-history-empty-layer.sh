# top: a layer that got no token in a step is not scored there (docs/cli.md),
# so its per-step history has no point for that step (null in --snapshot, a
# blank cell in the trend and the per-step graph) rather than a perfect 1.0,
# and the graph's title gives the min over the scored steps.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || skip "python3 not installed"
# 2 layers x 4 experts, 2 ranks x 2 slots, static; layer 1 gets no token in
# step 2, the last one: "now" is then the last step scored
cat >"$T/t.csv" <<'CSV'
step,layer,expert,tokens
0,0,0,8
0,0,1,4
0,0,2,2
0,0,3,2
0,1,0,3
0,1,2,3
1,0,0,5
1,0,1,5
1,0,2,6
1,0,3,4
1,1,0,6
1,1,1,2
2,0,0,1
2,0,2,1
CSV
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run hole --ranks 2 --slots 2
expect_status 0 mt top --snapshot --algo eplb --layer 1 "$T/db"
python3 - "$T/out" <<'PY' || fail "history of a layer with an empty step"
import json, sys
d = json.load(open(sys.argv[1]))
h = d["selected"]["history"]
# step 0: loads 3|3 -> 1.0; step 1: 8|0 -> 2.0; step 2: no token -> null
assert h == [1.0, 2.0, None], h
PY
expect_status 0 mt top --snapshot --algo eplb --layer 0 "$T/db"
python3 - "$T/out" <<'PY' || fail "history of a layer with tokens in every step"
import json, sys
h = json.load(open(sys.argv[1]))["selected"]["history"]
assert [round(x, 3) for x in h] == [1.5, 1.0, 1.0], h
PY

# the screen: no "nan" anywhere, and the graph's title gives the scored
# steps' min (1.000) and max (2.000), and "now" as the last scored figure
command -v tmux >/dev/null || exit 0
tm() { tmux -S "$T/sock" -f /dev/null "$@"; }
trap 'tm kill-server 2>/dev/null; stop_left "$T"; rm -rf "$T"' EXIT
tm new-session -d -s s -x 160 -y 45 "TERM=xterm-256color $MOETRACE top --algo eplb --layer 1 $T/db"
i=0
while [ $i -lt 600 ]; do
	tm capture-pane -p -t s >"$T/screen"
	grep -q "imbalance per step" "$T/screen" && break
	sleep 0.1
	i=$((i + 1))
done
expect_grep "$T/screen" "Layer 1 imbalance per step"
expect_nogrep "$T/screen" "nan"
expect_grep "$T/screen" "now 2\.000 +min 1\.000 +max 2\.000"
# q, and top gone before the session is (killing the terminal while it
# exits is a test's race, not the user's)
pid=$(tm display-message -p -t s '#{pane_pid}')
tm send-keys -t s q
gone() { ! kill -0 "$pid" 2>/dev/null; }
wait_until 60 gone || fail "top did not exit on q"
exit 0
