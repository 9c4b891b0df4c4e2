#!/bin/sh
# Rollup ingest for D simulated deployments on one core: a clickhouse-server
# pinned to core 0 (taskset) takes, from tests/bench/rollup_load.py pinned
# to core 1, the rows of D deployments of DeepSeek-V3 (58 x 256) stepping
# 10 times a second, each shipping every PERIOD seconds the rollups of N
# steps it made (N = 1: every step, full resolution).  Measured: the
# server's CPU (utime + stime, every thread) per second of load, and per
# send from the load's start until its merges are done; from that, the
# deployments one core serves.  About 5 minutes (7 on a loaded machine).
set -u
. "$(dirname "$0")/lib.sh"
echo "## ClickHouse rollup ingest on one core"
echo
if ! command -v clickhouse-server >/dev/null || ! command -v taskset >/dev/null; then
	echo "clickhouse-server/taskset not installed (make deps-test): not measured."
	exit 0
fi
if [ "$(nproc)" -lt 2 ]; then
	echo "needs 2 cores (one for the server, one for the load): not measured."
	exit 0
fi
bench_ch_start taskset -c 0
q() { curl -sS --fail --data-binary "$2" "http://127.0.0.1:$H/?database=$1"; }
cpu() { awk '{ print $14 + $15 }' "/proc/$srv/stat"; }
hz=$(getconf CLK_TCK)
# quiet: waits (60 s at most) until the server uses under 3% of a core
quiet() {
	i=0
	while [ $i -lt 30 ]; do
		a=$(cpu); sleep 2; b=$(cpu)
		[ $((b - a)) -lt $((hz * 6 / 100)) ] && return
		i=$((i + 1))
	done
}
"$MOETRACE" gen --model deepseek-v3 --steps 100 --seed 1 -q "$d/t.db"
"$MOETRACE" gen --model deepseek-v3 --steps 1 --seed 2 -q "$d/one.db"
"$MOETRACE" push "$d/t.db" "clickhouse://127.0.0.1:$H/src" --deployment d0 >/dev/null
q src "SELECT step, layer, counts FROM counts ORDER BY step, layer FORMAT TSV" >"$d/counts.tsv"
SECS=30 WARM=5
# row N DEPLOYMENTS PERIOD: one load into a fresh database (schema made by
# moetrace push, default rollup), one table row
row() {
	db=r_$1_$2_$3
	"$MOETRACE" push "$d/one.db" "clickhouse://127.0.0.1:$H/$db" --deployment init >/dev/null
	quiet
	c0=$(cpu)
	set -- "$1" "$2" "$3" $(taskset -c 1 python3 "$(dirname "$0")/rollup_load.py" "$H" "$db" \
		"$d/counts.tsv" "$1" "$2" "$3" $SECS $WARM "$srv")
	quiet
	c1=$(cpu)
	# $4 window CPU s, $5 due in it, $6 of those done, $7 done in all, $8 late, $9 failed
	awk -v n="$1" -v dep="$2" -v p="$3" -v wc="$4" -v due="$5" -v made="$6" -v all="$7" \
		-v late="$8" -v failed="$9" -v tc="$(((c1 - c0)))" -v hz="$hz" -v secs=$SECS 'BEGIN {
		per = tc / hz / all
		printf "| %s | %d | %d s | %d | %.2f | %d / %d | %d / %d | %.1f | %.0f |\n",
			n == 1 ? "1 (full)" : n, dep, p, 580 * p / n, wc / secs, made, due, late, failed,
			per * 1000, p / per }'
	q default "DROP DATABASE $db" >/dev/null
}
echo "\`sh tests/bench/run.sh rollup\`: clickhouse-server $(q default "SELECT version()") pinned to one core"
echo "(\`taskset -c 0\`), the load ($(basename "$0" .sh)'s rollup_load.py) on the other. Each deployment"
echo "(DeepSeek-V3, 58 x 256, 10 steps/s) ships every PERIOD seconds its rollups of N steps made since:"
echo "one row per layer and N steps with the layer's summed counts, in RowBinary over HTTP into"
echo "\`counts\`, then the \`steps\` rows that commit them, as \`moetrace push\` does (the rollup view"
echo "of the schema runs on them too). Sends are spread evenly over the period. ${SECS} s measured"
echo "after ${WARM} s of warm-up. *CPU/s*: the server's CPU seconds per second in those ${SECS} s (1.00 ="
echo "the whole core). *ms/send*: the server's CPU from the load's start until its merges were"
echo "done, per send (an INSERT into counts and one into steps). *deployments/core*: PERIOD /"
echo "(ms/send), the deployments whose sends take one core."
echo
echo "| N | deployments | period | rows/send | CPU/s | sends done / due | late / failed | ms/send | deployments/core |"
echo "|---|---|---|---|---|---|---|---|---|"
row 1 20 10
row 10 100 10
row 100 300 10
row 100 300 30
echo
echo "Load average during the run: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores, shared)."
