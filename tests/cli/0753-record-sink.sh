#!/bin/sh
# record --sink: a recording shipped live to a real ClickHouse server
# (started here from a config under $T, stopped by PID on exit) reads back
# from the server as it reads from the file; a server killed with -9
# mid-record and restarted on the same port shows no partial step and the
# recorder resumes; with the server away beyond --sink-backlog the oldest
# steps are skipped and counted (also in /metrics), the recording itself is
# as without a sink, and `push` completes the copy; a bad sink URL is exit 2
# naming it without its password; the library's sink from Python.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ch.sh"

set -- $(ch_ports 3)
HTTP=$1
ch_config "$T/ch" "$1" "$2" "$3"
start_server() { ch_start "$T/ch" "$HTTP"; SERVER=$CH_PID; }
kill_server() { ch_stop "$SERVER" KILL; }
q() { ch_q "$HTTP" "$@"; }
URL="clickhouse://127.0.0.1:$HTTP"
# same_as_file DB SERVER-URL: info (but the first line and storage) and balance agree
same_as_file() {
	expect_status 0 mt info "$1"
	tail -n +2 "$T/out" | grep -v '^  storage' >"$T/info.file"
	expect_status 0 mt info "$2"
	tail -n +2 "$T/out" | grep -v '^  storage' >"$T/info.url"
	diff "$T/info.file" "$T/info.url" >&2 || fail "info: the server differs from $1"
	expect_status 0 mt balance "$1"
	mv "$T/out" "$T/balance.file"
	expect_status 0 mt balance "$2"
	diff "$T/balance.file" "$T/out" >&2 || fail "balance: the server differs from $1"
}
no_partial() {
	[ "$(q "$1" "SELECT count() FROM (SELECT run, step, count() AS n FROM counts_committed
		GROUP BY run, step) WHERE n != $2")" = 0 ] || fail "a partial step is visible ($1)"
	[ "$(q "$1" "SELECT count() = uniqExact(run, step, layer) FROM counts")" = 1 ] ||
		fail "duplicate counts rows ($1)"
}
start_server

# 1. a recording shipped as it is recorded reads back the same
expect_status 0 mt record --model deepseek-v3 --steps 300 --rate 300 --run live \
	--sink "$URL/live?deployment=d1" "$T/a.db"
