#!/bin/sh
# moetrace info on a 1 GB trace database.
set -eu
. "$(dirname "$0")/lib.sh"
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
steps=$("$MOETRACE_BENCH_BIN/bench_info" "$d/big.db" 1000 | cut -d' ' -f1)
sqlite3 "$d/big.db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
size=$(stat -c %s "$d/big.db")
run() { "$MOETRACE" info "$d/big.db" >/dev/null; }
t=$(median_time 7 run)
echo "## info latency"
echo
echo "\`moetrace info\` on a $(awk -v s="$size" 'BEGIN{printf "%.2f", s/1e9}') GB trace ($steps DeepSeek-V3-shaped steps, 58 x 256):"
echo "$(awk -v t="$t" 'BEGIN{printf "%.1f", t*1000}') ms, whole process, median of 7 (warm page cache). It reads only the"
echo "per-step table (steps.bytes keeps each step's encoded size), never the counts."
