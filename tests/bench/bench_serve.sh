#!/bin/sh
# moetrace serve on a DeepSeek-V3-shaped trace (58 layers x 256 experts,
# 64 ranks x 5 slots, 2000 steps): the cold exposition (--once: read every
# step, fit every layer) beside `top --snapshot` doing the same view work,
# and a steady-state scrape of a running server (GET /metrics, nothing new
# to read: the cost Prometheus pays every scrape interval).
set -u
. "$(dirname "$0")/lib.sh"
echo "## Prometheus metrics (moetrace serve)"
echo
d=$(mktemp -d)
srv=""
trap '[ -n "$srv" ] && kill "$srv" 2>/dev/null; rm -rf "$d"' EXIT
"$MOETRACE" gen --model deepseek-v3 --steps 2000 --seed 7 -q "$d/t.db"
once=$(median_time 5 sh -c "\"$MOETRACE\" serve --once \"$d/t.db\" >\"$d/m\"")
snap=$(median_time 5 sh -c "\"$MOETRACE\" top --snapshot \"$d/t.db\" >/dev/null")
series=$(grep -vc '^#' "$d/m")
bytes=$(wc -c <"$d/m")
"$MOETRACE" serve --listen 127.0.0.1:0 "$d/t.db" >"$d/serve.out" 2>&1 &
srv=$!
i=0
until port=$(sed -n 's/.*(port \([0-9]*\))$/\1/p' "$d/serve.out") && [ -n "$port" ]; do
	i=$((i + 1)); [ $i -lt 100 ] || break
	sleep 0.1
done
scrape=$(python3 - "http://127.0.0.1:$port/metrics" <<'PY'
import statistics, sys, time, urllib.request
url = sys.argv[1]
urllib.request.urlopen(url, timeout=60).read()   # the cold scrape
ts = []
for _ in range(21):
    t = time.perf_counter()
    urllib.request.urlopen(url, timeout=60).read()
    ts.append(time.perf_counter() - t)
print("%.6f" % statistics.median(ts))
PY
)
echo "Trace: \`moetrace gen --model deepseek-v3 --steps 2000\` (58 x 256, 64 ranks x 5 slots),"
echo "default flagship algorithm and window (256 steps). $series series, $bytes bytes per scrape."
echo
echo "| what | median seconds | vs top --snapshot |"
echo "|---|---:|---:|"
echo "| \`moetrace top --snapshot\` (peer: the same view, as JSON) | $(fmt3 "$snap") | 1.0 |"
echo "| \`moetrace serve --once\` (cold: reads 2000 steps, fits 58 layers) | $(fmt3 "$once") | $(ratio "$once" "$snap") |"
echo "| GET /metrics on a running server, nothing new (median of 21) | $(fmt3 "$scrape") | $(awk -v a="$scrape" -v b="$snap" 'BEGIN { printf "%.3f", a / b }') |"
echo
echo "A scrape reads only the steps recorded since the last one and refits a layer only when"
echo "the window has moved by a quarter, so the steady-state cost is formatting the text."
