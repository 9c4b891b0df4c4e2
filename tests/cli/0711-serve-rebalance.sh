#!/bin/sh
# serve --rebalance-every: the rebalance counters of the replay following
# the run are those `moetrace replay` prints for the same steps and
# settings (events, copies, bytes inside and across nodes, transfer
# seconds), once and while the trace grows; the options are checked.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/prom.sh"

# gpt-oss-120b: 16 ranks, 8 per node, so copies cross nodes too
expect_status 0 mt gen --model gpt-oss-120b --steps 300 --seed 5 -q "$T/t.db"
run=$(mt sql --format csv "$T/t.db" "SELECT name FROM runs" | tail -n 1)

# compare FILE ARGS...: the exposition FILE against `replay --no-store --json ARGS`
compare() {
	f=$1; shift
	mt replay --no-store --json "$@" >"$T/replay.json" || fail "replay $*"
	python3 - "$f" "$T/replay.json" <<'PY' || fail "serve's rebalance counters differ from replay $*"
import json, sys
m = {}
for line in open(sys.argv[1]):
    if line.strip() and not line.startswith("#"):
        k, v = line.rsplit(" ", 1)
        m[k] = float(v)
r = json.load(open(sys.argv[2]))
s = r["summary"]
a = r["params"]["algo"]
pairs = [
    ("events", m['moetrace_rebalance_events_total{algo="%s"}' % a], s["events"]),
    ("moves", m['moetrace_rebalance_moves_total{algo="%s"}' % a], s["moves"]),
    ("bytes intra", m['moetrace_rebalance_bytes_total{algo="%s",tier="intra_node"}' % a], r["bytes_intra_node"]),
    ("bytes inter", m['moetrace_rebalance_bytes_total{algo="%s",tier="inter_node"}' % a], r["bytes_inter_node"]),
    ("steps", m["moetrace_rebalance_replay_steps"], s["steps"]),
]
bad = [p for p in pairs if p[1] != p[2]]
for name, key in (("intra", "transfer_intra_seconds"), ("inter", "transfer_inter_seconds")):
    got = m['moetrace_rebalance_transfer_seconds_total{algo="%s",tier="%s_node"}' % (a, name)]
    if abs(got - r[key]) > 1e-6 * max(1.0, r[key]):
        bad.append((name + " seconds", got, r[key]))
if abs(m['moetrace_rebalance_imbalance_mean{algo="%s"}' % a] - s["imbalance_mean"]) > 1e-6:
    bad.append(("imbalance", m['moetrace_rebalance_imbalance_mean{algo="%s"}' % a], s["imbalance_mean"]))
for p in bad:
    print("%s: serve %s, replay %s" % p)
if s["events"] < 2 or r["bytes_inter_node"] <= 0:
    print("the trace should give rebalances that cross nodes: %s" % s)
    sys.exit(1)
sys.exit(1 if bad else 0)
PY
}

expect_status 0 mt serve --once --rebalance-every 40 "$T/t.db"
cp "$T/out" "$T/m1"
promtool check metrics <"$T/m1" >"$T/lint" 2>&1 || { cat "$T/lint"; fail "promtool check metrics"; }
expect_grep "$T/m1" '^moetrace_rebalance_info\{algo="keel",interval="40",window="40",delay="20"\} 1$'
compare "$T/m1" --interval 40 "$T/t.db"
# another algorithm, window and delay
expect_status 0 mt serve --once --algo eplb --rebalance-every 50 --rebalance-window 80 \
	--rebalance-delay 5 "$T/t.db"
cp "$T/out" "$T/m2"
compare "$T/m2" --algo eplb --interval 50 --window 80 --delay 5 "$T/t.db"

# the options
expect_status 2 mt serve --once --rebalance-delay 5 "$T/t.db"
expect_grep "$T/err" 'need --rebalance-every'
expect_status 2 mt serve --once --rebalance-every 40 --rebalance-delay 40 "$T/t.db"
expect_grep "$T/err" 'must be shorter than --rebalance-every 40'
expect_status 2 mt serve --once --rebalance-every 0 "$T/t.db"
# no decision inside the trace yet: zero, and no replay figures
expect_status 0 mt serve --once --rebalance-every 400 "$T/t.db"
expect_grep "$T/out" '^moetrace_rebalance_events_total\{algo="keel"\} 0$'
expect_grep "$T/out" '^moetrace_rebalance_imbalance_mean\{algo="keel"\} NaN$'

# following: the counters catch up as steps are appended to the run
"$MOETRACE" serve --listen 127.0.0.1:0 --rebalance-every 40 "$T/t.db" >"$T/serve.out" 2>"$T/serve.err" &
pids="$pids $!"
port=$(wait_port "$T/serve.out")
http GET "http://127.0.0.1:$port/metrics" | tail -n +2 >"$T/h1"
i=0
until [ "$(metric "$T/h1" moetrace_rebalance_replay_steps)" = 300 ]; do
	i=$((i + 1)); [ $i -lt 1200 ] || fail "the replay did not cover the 300 steps"
	sleep 0.1
	http GET "http://127.0.0.1:$port/metrics" | tail -n +2 >"$T/h1"
done
compare "$T/h1" --interval 40 "$T/t.db"
expect_status 0 mt record --model gpt-oss-120b --steps 130 --seed 9 --block --append --run "$run" "$T/t.db"
i=0
until http GET "http://127.0.0.1:$port/metrics" | tail -n +2 >"$T/h2" &&
	[ "$(metric "$T/h2" moetrace_rebalance_replay_steps)" = 430 ]; do
	i=$((i + 1)); [ $i -lt 1200 ] || fail "the replay did not follow the appended steps"
	sleep 0.1
done
compare "$T/h2" --interval 40 "$T/t.db"
ev1=$(metric "$T/h1" 'moetrace_rebalance_events_total{algo="keel"}')
ev2=$(metric "$T/h2" 'moetrace_rebalance_events_total{algo="keel"}')
[ "$ev2" -gt "$ev1" ] || fail "no new rebalance after 130 more steps ($ev1, then $ev2)"
exit 0
