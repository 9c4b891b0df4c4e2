# push: a trace into a real ClickHouse server (started here from a config
# under $T, stopped by PID on exit) and read back over HTTP equals the
# SQLite figures; a second push adds nothing; a server killed with -9
# mid-push and restarted shows no partial step, and a repeated push
# completes the run exactly; two servers as two shards give through their
# Distributed tables the figures of one; `moetrace sql` on the server; server
# failures and bad URLs give exit 1/2.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ch.sh"

# shellcheck disable=SC2046
set -- $(ch_ports 8)
HTTP=$1 TCP=$2 ISRV=$3 FAKE=$4 CLOSED=$5 HTTP2=$6 TCP2=$7 ISRV2=$8
# the cluster 'two': both servers, one shard each
TWO="<two>
      <shard><replica><host>127.0.0.1</host><port>$TCP</port></replica></shard>
      <shard><replica><host>127.0.0.1</host><port>$TCP2</port></replica></shard>
    </two>"
ch_config "$T/ch" "$HTTP" "$TCP" "$ISRV" "$TWO"
ch_config "$T/ch2" "$HTTP2" "$TCP2" "$ISRV2" "$TWO"
# q DB QUERY: one query over HTTP, TSV on stdout
q() { ch_q "$HTTP" "$@"; }
URL="clickhouse://127.0.0.1:$HTTP"
ch_start "$T/ch" "$HTTP"
SERVER=$CH_PID

# a DeepSeek-V3-shaped trace and a hand trace with a deployed placement
expect_status 0 mt gen --model deepseek-v3 --steps 120 --seed 5 -q "$T/g.db"
expect_status 0 mt import "$(dirname "$0")/../data/jsonl/heat.jsonl" --into "$T/g.db" --run dep \
	--deployed "$(dirname "$0")/../data/deployed/expert_map.json"
cp "$T/g.db" "$T/g.orig"

# sums per (run, layer, expert) and step counts from SQLite ...
mt sql --format csv "$T/g.db" "SELECT r.name, h.layer, h.expert, h.tokens FROM layer_heat h
	JOIN runs r USING (run) ORDER BY 1, 2, 3" | tail -n +2 | tr , '\t' >"$T/sqlite.heat" ||
	fail "sql on the trace"
mt sql --format csv "$T/g.db" "SELECT r.name, count(*), sum(s.tokens), sum(s.phase) FROM steps s
	JOIN runs r USING (run) GROUP BY 1 ORDER BY 1" | tail -n +2 | tr , '\t' >"$T/sqlite.steps"
mt sql --format csv "$T/g.db" "SELECT r.name, d.step, d.layer, d.ranks, d.slots, phy2log_json(d.phy2log)
	FROM deployed d JOIN runs r USING (run) ORDER BY 1, 2, 3" | tail -n +2 >"$T/sqlite.deployed"
[ -s "$T/sqlite.heat" ] && [ -s "$T/sqlite.deployed" ] || fail "empty SQLite figures"

# ... equal the server's after a push (as user writer, password never shown)
expect_status 0 mt push "$T/g.db" "clickhouse://writer:s3cretpw@127.0.0.1:$HTTP/fleet" --deployment east --batch 16
expect_grep "$T/out" "run 'dep' -> clickhouse://writer@127.0.0.1:$HTTP/fleet deployment 'east': .* sent"
expect_nogrep "$T/out" "s3cretpw"
check_same() {
	q fleet "SELECT run, layer, expert, tokens FROM layer_heat WHERE deployment = 'east'
		ORDER BY run, layer, expert FORMAT TSV" >"$T/ch.heat" || fail "layer_heat query"
	cmp -s "$T/sqlite.heat" "$T/ch.heat" || { diff "$T/sqlite.heat" "$T/ch.heat" | head >&2; fail "layer_heat differs ($1)"; }
	q fleet "SELECT run, count(), sum(tokens), sum(phase) FROM steps WHERE deployment = 'east'
		GROUP BY run ORDER BY run FORMAT TSV" >"$T/ch.steps"
	cmp -s "$T/sqlite.steps" "$T/ch.steps" || { diff "$T/sqlite.steps" "$T/ch.steps" >&2; fail "steps differ ($1)"; }
	# every (step, layer) once: no duplicate and no partial step
	[ "$(q fleet "SELECT count() = uniqExact(run, step, layer) FROM counts")" = 1 ] ||
		fail "duplicate counts rows ($1)"
	[ "$(q fleet "SELECT count() FROM (SELECT c.run, c.step, count() AS n, any(r.layers) AS l
		FROM counts_committed c ANY LEFT JOIN runs r USING (deployment, run)
		GROUP BY c.run, c.step) WHERE n != l")" = 0 ] || fail "a partial step is visible ($1)"
}
check_same "first push"
q fleet "SELECT run, step, layer, ranks, slots, concat('[', arrayStringConcat(arrayMap(x -> toString(x), phy2log), ','), ']')
	FROM deployed ORDER BY run, step, layer FORMAT CSV" | tr -d '"' >"$T/ch.deployed"
