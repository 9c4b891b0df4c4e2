#!/bin/sh
# Reading traces from ClickHouse: a trace pushed to a real server (started
# here from a config under $T, stopped by PID on exit) and read back through
# clickhouse://HOST:PORT/DB?deployment=NAME&run=ID gives every analysing
# command the output it gives from the SQLite file, to the last digit (the
# printed algorithm times aside): info, balance, compare, place, replay (a grid too),
# report, render, top, serve, export.  A deployment pushed further is followed by
# top.  Bad URLs, an unreachable or failing server, a wrong database, a
# schema that is not moetrace's, refused credentials and writing commands
# fail with a message naming the URL without its password: exit 2 for the
# user's mistakes, 1 for the server's.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ch.sh"

# shellcheck disable=SC2046
set -- $(ch_ports 5)
HTTP=$1 TCP=$2 ISRV=$3 FAKE=$4 CLOSED=$5
ch_config "$T/ch" "$HTTP" "$TCP" "$ISRV"
ch_start "$T/ch" "$HTTP"
URL="clickhouse://127.0.0.1:$HTTP"

# a trace of two runs: a generated one whose deployed placement changes at
# step 150 (static, then experts in reverse order), and an imported one
# run under an engine's expert map
expect_status 0 mt gen --model mixtral-8x7b --steps 300 --seed 4 --ranks 4 --slots 3 --run gen \
	-q "$T/t.db"
expect_status 0 mt sql --write "$T/t.db" "INSERT INTO deployed
	WITH RECURSIVE l(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM l WHERE x < 31)
	SELECT 1, 0, x, 4, 3, static_phy2log(8, 4, 3) FROM l UNION ALL
	SELECT 1, 150, x, 4, 3, X'070000000600000005000000040000000300000002000000010000000000000000000000010000000200000003000000' FROM l"
expect_status 0 mt import "$(dirname "$0")/../data/jsonl/heat.jsonl" --into "$T/t.db" --run dep \
	--deployed "$(dirname "$0")/../data/deployed/expert_map.json"
expect_status 0 mt push "$T/t.db" "$URL/fleet" --deployment d1
cp "$T/t.db" "$T/t.orig"

# norm FILE: the output without what differs between any two runs (the
# algorithms' wall-clock times, top's seconds since the last step)
norm() {
	sed -E -e 's/[0-9]+(\.[0-9]+)? (us|ms)/T/g' -e 's/"since_last_data_s": [0-9.]+/S/' "$1" |
		awk '$1 ~ /^(static|eplb|eplb-hier|flashlb|swift|keel|exact)$/ && NF >= 13 { $11 = "T" } { print }'
}
# same NAME RUN ARGS...: `mt ARGS...` with % replaced by the trace, from the
# file (--run RUN) and from the server (?run=RUN), prints the same; @ in
# ARGS is replaced by the side's name ("file", "url") for output paths
same() {
	name=$1 run=$2
	shift 2
	for side in file url; do
		if [ $side = file ]; then src="--run $run $T/t.db"; else
			src="$URL/fleet?deployment=d1&run=$run"
		fi
		args=""
		for a in "$@"; do
			case $a in %) args="$args $src" ;; *) args="$args $(printf '%s' "$a" | sed "s|@|$T/$side|g")" ;; esac
		done
		# shellcheck disable=SC2086
		mt $args >"$T/$name.$side.raw" 2>&1 ||
			{ cat "$T/$name.$side.raw" >&2; fail "$name from the $side failed"; }
		norm "$T/$name.$side.raw" | sed "s|$T/$side|OUT|g" >"$T/$name.$side"
	done
	diff "$T/$name.file" "$T/$name.url" >&2 || fail "$name: the server's output differs from the file's"
}
same balance gen balance %
same balance-decode gen balance --phase decode %
same balance-dep dep balance %
same compare gen compare %
same place gen place %
same place-engine gen place --format vllm-ascend -o @.place.json %
same_file "$T/file.place.json" "$T/url.place.json"
same replay gen replay --no-store %
same replay-dep dep replay --no-store %
same replay-grid gen replay --grid % algos=eplb,keel interval=50,100
same top gen top --snapshot %
same top-layer gen top --snapshot --layer 5 %
same serve gen serve --once %
same export gen export % --format csv -o @.csv
same_file "$T/file.csv" "$T/url.csv"
for kind in heatmap timeline devices imbalance; do
	same "render-$kind" gen render -o "@.$kind.svg" % "$kind"
	same_file "$T/file.$kind.svg" "$T/url.$kind.svg"
