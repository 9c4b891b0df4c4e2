#!/bin/sh
# SQL: full-trace aggregation of 10,000 DeepSeek-V3-shaped steps through the
# moetrace views, in C, and through a plain row-per-cell table (size, time).
set -eu
bin="$MOETRACE_BENCH_BIN/bench_sql"
if [ ! -x "$bin" ]; then
	echo "## SQL queries"
	echo
	echo "skipped: $bin not built (make bench-build)"
	exit 0
fi
"$bin" --steps 10000