tr -d '"' <"$T/sqlite.deployed" | cmp -s - "$T/ch.deployed" || fail "deployed placements differ"
# the rollup (100 steps per row) sums to the same heat
[ "$(q fleet "SELECT sum(arraySum(counts)) FROM rollup_heat WHERE deployment = 'east'")" = \
  "$(q fleet "SELECT sum(tokens) FROM layer_heat WHERE deployment = 'east'")" ] || fail "rollup sums differ"
[ "$(q fleet "SELECT max(steps) FROM rollup_heat WHERE run = 'gen-deepseek-v3-seed5'")" = 100 ] ||
	fail "rollup rows do not hold 100 steps"

# the static layout's imbalance per step and layer, as SQLite's layer_imbalance
# (the generated run has no deployed rows: 64 ranks x 5 slots, 64 replicas)
mt sql --format csv "$T/g.db" "SELECT step, layer, imbalance FROM layer_imbalance WHERE run =
	(SELECT run FROM runs WHERE name = 'gen-deepseek-v3-seed5') ORDER BY 1, 2" | tail -n +2 |
	awk -F, '{ printf "%d %d %.9f\n", $1, $2, $3 }' >"$T/sqlite.imb"
q fleet "SELECT step, layer, imbalance FROM layer_imbalance_static WHERE run = 'gen-deepseek-v3-seed5'
	ORDER BY step, layer FORMAT CSV" | awk -F, '{ printf "%d %d %.9f\n", $1, $2, $3 }' >"$T/ch.imb"
[ "$(wc -l <"$T/ch.imb")" = $((120 * 58)) ] || fail "layer_imbalance_static rows"
same_file "$T/sqlite.imb" "$T/ch.imb"

# a second push adds nothing
before=$(q fleet "SELECT count() FROM counts")-$(q fleet "SELECT count() FROM steps")-$(q fleet "SELECT count() FROM deployed")
expect_status 0 mt push "$T/g.db" "clickhouse://writer:s3cretpw@127.0.0.1:$HTTP/fleet" --deployment east
expect_grep "$T/out" "120 steps, 0 sent, 0 completed, 120 already there; 0 deployed rows sent"
after=$(q fleet "SELECT count() FROM counts")-$(q fleet "SELECT count() FROM steps")-$(q fleet "SELECT count() FROM deployed")
[ "$before" = "$after" ] || fail "a second push added rows: $before -> $after"
same_file "$T/g.db" "$T/g.orig"

# kill -9 of the server mid-push (one step per INSERT), restart, push again
mt push "$T/g.db" "$URL/crash" --deployment east --batch 1 >"$T/kout" 2>"$T/kerr" &
PUSH=$!
# the push is stopped (SIGSTOP) while the server is asked, so that however
# slow the asking on a loaded machine, it is mid-push when the server dies
i=0
while kill -STOP $PUSH 2>/dev/null; do
	[ "$(q crash "SELECT count() FROM counts" 2>/dev/null || echo 0)" -ge 290 ] && break
	kill -CONT $PUSH
	i=$((i + 1)); [ $i -lt 3000 ] || break
	sleep 0.02
done
kill -9 "$SERVER"
kill -CONT $PUSH 2>/dev/null
ch_stop "$SERVER" KILL
wait $PUSH
st=$?
[ $st -eq 1 ] || { cat "$T/kout" "$T/kerr" >&2; fail "push during the kill exited $st, expected 1"; }
expect_grep "$T/kerr" "cannot reach 'clickhouse://127.0.0.1:$HTTP/crash'"
ch_start "$T/ch" "$HTTP"
[ "$(q crash "SELECT count() FROM (SELECT run, step, count() AS n FROM counts_committed
	GROUP BY run, step) WHERE n != 58")" = 0 ] || fail "a partial step is visible after the kill"
[ "$(q crash "SELECT count() FROM steps")" -lt 120 ] || fail "the kill came after the push ended"
expect_status 0 mt push "$T/g.db" "$URL/crash" --deployment east
q crash "SELECT run, layer, expert, tokens FROM layer_heat ORDER BY run, layer, expert FORMAT TSV" >"$T/crash.heat"
same_file "$T/sqlite.heat" "$T/crash.heat"
q crash "SELECT run, count(), sum(tokens), sum(phase) FROM steps GROUP BY run ORDER BY run FORMAT TSV" >"$T/crash.steps"
same_file "$T/sqlite.steps" "$T/crash.steps"
[ "$(q crash "SELECT count() = uniqExact(run, step, layer) FROM counts")" = 1 ] || fail "duplicates after the kill"

# a push cut short between a batch's counts and its steps rows: the next
# push commits those steps (their rows checked against the trace) ...
expect_status 0 mt push "$T/g.db" "$URL/orphan" --deployment east --run dep
q orphan "INSERT INTO counts SELECT * FROM fleet.counts WHERE run = 'gen-deepseek-v3-seed5' AND step IN (7, 8)"
expect_status 0 mt push "$T/g.db" "$URL/orphan" --deployment east
expect_grep "$T/out" "run 'gen-deepseek-v3-seed5' .*: 120 steps, 118 sent, 2 completed, 0 already there"
q orphan "SELECT run, layer, expert, tokens FROM layer_heat ORDER BY run, layer, expert FORMAT TSV" >"$T/orphan.heat"
same_file "$T/sqlite.heat" "$T/orphan.heat"
[ "$(q orphan "SELECT count() = uniqExact(run, step, layer) FROM counts")" = 1 ] || fail "duplicates after completing"
# ... and refuses uncommitted rows that are not the trace's
q default "CREATE DATABASE wrong"
expect_status 0 mt push "$T/g.db" "$URL/wrong" --deployment east --run dep
q wrong "INSERT INTO counts SELECT deployment, run, step, layer, arrayMap(x -> x + 1, counts)
	FROM fleet.counts WHERE run = 'gen-deepseek-v3-seed5' AND step = 9"
expect_status 2 mt push "$T/g.db" "$URL/wrong" --deployment east
expect_grep "$T/err" "holds uncommitted counts of step 9 of run 'gen-deepseek-v3-seed5' \(deployment 'east'\) that differ from the trace"

# ... and a step the server holds only in part (exit 1: the server's state)
q default "CREATE DATABASE part"
expect_status 0 mt push "$T/g.db" "$URL/part" --deployment east --run dep
q part "INSERT INTO counts SELECT * FROM fleet.counts WHERE run = 'gen-deepseek-v3-seed5' AND step = 11 AND layer < 20"
expect_status 1 mt push "$T/g.db" "$URL/part" --deployment east
expect_grep "$T/err" "holds 20 counts rows \(20 layers\) of uncommitted step 11 of run 'gen-deepseek-v3-seed5' \(deployment 'east'\), not the 58 layers of one whole step"

# Distributed tables over the cluster named in the server's config
expect_status 0 mt push "$T/g.db" "$URL/dist" --deployment west --cluster here --run dep
[ "$(q dist "SELECT sum(tokens) FROM steps_all")" = "$(mt sql --format csv "$T/g.db" \
	"SELECT sum(tokens) FROM steps WHERE run = (SELECT run FROM runs WHERE name = 'dep')" | tail -1)" ] ||
	fail "steps_all sum differs"
expect_status 2 mt push "$T/g.db" "$URL/dist2" --cluster nosuch
expect_grep "$T/err" "no such cluster"

# moetrace sql on the server: the same figures as on the trace, read-only
# unless --write
expect_status 0 mt sql --format csv "$URL/fleet" "SELECT run, count() AS n, sum(tokens) AS t,
	sum(phase) AS p FROM steps WHERE deployment = 'east' GROUP BY run ORDER BY run"
tail -n +2 "$T/out" | tr , '\t' | tr -d '"' >"$T/sql.steps"
same_file "$T/sqlite.steps" "$T/sql.steps"
expect_status 2 mt sql "$URL/fleet" "CREATE TABLE t2 (x UInt8) ENGINE = TinyLog"
expect_grep "$T/err" "readonly mode.*; add --write to change the database"
expect_status 0 mt sql --write "$URL/fleet" "CREATE TABLE t2 (x UInt8) ENGINE = TinyLog"
expect_status 0 mt sql --write "$URL/fleet" "DROP TABLE t2"
expect_status 2 mt sql "$URL/fleet" "SELEC 1"
expect_grep "$T/err" "^moetrace sql: 'clickhouse://127.0.0.1:$HTTP/fleet' answered HTTP [45]00: Code: 62"
expect_status 2 mt sql --format markdown "$URL/fleet" "SELECT 1"