done
same render-layer gen render -o @.tl3.svg --layer 3 --phase decode % timeline
same_file "$T/file.tl3.svg" "$T/url.tl3.svg"
same render-imb-layer gen render -o @.im2.svg --layer 2 % imbalance
same_file "$T/file.im2.svg" "$T/url.im2.svg"
same report gen report -o @.report %
for f in "$T"/file.report/*; do
	same_file "$f" "$T/url.report/$(basename "$f")"
done
# info: the same runs and figures; the server names no file size, and
# keeps a layer's counts compressed by parts, not per run
expect_status 0 mt info "$T/t.db"
tail -n +2 "$T/out" | grep -v '^  storage' >"$T/info.file"
expect_status 0 mt info "$URL/fleet?deployment=d1"
expect_grep "$T/out" "^$URL/fleet\?deployment=d1: moetrace trace on a server, 2 runs$"
expect_grep "$T/out" "^  storage    on the server$"
tail -n +2 "$T/out" | grep -v '^  storage' >"$T/info.url"
diff "$T/info.file" "$T/info.url" >&2 || fail "info: the server's runs differ from the file's"
# a run by name; the URL's run is the command's default run
expect_status 0 mt balance --run dep "$URL/fleet?deployment=d1"
cp "$T/out" "$T/dep.byname"
expect_status 0 mt balance "$URL/fleet?deployment=d1&run=dep"
same_file "$T/out" "$T/dep.byname"
expect_status 0 mt balance "$T/t.db" --run dep
same_file "$T/out" "$T/dep.byname"
# credentials from the environment, or in the URL (%-encoded)
expect_status 0 env CLICKHOUSE_USER=reader CLICKHOUSE_PASSWORD=s3cretpw \
	"$MOETRACE" balance "$URL/fleet?deployment=d1&run=dep"
same_file "$T/out" "$T/dep.byname"
expect_status 0 mt balance "clickhouse://reader:s3cret%70w@127.0.0.1:$HTTP/fleet?deployment=d1&run=dep"
same_file "$T/out" "$T/dep.byname"

# top follows a deployment: steps pushed later are read at the next poll
expect_status 0 mt gen --model mixtral-8x7b --steps 100 --seed 9 --run live -q "$T/a.db"
expect_status 0 mt gen --model mixtral-8x7b --steps 200 --seed 9 --run live -q "$T/b.db"
expect_status 0 mt push "$T/a.db" "$URL/fleet" --deployment live
expect_status 0 mt top --snapshot "$URL/fleet?deployment=live"
expect_grep "$T/out" '"last_step": 99, "steps": 100,'
expect_status 0 mt push "$T/b.db" "$URL/fleet" --deployment live
expect_status 0 mt top --snapshot "$URL/fleet?deployment=live"
norm "$T/out" >"$T/live.url"
expect_grep "$T/live.url" '"last_step": 199, "steps": 200,'
expect_status 0 mt top --snapshot "$T/b.db"
norm "$T/out" >"$T/live.file"
diff "$T/live.file" "$T/live.url" >&2 || fail "top: the pushed-later steps differ from the file's"

# ---- the user's mistakes: exit 2, the URL named without its password
expect_status 2 mt balance "clickhouse://127.0.0.1/fleet"
expect_grep "$T/err" "^moetrace balance: malformed ClickHouse URL: expected HOST:PORT"
expect_status 2 mt balance "$URL/fleet?deployment=d1&color=red"
expect_grep "$T/err" "parameter 'color' is not deployment=NAME or run=ID"
expect_status 2 mt balance "$URL/nosuch"
expect_grep "$T/err" "^moetrace balance: '$URL/nosuch': the server has no database 'nosuch'$"
curl -sS --fail --data-binary "CREATE DATABASE other" "http://127.0.0.1:$HTTP/" >/dev/null
curl -sS --fail --data-binary "CREATE TABLE other.t (x UInt8) ENGINE = TinyLog" \
	"http://127.0.0.1:$HTTP/" >/dev/null
expect_status 2 mt compare "$URL/other"
expect_grep "$T/err" "^moetrace compare: '$URL/other' is not a moetrace schema: no table moetrace_meta$"
expect_status 2 mt info "$URL/fleet"
expect_grep "$T/err" "'$URL/fleet' holds several deployments \('d1', 'live'\): name one with \?deployment=NAME"
expect_status 2 mt info "$URL/fleet?deployment=d9"
expect_grep "$T/err" "no deployment 'd9' on the server"
expect_status 2 mt balance "$URL/fleet?deployment=d1&run=nope"
expect_grep "$T/err" "^moetrace balance: no run named 'nope' in '$URL/fleet\?deployment=d1&run=nope'$"
expect_status 2 mt balance "clickhouse://reader:wrongpw@127.0.0.1:$HTTP/fleet?deployment=d1"
expect_grep "$T/err" "^moetrace balance: 'clickhouse://reader@127.0.0.1:$HTTP/fleet\?deployment=d1' refused the credentials"
expect_status 2 env CLICKHOUSE_USER=reader CLICKHOUSE_PASSWORD=wrongpw \
	"$MOETRACE" balance "$URL/fleet?deployment=d1"
expect_nogrep "$T/err" "wrongpw"
expect_status 2 mt info "xyz://127.0.0.1/fleet"
expect_grep "$T/err" "reads no xyz URLs"
# writing commands refuse a server's trace
expect_status 2 mt replay "$URL/fleet?deployment=d1&run=gen"
expect_grep "$T/err" "^moetrace replay: cannot write to '$URL/fleet\?deployment=d1&run=gen': .*--no-store"
expect_status 2 mt gen --steps 5 -q "$URL/fleet"
expect_grep "$T/err" "cannot write to '$URL/fleet'"
expect_status 2 mt import "$(dirname "$0")/../data/jsonl/heat.jsonl" --into "$URL/fleet"
expect_grep "$T/err" "cannot write to '$URL/fleet'"

# ---- the server's failures: exit 1
expect_status 1 mt balance "clickhouse://reader:s3cretpw@127.0.0.1:$CLOSED/fleet"
expect_grep "$T/err" "^moetrace balance: cannot reach 'clickhouse://reader@127.0.0.1:$CLOSED/fleet': "
expect_nogrep "$T/err" "s3cretpw"
python3 - "$FAKE" >"$T/fake.log" 2>&1 <<'PY' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if b"garbage" in body or "garbage" in self.path:
            # plausible to the schema checks, then not RowBinary
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"1\n")
        elif b"truncated" in body or "truncated" in self.path:
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
	i=$((i + 1)); [ $i -lt 100 ] || fail "fake server did not start"; sleep 0.05
done
expect_status 1 mt balance "clickhouse://127.0.0.1:$FAKE/fire"
expect_grep "$T/err" "^moetrace balance: 'clickhouse://127.0.0.1:$FAKE/fire' answered HTTP 500: Code: 999"
expect_status 1 mt balance "clickhouse://127.0.0.1:$FAKE/truncated"
expect_grep "$T/err" "^moetrace balance: cannot reach 'clickhouse://127.0.0.1:$FAKE/truncated': "
expect_status 1 mt balance "clickhouse://127.0.0.1:$FAKE/garbage"
expect_grep "$T/err" "^moetrace balance: 'clickhouse://127.0.0.1:$FAKE/garbage' sent a malformed or truncated answer$"
# a phase ClickHouse's UInt8 holds but a trace does not is refused, as it
# is in a damaged SQLite file (tests/cli/0936), not read as unknown
expect_status 0 mt gen --model mixtral-8x7b --steps 10 --seed 2 --run bad -q "$T/bad.db"
expect_status 0 mt push "$T/bad.db" "$URL/fleet" --deployment bad
ch_q "$HTTP" fleet "ALTER TABLE steps UPDATE phase = 7 WHERE deployment = 'bad' AND step = 3" \
	>/dev/null || fail "could not damage the pushed steps"
# a mutation runs in the background (this server's version has no
# mutations_sync)
damaged() { [ "$(ch_q "$HTTP" fleet "SELECT phase FROM steps WHERE deployment = 'bad' AND step = 3")" = 7 ]; }
wait_until 30 damaged || fail "the pushed step's phase did not change"
expect_status 2 mt balance "$URL/fleet?deployment=bad"
expect_grep "$T/err" "step 3: phase 7 in '.*' is not 0 \(unknown\), 1 \(prefill\) or 2 \(decode\)$"
same_file "$T/t.db" "$T/t.orig"
exit 0
