#!/bin/sh
# record --metrics: while a trace is being recorded, /metrics passes
# promtool and a real Prometheus server scraping it stores what the trace
# holds: at one scrape's instant, the steps and the tokens of a layer over
# its EP ranks equal the trace's own figures up to that scrape's last step,
# the recorder's counters agree with them, and the following replay's
# events equal `moetrace replay` on the steps it covered.  Bad addresses
# fail before anything is written.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/prom.sh"

expect_status 2 mt record --model mixtral-8x7b --steps 5 --metrics nowhere "$T/bad.db"
expect_grep "$T/err" "'nowhere' is not HOST:PORT"
expect_status 2 mt record --model mixtral-8x7b --steps 5 --rebalance-every 10 "$T/bad.db"
expect_grep "$T/err" '--rebalance-every needs --metrics'
[ ! -e "$T/bad.db" ] || fail "a refused record created its database"

"$MOETRACE" record --model mixtral-8x7b --steps 0 --rate 40 --block --run live \
	--metrics 127.0.0.1:0 --rebalance-every 20 "$T/r.db" >"$T/rec.out" 2>"$T/rec.err" &
rec=$!
pids="$pids $rec"
port=$(wait_port "$T/rec.out")
http GET "http://127.0.0.1:$port/metrics" >"$T/h"
[ "$(head -n 1 "$T/h")" = 200 ] || fail "GET /metrics: $(head -n 1 "$T/h")"
tail -n +2 "$T/h" >"$T/m"
promtool check metrics <"$T/m" >"$T/lint" 2>&1 || { cat "$T/lint"; fail "promtool check metrics"; }
expect_grep "$T/m" '^# TYPE moetrace_recorder_steps_recorded_total counter$'
expect_grep "$T/m" '^moetrace_info\{run="live",'

start_prometheus "$port"
i=0
# every query below is evaluated at the instant this one succeeded: the
# scrape it saw is then the latest one for all of them (an instant taken
# earlier could precede Prometheus' first scrape)
until at=$(python3 -c 'import time; print("%.3f" % time.time())') &&
	v=$(query 'moetrace_rebalance_replay_steps' "$at") && [ -n "$v" ] && [ "$v" -ge 60 ]; do
	i=$((i + 1)); [ $i -lt 1200 ] || { tail -n 20 "$T/prom.log"; fail "prometheus stored no replay of 60 steps"; }
	sleep 0.1
done
last=$(query 'moetrace_last_step' "$at")
steps=$(query 'moetrace_steps_total' "$at")
tok3=$(query 'sum(moetrace_ep_rank_tokens_total{layer="3"})' "$at")
recorded=$(query 'moetrace_recorder_steps_recorded_total' "$at")
dropped=$(query 'moetrace_recorder_steps_dropped_total' "$at")
rsteps=$(query 'moetrace_rebalance_replay_steps' "$at")
events=$(query 'moetrace_rebalance_events_total' "$at")
[ -n "$last" ] && [ -n "$tok3" ] && [ -n "$events" ] || fail "no sample at $at"

# the trace's own figures up to the scrape's last step (recording goes on)
want=$(mt sql --format csv "$T/r.db" "SELECT count(*) FROM steps WHERE step <= $last" | tail -n 1)
[ "$steps" = "$want" ] || fail "PromQL moetrace_steps_total $steps, the trace holds $want steps up to $last"
want=$(mt sql --format csv "$T/r.db" "SELECT sum(tokens) FROM expert_heat WHERE layer = 3 AND step <= $last" | tail -n 1)
[ "$tok3" = "$want" ] || fail "PromQL layer 3 tokens $tok3, the trace holds $want up to step $last"
# the recorder's counters are read before the trace: never ahead of it
[ "$recorded" -le "$steps" ] && [ "$recorded" -gt 0 ] || fail "recorded $recorded, trace $steps"
[ "$dropped" = 0 ] || fail "--block dropped $dropped steps"
mt replay --no-store --json --interval 20 --steps "0:$((rsteps - 1))" --run live "$T/r.db" >"$T/replay.json" ||
	fail "replay of the first $rsteps steps"
want=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"]["events"])' "$T/replay.json")
[ "$events" = "$want" ] || fail "PromQL rebalance events $events, replay of $rsteps steps: $want"

# stopped by a signal: everything handed in is in the trace
kill -TERM "$rec"
wait "$rec" || { st=$?; cat "$T/rec.out" "$T/rec.err" >&2; fail "record exited $st on SIGTERM"; }
n=$(mt sql --format csv "$T/r.db" "SELECT count(*) FROM steps" | tail -n 1)
expect_grep "$T/rec.out" "^recorded $n, dropped 0, failed 0;"
exit 0
