# Helpers for the tests that scrape moetrace with a real Prometheus server:
# sourced after lib.sh.  Every process started is added to $pids and
# stopped by PID on exit, also on failure.
command -v promtool >/dev/null && command -v prometheus >/dev/null ||
	fail "needs Debian's prometheus package (make deps-test)"
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null; done; for p in $pids; do wait "$p" 2>/dev/null; done; rm -rf "$T"; }
trap cleanup EXIT
trap 'cleanup; exit 1' INT TERM

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# http METHOD URL: the status on the first line, then the body
http() { python3 - "$@" <<'PY'
import sys, urllib.request, urllib.error
method, url = sys.argv[1], sys.argv[2]
try:
    r = urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=30)
    print(r.status); sys.stdout.write(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code)
    if e.headers.get("Allow"):
        print("Allow: " + e.headers["Allow"])
PY
}
# wait_port FILE: the port a server printed as "(port N)" into FILE
wait_port() {
	i=0
	until port=$(sed -n 's/.*(port \([0-9]*\))$/\1/p' "$1") && [ -n "$port" ]; do
		i=$((i + 1)); [ $i -lt 600 ] || { cat "$1"; fail "no port printed in $1"; }
		sleep 0.1
	done
	echo "$port"
}
# start_prometheus TARGET_PORT: a server scraping 127.0.0.1:TARGET_PORT every
# second, ready; sets $pport
start_prometheus() {
	pport=$(free_port)
	cat >"$T/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: moetrace
    static_configs:
      - targets: ['127.0.0.1:$1']
YML
	prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prom" \
		--web.listen-address="127.0.0.1:$pport" >"$T/prom.log" 2>&1 &
	pids="$pids $!"
	i=0
	until [ "$(http GET "http://127.0.0.1:$pport/-/ready" 2>/dev/null | head -n 1)" = 200 ]; do
		i=$((i + 1)); [ $i -lt 600 ] || { tail -n 20 "$T/prom.log"; fail "prometheus not ready"; }
		sleep 0.1
	done
}
# query PROMQL [TIME]: the first sample's value (at TIME, unix seconds), or nothing yet
query() {
	python3 - "http://127.0.0.1:$pport/api/v1/query" "$@" <<'PY'
import json, sys, urllib.parse, urllib.request
q = {"query": sys.argv[2]}
if len(sys.argv) > 3:
    q["time"] = sys.argv[3]
r = json.load(urllib.request.urlopen(sys.argv[1] + "?" + urllib.parse.urlencode(q), timeout=10))
res = r["data"]["result"]
if res:
    print(res[0]["value"][1])
PY
}
# metric FILE NAME{LABELS}: the value of one sample of an exposition
metric() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }
