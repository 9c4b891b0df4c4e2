#!/bin/sh
# The flagship's decision as `place` makes it by default: 58 x 256 at
# 64 x 5, the window's blocks and four window lengths of history, the
# estimator chosen on every layer, two threads.  MOETRACE_PEER=BIN times an
# older build in the same run, run after run, so that both see the same
# machine load; MOETRACE_PEER_NAME names it.
set -eu
. "$(dirname "$0")/lib.sh"
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
"$MOETRACE" gen --model deepseek-v3 --steps 2000 --seed 11 -q "$d/t.db"
"$MOETRACE" place "$d/t.db" --steps 800:999 -o "$d/prev.json" >/dev/null
peer=${MOETRACE_PEER:-}
name=${MOETRACE_PEER_NAME:-peer}
load0=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')
runs=9
# secs BIN CURRENT: the algorithm's seconds of one decision (place --json)
secs() {
	v=$("$1" place "$d/t.db" --steps 1000:1199 --current "$2" --json |
		sed -n 's/^{"algorithm":"[a-z]*","seconds":\([0-9.e-]*\),.*/\1/p')
	[ -n "$v" ] || { echo "bench_place_decision: no seconds from $1 place --json" >&2; exit 1; }
	echo "$v"
}
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "## The flagship's decision time (moetrace place)"
echo
echo "\`moetrace place DB --steps 1000:1199 --current C\` on \`moetrace gen --model deepseek-v3"
echo "--steps 2000 --seed 11\` (58 layers x 256 experts at 64 x 5): the flagship as \`place\` runs it"
echo "without options, on the window's 32 blocks and 128 blocks of history, its estimator chosen"
echo "on every layer, two threads; ms = the algorithm's time (\`seconds\` of \`--json\`: the choice"
echo "and every layer's fit, not the reading), median of $runs runs. C = \`static\`: a first"
echo "rebalance from the engines' layout; C = the placement \`place\` wrote for steps 800-999: the"
echo "next rebalance of a deployment that re-places every 200 steps."
if [ -n "$peer" ]; then
	echo "$name is run in the same session, run after run with this build."
fi
echo
if [ -n "$peer" ]; then
	echo "| placement in force | ms | $name ms | ratio |"
	echo "|---|---:|---:|---:|"
else
	echo "| placement in force | ms |"
	echo "|---|---:|"
fi
for c in static prev; do
	cur=$c label="the static layout"
	[ $c = prev ] && cur="$d/prev.json" label="the window before's placement"
	: >"$d/a"; : >"$d/b"
	i=0
	while [ $i -lt $runs ]; do
		secs "$MOETRACE" "$cur" >>"$d/a"
		[ -n "$peer" ] && secs "$peer" "$cur" >>"$d/b"
		i=$((i + 1))
	done
	a=$(median <"$d/a")
	ms=$(awk -v x="$a" 'BEGIN { printf "%.1f", x * 1000 }')
	if [ -n "$peer" ]; then
		b=$(median <"$d/b")
		pm=$(awk -v x="$b" 'BEGIN { printf "%.1f", x * 1000 }')
		echo "| $label | $ms | $pm | $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }') |"
	else
		echo "| $label | $ms |"
	fi
done
echo
echo "Budget (DESIGN.md): <= 50 ms for 58 x 256 at 64 x 5. Load average $load0 at the start,"
echo "$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?') at the end, on $(nproc) cores; this machine's speed"
echo "varies by a third between runs, so the ratio to the peer, run after run, is the steadier figure."
