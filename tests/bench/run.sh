#!/bin/sh
# make bench: runs every tests/bench/bench_*.sh (each prints a markdown
# section to stdout) and writes BENCHMARKS.md from them, in name order.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
export MOETRACE="$top/moetrace" MOETRACE_TOP="$top"
export MOETRACE_BENCH_BIN="$top/${MOETRACE_REL:-build/rel}/bench"
export MOETRACE_SHARED="${MOETRACE_SHARED:-$top/../shared}"
only=${1:-}
out=$(mktemp)
{
	echo "# moetrace benchmarks"
	echo
	echo "Written by \`make bench\` on $(date -u +%Y-%m-%d), $(nproc) cores,"
	echo "$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'). Times are medians of several runs;"
	echo "peers are run in the same session where they are available here, otherwise quoted"
	echo "from DESIGN.md (measured on this machine class) and marked so."
	echo
} >"$out"
status=0
for b in tests/bench/bench_*.sh; do
	[ -f "$b" ] || continue
	case "$b" in *"$only"*) ;; *) continue ;; esac
	echo "running $b" >&2
	if ! sh "$b" >>"$out"; then
		echo "bench $b failed" >&2
		status=1
	fi
	echo >>"$out"
done
if [ -z "$only" ]; then
	mv "$out" BENCHMARKS.md
	echo "wrote BENCHMARKS.md" >&2
else
	cat "$out"
	rm -f "$out"
fi
exit $status
