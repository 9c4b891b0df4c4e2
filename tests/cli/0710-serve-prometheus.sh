#!/bin/sh
# moetrace serve: the exposition passes promtool, answers over HTTP (404,
# 405 where it should), and a real Prometheus server started here scrapes
# it: PromQL on what it stored equals the trace's own figures (steps, the
# tokens of a layer summed over EP ranks, the imbalance of the window).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/prom.sh"

expect_status 0 mt gen --model mixtral-8x7b --steps 120 --seed 3 -q "$T/t.db"
expect_status 0 mt serve --once --per-expert "$T/t.db"
cp "$T/out" "$T/metrics"
promtool check metrics <"$T/metrics" >"$T/lint" 2>&1 || { cat "$T/lint"; fail "promtool check metrics"; }
expect_grep "$T/metrics" '^moetrace_steps_total 120$'
expect_grep "$T/metrics" '^# TYPE moetrace_ep_rank_tokens_total counter$'
expect_grep "$T/metrics" '^moetrace_expert_tokens_total\{layer="0",expert="7"\} [0-9]+$'
# without --per-expert no expert series
expect_status 0 mt serve --once "$T/t.db"
expect_nogrep "$T/out" 'moetrace_expert_tokens_total'

# the layer's tokens summed over the EP ranks are the layer's tokens
tok3=$(mt sql --format csv "$T/t.db" "SELECT sum(tokens) FROM expert_heat WHERE layer = 3" | tail -n 1)
got=$(awk -F' ' '/^moetrace_ep_rank_tokens_total\{layer="3",/ { s += $2 } END { printf "%.0f", s }' "$T/metrics")
[ "$got" = "$tok3" ] || fail "layer 3: ranks sum to $got tokens, the trace holds $tok3"

expect_status 2 mt serve --listen nowhere "$T/t.db"
expect_grep "$T/err" "--listen: 'nowhere' is not HOST:PORT"

"$MOETRACE" serve --listen 127.0.0.1:0 "$T/t.db" >"$T/serve.out" 2>"$T/serve.err" &
pids="$pids $!"
port=$(wait_port "$T/serve.out")
http GET "http://127.0.0.1:$port/metrics" >"$T/http"
[ "$(head -n 1 "$T/http")" = 200 ] || fail "GET /metrics: $(head -n 1 "$T/http")"
expect_grep "$T/http" '^moetrace_steps_total 120$'
[ "$(http GET "http://127.0.0.1:$port/nope" | head -n 1)" = 404 ] || fail "GET /nope is not 404"
http POST "http://127.0.0.1:$port/metrics" >"$T/post"
[ "$(head -n 1 "$T/post")" = 405 ] || fail "POST is not 405"
expect_grep "$T/post" "^Allow: GET, HEAD$"

start_prometheus "$port"
i=0
until [ -n "$(query 'moetrace_steps_total')" ]; do
	i=$((i + 1)); [ $i -lt 600 ] || { tail -n 20 "$T/prom.log"; fail "prometheus stored no scrape"; }
	sleep 0.1
done
[ "$(query 'moetrace_steps_total')" = 120 ] || fail "PromQL moetrace_steps_total: $(query 'moetrace_steps_total')"
got=$(query 'sum(moetrace_ep_rank_tokens_total{layer="3"})')
[ "$got" = "$tok3" ] || fail "PromQL layer 3 tokens: $got, trace: $tok3"
got=$(query 'count(moetrace_layer_imbalance)')
[ "$got" = 32 ] || fail "PromQL: $got layer series, mixtral has 32 layers"
# the window's imbalance of a layer, as top computes it
expect_status 0 mt top --snapshot --layer 5 "$T/t.db"
now=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(repr([r for r in j["layers"] if r["layer"] == 5][0]["now"]))' "$T/out")
got=$(query 'moetrace_layer_imbalance{layer="5"}')
python3 -c 'import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(abs(a - b) > 1e-6 * b)' "$got" "$now" ||
	fail "PromQL layer 5 imbalance $got, top says $now"

# following: steps appended to the run reach the counters on the next scrapes
expect_status 0 mt record --model mixtral-8x7b --steps 30 --seed 9 --block --append \
	--run gen-mixtral-8x7b-seed3 "$T/t.db"
i=0
until [ "$(query 'moetrace_steps_total')" = 150 ]; do
	i=$((i + 1)); [ $i -lt 600 ] || fail "PromQL moetrace_steps_total stayed $(query 'moetrace_steps_total')"
	sleep 0.1
done
tok3b=$(mt sql --format csv "$T/t.db" "SELECT sum(tokens) FROM expert_heat WHERE layer = 3" | tail -n 1)
[ "$tok3b" -gt "$tok3" ] || fail "the appended steps hold no layer-3 tokens"
got=$(query 'sum(moetrace_ep_rank_tokens_total{layer="3"})')
[ "$got" = "$tok3b" ] || fail "PromQL layer 3 tokens after the append: $got, trace: $tok3b"

# the shipped Grafana dashboard: every panel's PromQL parses (promtool, as
# recording rules) and, with its variables set, returns series here
dash=$MOETRACE_TOP/examples/grafana/moetrace-dashboard.json
python3 - "$dash" "$T/rules.yml" "$T/exprs" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in d["panels"] for t in p["targets"]]
with open(sys.argv[2], "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, e in enumerate(exprs):
        f.write("      - record: dashboard_expr_%d\n        expr: %s\n" % (i, json.dumps(e)))
with open(sys.argv[3], "w") as f:
    for e in exprs:
        f.write(e.replace("$job", ".*").replace("$instance", ".*").replace("$layer", "3") + "\n")
PY
promtool check rules "$T/rules.yml" >"$T/lint" 2>&1 || { cat "$T/lint"; fail "a dashboard expression does not parse"; }
while IFS= read -r e; do
	i=0
	until [ -n "$(query "$e")" ]; do
		i=$((i + 1)); [ $i -lt 600 ] || fail "dashboard query returns nothing: $e"
		sleep 0.1
	done
done <"$T/exprs"
exit 0