# two shards through Distributed tables give the figures of one server
ch_start "$T/ch2" "$HTTP2"
expect_status 0 mt push "$T/g.db" "$URL/shard" --deployment east --run dep --cluster two
expect_status 0 mt push "$T/g.db" "clickhouse://127.0.0.1:$HTTP2/shard" --deployment east \
	--run gen-deepseek-v3-seed5 --cluster two
[ "$(q shard "SELECT count() FROM steps")" = 2 ] || fail "shard 1 holds other steps"
[ "$(ch_q "$HTTP2" shard "SELECT count() FROM steps")" = 120 ] ||
	fail "shard 2 holds other steps"
q shard "SELECT run, count(), sum(tokens), sum(phase) FROM steps_all GROUP BY run ORDER BY run FORMAT TSV" >"$T/two.steps"
same_file "$T/sqlite.steps" "$T/two.steps"
q shard "SELECT run, layer, toUInt32(e.1 - 1) AS expert, e.2 FROM (SELECT run, layer, sumForEach(counts) AS s
	FROM counts_all GROUP BY run, layer) ARRAY JOIN arrayMap((x, i) -> (i, x), s, arrayEnumerate(s)) AS e
	ORDER BY run, layer, expert FORMAT TSV" >"$T/two.heat"
same_file "$T/sqlite.heat" "$T/two.heat"

# the schema version: a newer one is refused; other tables are not ours
q default "CREATE DATABASE newer" && q newer "CREATE TABLE moetrace_meta ENGINE = TinyLog AS
	SELECT toUInt32(99) AS version, toUInt32(100) AS rollup_steps, '' AS cluster, now() AS created"
expect_status 2 mt push "$T/g.db" "$URL/newer"
expect_grep "$T/err" "^moetrace push: 'clickhouse://127.0.0.1:$HTTP/newer' has moetrace schema version 99, newer than this moetrace knows \(4\)"
q default "CREATE DATABASE other" && q other "CREATE TABLE t (x UInt8) ENGINE = TinyLog"
expect_status 2 mt push "$T/g.db" "$URL/other"
expect_grep "$T/err" "'clickhouse://127.0.0.1:$HTTP/other' is not a moetrace schema: it holds table 't'"

# credentials refused, malformed URLs: exit 2, no password shown
expect_status 2 mt push "$T/g.db" "clickhouse://writer:wrongpw@127.0.0.1:$HTTP/fleet"
expect_grep "$T/err" "'clickhouse://writer@127.0.0.1:$HTTP/fleet' refused the credentials"
expect_nogrep "$T/err" "wrongpw"
for bad in "http://127.0.0.1:$HTTP/x" "clickhouse://127.0.0.1/x" "clickhouse://127.0.0.1:0/x" \
	"clickhouse://u:pw@127.0.0.1:$HTTP/bad-name" "clickhouse://127.0.0.1:$HTTP/"; do
	expect_status 2 mt push "$T/g.db" "$bad"
	expect_grep "$T/err" "^moetrace push: (not a ClickHouse URL|malformed ClickHouse URL)"
	expect_nogrep "$T/err" ":pw@"
done

# the server's failures: exit 1
expect_status 1 mt push "$T/g.db" "clickhouse://u:pw@127.0.0.1:$CLOSED/x"
expect_grep "$T/err" "^moetrace push: cannot reach 'clickhouse://u@127.0.0.1:$CLOSED/x': "
python3 - "$FAKE" >"$T/fake.log" 2>&1 <<'PY' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if b"truncated" in body or "truncated" in self.path:
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"1\n")
            self.wfile.flush()
            self.close_connection = True
        else:
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"Code: 999, e.displayText() = DB::Exception: disk on fire\n")
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
PIDS="$PIDS $!"
i=0
until curl -s -o /dev/null "http://127.0.0.1:$FAKE/"; do
	i=$((i + 1)); [ $i -lt 1200 ] || fail "fake server did not start"; sleep 0.05
done
expect_status 1 mt push "$T/g.db" "clickhouse://127.0.0.1:$FAKE/fire"
expect_grep "$T/err" "^moetrace push: 'clickhouse://127.0.0.1:$FAKE/fire' answered HTTP 500: Code: 999, e.displayText\(\) = DB::Exception: disk on fire"
expect_status 1 mt push "$T/g.db" "clickhouse://127.0.0.1:$FAKE/truncated"
expect_grep "$T/err" "^moetrace push: cannot reach 'clickhouse://127.0.0.1:$FAKE/truncated': .*(transfer closed|outstanding)"
same_file "$T/g.db" "$T/g.orig"
[ "$(ls "$T" | grep -c '^g\.db')" = 1 ] || fail "push wrote files beside the trace"
exit 0