# every step handed in is recorded, dropped or failed, as without a sink
# (a loaded machine may drop some: the ring's policy, not the sink's)
accounted() {
	set -- $(sed -n 's/^recorded \([0-9]*\), dropped \([0-9]*\), failed \([0-9]*\);.*/\1 \2 \3/p' "$1") "$2"
	[ $# = 4 ] && [ $(($1 + $2 + $3)) -eq "$4" ] && [ "$3" = 0 ] || { cat "$1" >&2; fail "recorded + dropped + failed is not $4"; }
	echo "$1"
}
n=$(accounted "$T/out" 300)
expect_grep "$T/out" "^sink clickhouse://127.0.0.1:$HTTP/live\?deployment=d1: shipped $n, skipped 0, retries 0$"
same_as_file "$T/a.db" "$URL/live?deployment=d1&run=live"
no_partial live 58

# 2. the server killed with -9 mid-record and restarted on its port: no
# partial step, the recorder resumes, the final copy equals the file
"$MOETRACE" record --model mixtral-8x7b --steps 0 --rate 150 --run k --sink "$URL/kill?deployment=d2" \
	--sink-wait 30000 "$T/k.db" >"$T/kout" 2>"$T/kerr" &
REC=$!
PIDS="$PIDS $REC"
shipped() { [ "$(q kill "SELECT count() FROM steps" 2>/dev/null || echo 0)" -ge "$1" ]; }
wait_until 60 shipped 60 || fail "the sink shipped no steps before the kill"
kill_server
at_kill=$(mt sql --format csv "$T/k.db" "SELECT count(*) FROM steps" | tail -1)
# the recorder goes on while the server is away
grown() { [ "$(mt sql --format csv "$T/k.db" "SELECT count(*) FROM steps" | tail -1)" -ge $((at_kill + 100)) ]; }
wait_until 60 grown || fail "the recording stopped while the server was away"
start_server
no_partial kill 32
before=$(q kill "SELECT count() FROM steps")
resumed() { [ "$(q kill "SELECT count() FROM steps")" -gt $((before + 100)) ]; }
wait_until 60 resumed || fail "the sink did not resume after the restart"
kill -INT $REC
wait $REC
st=$?
PIDS=$(for p in $PIDS; do [ "$p" = "$REC" ] || echo "$p"; done)
[ $st -eq 0 ] || { cat "$T/kout" "$T/kerr" >&2; fail "record exited $st"; }
done=$(sed -n "s/^run 'k' .*: \([0-9]*\) steps of .*/\1/p" "$T/kout")
n=$(accounted "$T/kout" "$done")
expect_grep "$T/kout" "^sink clickhouse://127.0.0.1:$HTTP/kill\?deployment=d2: shipped $n, skipped 0, retries [1-9][0-9]*"
no_partial kill 32
same_as_file "$T/k.db" "$URL/kill?deployment=d2&run=k"

# 3. the server away beyond the bound: the oldest steps are skipped and
# counted, the recording is as without a sink, and push completes the copy
kill_server
# (recorded until interrupted once the server is back: a fixed step count
# could end before a loaded machine has read /metrics)
"$MOETRACE" record --model mixtral-8x7b --steps 0 --rate 200 --run down --metrics 127.0.0.1:0 \
	--sink "$URL/down?deployment=d3" --sink-backlog 50 --sink-wait 30000 "$T/d.db" \
	>"$T/dout" 2>"$T/derr" &
REC=$!
PIDS="$PIDS $REC"
port() { grep -q '(port [0-9]*)' "$T/dout"; }
wait_until 60 port || { cat "$T/dout" "$T/derr" >&2; fail "no metrics port"; }
MPORT=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$T/dout")
skipping() {
	curl -sf "http://127.0.0.1:$MPORT/metrics" >"$T/metrics" 2>/dev/null &&
		awk '$1 == "moetrace_sink_steps_skipped_total" && $2 > 0 { ok = 1 } END { exit !ok }' "$T/metrics"
}
wait_until 60 skipping || fail "no skipped steps in /metrics while the server is away"
expect_grep "$T/metrics" "^# TYPE moetrace_sink_retries_total counter"
expect_grep "$T/metrics" "^moetrace_sink_retries_total [1-9]"
expect_grep "$T/metrics" "^moetrace_sink_steps_shipped_total 0$"
expect_grep "$T/metrics" "^moetrace_sink_lag_steps [0-9]+$"
expect_grep "$T/metrics" "^moetrace_sink_up 0$"
start_server
back() { [ "$(q down "SELECT count() FROM steps" 2>/dev/null || echo 0)" -gt 0 ]; }
wait_until 60 back || fail "the sink shipped nothing once the server was back"
kill -INT $REC
wait $REC
st=$?
PIDS=$(for p in $PIDS; do [ "$p" = "$REC" ] || echo "$p"; done)
[ $st -eq 0 ] || { cat "$T/dout" "$T/derr" >&2; fail "record exited $st"; }
done=$(sed -n "s/^run 'down' .*: \([0-9]*\) steps of .*/\1/p" "$T/dout")
[ -n "$done" ] || { cat "$T/dout" >&2; fail "no step count in record's summary"; }
n=$(accounted "$T/dout" "$done")
shipped=$(sed -n 's/^sink .*: shipped \([0-9]*\), skipped.*/\1/p' "$T/dout")
skipped=$(sed -n 's/^sink .*: shipped [0-9]*, skipped \([0-9]*\),.*/\1/p' "$T/dout")
[ -n "$shipped" ] && [ "$skipped" -gt 0 ] && [ "$shipped" -gt 0 ] ||
	{ cat "$T/dout" >&2; fail "expected both shipped and skipped steps"; }
[ $((shipped + skipped)) -eq "$n" ] || fail "shipped $shipped + skipped $skipped is not the $n recorded"
expect_grep "$T/dout" "the trace holds the $skipped skipped steps; \`moetrace push\` ships them"
[ "$(q down "SELECT count() FROM steps")" = "$shipped" ] || fail "the server holds other than the $shipped shipped steps"
[ "$(q down "SELECT max(step) FROM steps")" = "$(mt sql --format csv "$T/d.db" "SELECT max(step) FROM steps" | tail -1)" ] ||
	fail "the newest step was not shipped"
[ "$(q down "SELECT min(step) > 0 FROM steps")" = 1 ] || fail "the oldest steps were not the ones skipped"
no_partial down 32
expect_status 0 mt push "$T/d.db" "$URL/down?deployment=d3"
expect_grep "$T/out" "$n steps, $skipped sent, 0 completed, $shipped already there"
same_as_file "$T/d.db" "$URL/down?deployment=d3&run=down"

# 4. a bad sink URL: exit 2 naming it without its password, no file made
expect_status 2 mt record --model mixtral-8x7b --steps 10 \
	--sink "clickhouse://bob:hunter2@127.0.0.1/x" "$T/bad.db"
expect_grep "$T/err" "^moetrace record: --sink 'clickhouse://bob@127.0.0.1/x': malformed ClickHouse URL"
expect_nogrep "$T/err" "hunter2"
[ ! -e "$T/bad.db" ] || fail "a bad sink URL left a trace file"
expect_status 2 mt record --model mixtral-8x7b --steps 10 --sink-backlog 5 "$T/bad.db"
expect_grep "$T/err" "need --sink"

# 5. the library's sink from Python
if [ -n "${MOETRACE_LIB:-}" ]; then
	expect_status 0 env PYTHONPATH="$MOETRACE_TOP/collector/python" python3 - "$T/py.db" "$URL/py?deployment=d4" <<'PY'
import sys, random
import moetrace
from moetrace import MoetraceError
path, url = sys.argv[1:3]
r = moetrace.Recorder(path, "py", layers=4, experts=16, topk=2, ranks=4, slots=4,
                     block=True)  # every step recorded, however busy the machine
try:
    r.ship(url.replace("clickhouse://", "clickhouse://eve:pw0rd@") + "&x=1")
except MoetraceError as e:
    assert e.code == -4 and "pw0rd" not in str(e) and "eve@" in str(e), str(e)
else:
    raise AssertionError("a bad URL was taken")
r.ship(url)
rng = random.Random(3)
for s in range(500):
    r.step(s, [[rng.randrange(100) for _ in range(16)] for _ in range(4)])
r.close()
st = r.sink_stats()
assert st["shipped"] == 500 and st["skipped"] == 0 and st["lag"] == 0, st
assert r.stats()["recorded"] == 500
print(st["shipped"])
PY
	same_as_file "$T/py.db" "$URL/py?deployment=d4&run=py"
	no_partial py 4
fi
exit 0
