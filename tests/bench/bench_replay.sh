#!/bin/sh
# Replay of 10,000 DeepSeek-V3 steps (58 x 256, 64 x 5) with 11 rebalances,
# and a 12-setting grid over the same trace.  MOETRACE_PEER=BIN times a
# second moetrace (an older build) in the same run, row after row, so the
# two are compared on the same machine load; MOETRACE_PEER_NAME names it.
set -eu
. "$(dirname "$0")/lib.sh"
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
"$MOETRACE" gen --model deepseek-v3 --steps 10000 --seed 11 "$d/t.db" >/dev/null
peer=${MOETRACE_PEER:-}
load0=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')
grid="algos=eplb redundant=64,128 interval=600,900,1200 pay=no,yes"

# CPU seconds (user + system) of the shell's finished children, from the
# output of `times` (which must run in this shell, not a subshell).
child_cpu() {
	awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); t += a[1] * 60 + a[2] } printf "%.6f\n", t }' "$1"
}
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# timed N cmd...: "WALL CPU", each the median of N runs (CPU: of the process
# and all its threads).
timed() {
	n=$1; shift
	i=0; : >"$d/w"; : >"$d/c"
	while [ $i -lt "$n" ]; do
		times >"$d/t0"; s=$(date +%s.%N)
		"$@"
		e=$(date +%s.%N); times >"$d/t1"
		c0=$(child_cpu "$d/t0"); c1=$(child_cpu "$d/t1")
		awk -v a="$s" -v b="$e" 'BEGIN { printf "%.6f\n", b - a }' >>"$d/w"
		awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.6f\n", b - a }' >>"$d/c"
		i=$((i + 1))
	done
	echo "$(median <"$d/w") $(median <"$d/c")"
}
field() { sed -n "s/.*\"$1\": \\([0-9.]*\\).*/\\1/p" "$d/out.json" | head -1; }
# row BIN LABEL ALGO STORE [FLAGS]: one replay, timed
row() {
	bin=$1 label=$2 algo=$3 store=$4; shift 4
	flag=--no-store; [ "$store" = yes ] && flag=
	run() {
		"$bin" replay "$d/t.db" --algo "$algo" --interval 900 --window 900 --delay 50 $flag "$@" \
			--json >"$d/out.json"
	}
	set -- $(timed 3 run "$@")
	t=$1 c=$2
	im=$(sed -n 's/.*"imbalance_mean": \([0-9.]*\), "baseline_imbalance_mean": \([0-9.]*\).*/\1 (\2)/p' "$d/out.json" | head -1)
	mv=$(sed -n 's/.*"events": [0-9]*, "moves": \([0-9]*\).*/\1/p' "$d/out.json" | head -1)
	echo "| $label | $(fmt3 "$t") | $(fmt3 "$c") | $(fmt3 "$(field algo_seconds)") | $im | $mv |"
	echo "$t" >"$d/last"
}

echo "## Replay: rebalancing over a recorded run"
echo
echo "\`moetrace replay\` over a 10,000-step DeepSeek-V3 trace from \`moetrace gen\` (58 layers x 256"
echo "experts, 64 ranks x 5 slots), every 900 steps on a window of 900, effect 50 steps later:"
echo "11 rebalances. Whole process, median of 3 runs, wall and CPU seconds (user + system, all"
echo "threads); \`--no-store\` scores only, the default also writes the 580,000 per-step per-layer"
echo "rows. Budget (DESIGN.md): 0.5 s using both cores; a 12-setting grid reads the trace once"
echo "and takes at most 3x one replay. Every row uses the replay's defaults: eplb is given the"
echo "window as 16 episodes (ANALYZE_REPLAY_EPISODES), keel the window's blocks and up to 4 windows"
echo "of history before it, from which it fits its forecast (docs/replay.md)."
if [ -n "$peer" ]; then
	echo "Rows marked *peer* run an older build, ${MOETRACE_PEER_NAME:-\`$(basename "$peer")\`}, in the same run."
fi
echo
echo "| algorithm, stored | wall | CPU | of which algorithm | mean imbalance (baseline) | copies |"
echo "|---|---|---|---|---|---|"
for algo in eplb keel; do
	"$MOETRACE" place --list 2>/dev/null | grep -q "^ *$algo" || continue
	for store in no yes; do
		row "$MOETRACE" "$algo, $store" $algo $store
		[ "$algo" = eplb ] && [ $store = no ] && cp "$d/last" "$d/one.new"
		if [ -n "$peer" ]; then
			row "$peer" "*peer* $algo, $store" $algo $store
			[ "$algo" = eplb ] && [ $store = no ] && cp "$d/last" "$d/one.peer"
		fi
	done
done
# only the moves that pay for their transfer (docs/replay.md)
row "$MOETRACE" "keel --pay, no" keel no --pay
[ -n "$peer" ] && row "$peer" "*peer* keel --pay, no" keel no --pay
echo
echo "The grid \`--grid $grid\` (12 settings, stored nothing) against one replay"
echo "of the same binary (eplb, not stored, above):"
echo
echo "| grid | wall | CPU | wall / one replay |"
echo "|---|---|---|---|"
for bin in "$MOETRACE" $peer; do
	run() { "$bin" replay "$d/t.db" --grid $grid --format csv >"$d/grid.csv"; }
	set -- $(timed 3 run)
	label=moetrace one=new; [ "$bin" != "$MOETRACE" ] && label="*peer*" one=peer
	echo "| $label | $(fmt3 "$1") | $(fmt3 "$2") | $(ratio "$1" "$(cat "$d/one.$one")") |"
	[ "$bin" = "$MOETRACE" ] && echo "$1" >"$d/grid.new"
done
echo
one=$(cat "$d/one.new") g=$(cat "$d/grid.new")
met() { awk -v a="$1" -v b="$2" 'BEGIN { print (a <= b ? "met" : "not met") }'; }
echo "Budget: one replay $(fmt3 "$one") s against 0.5 s, $(met "$one" 0.5); the grid $(ratio "$g" "$one")x"
echo "one replay against 3x, $(met "$g" "$(awk -v a="$one" 'BEGIN { print 3 * a }')"). Load average $load0 at the start,"
load1=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')
# the wall times say little when other work had the cores
busy=$(awk -v a="$load0" -v b="$load1" -v n="$(nproc)" 'BEGIN { print (a + 0 > n || b + 0 > n) }')
if [ "$busy" = 1 ]; then
	echo "$load1 at the end, on $(nproc) cores: above $(nproc), other work shared the cores and the"
	echo "wall times are longer than on an idle machine; CPU seconds and the ratios to the peer, measured"
else
	echo "$load1 at the end, on $(nproc) cores. CPU seconds and the ratios to the peer, measured"
fi
echo "row after row, are the steadier figures. docs/replay.md (\"Threads\") says where the time goes."
