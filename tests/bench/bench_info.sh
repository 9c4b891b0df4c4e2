#!/bin/sh
# moetrace info on a 1 GB trace database, against the sqlite3 shell reading
# the same per-step table (the floor: open, parse the schema, one query).
set -eu
. "$(dirname "$0")/lib.sh"
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
steps=$("$MOETRACE_BENCH_BIN/bench_info" "$d/big.db" 1000 | cut -d' ' -f1)
sqlite3 "$d/big.db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
size=$(stat -c %s "$d/big.db")
run() { "$MOETRACE" info "$d/big.db" >/dev/null; }
peer() { sqlite3 "$d/big.db" "SELECT run, count(*), min(step), max(step), sum(bytes) FROM steps GROUP BY run" >/dev/null; }
t=$(median_time 9 run)
p=$(median_time 9 peer)
echo "## info latency"
echo
echo "\`moetrace info\` on a $(awk -v s="$size" 'BEGIN{printf "%.2f", s/1e9}') GB trace ($steps DeepSeek-V3-shaped steps, 58 x 256),"
echo "against the \`sqlite3\` shell ($(sqlite3 --version | cut -d' ' -f1)) reading the same per-step table in one query (runs, step"
echo "count and range, bytes): whole process, median of 9 each, warm page cache. info reads the"
echo "per-step table (steps.bytes keeps each step's encoded size), counts the counts rows to report"
echo "missing ones (their index, not one blob decoded) and checks the file's tables against the"
echo "columns its schema version promises."
echo
echo "| program | ms |"
echo "|---|---:|"
echo "| moetrace info | $(awk -v t="$t" 'BEGIN{printf "%.1f", t*1000}') |"
echo "| sqlite3 (peer) | $(awk -v t="$p" 'BEGIN{printf "%.1f", t*1000}') |"
echo "| ratio | $(ratio "$t" "$p")x |"
