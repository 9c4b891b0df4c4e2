#!/bin/sh
# Heatmap of a 58 x 256 trace, whole process: `moetrace render DB heatmap`
# (reads the trace, sums the steps, draws, writes the PNG) against the same
# chart drawn by matplotlib (scripts/heatmap_matplotlib.py, Agg + imshow +
# colorbar) from the already summed 58 x 256 matrix.
set -eu
. "$(dirname "$0")/lib.sh"
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
steps=100
echo "## Render: heatmap of 58 x 256"
echo
"$MOETRACE" gen --model deepseek-v3 --steps $steps --seed 7 -q "$d/t.db" >/dev/null
ours() { "$MOETRACE" render "$d/t.db" heatmap -o "$d/ours.png" >/dev/null; }
t_ours=$(median_time 9 ours)
# CPU seconds (user + sys) of one run: less sensitive than wall time to
# other work on the machine
cpu() { # cmd...: median over 5 runs
	if [ -x /usr/bin/time ]; then
		for i in 1 2 3 4 5; do /usr/bin/time -f "%U %S" "$@" 2>&1 >/dev/null | tail -n 1; done |
			awk '{ print $1 + $2 }' | sort -g | awk '{ v[NR] = $1 } END { printf "%.3f", v[3] }'
	else
		echo "-"
	fi
}
c_ours=$(cpu "$MOETRACE" render "$d/t.db" heatmap -o "$d/ours.png")

py=""
for p in /usr/bin/python3 python3; do
	if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import matplotlib, numpy' 2>/dev/null; then
		py=$p
		break
	fi
done
echo "\`moetrace render DB heatmap -o out.png\` on a \`moetrace gen --model deepseek-v3 --steps $steps\`"
echo "trace (58 layers x 256 experts), 1000 x 600 PNG; whole process, median of 9 runs."
if [ -n "$py" ]; then
	"$MOETRACE" sql --format csv "$d/t.db" \
		"SELECT layer, expert, sum(tokens) * 1.0 / $steps FROM expert_heat GROUP BY layer, expert ORDER BY layer, expert" \
		>"$d/heat.csv"
	peer() { "$py" "$MOETRACE_TOP/scripts/heatmap_matplotlib.py" "$d/heat.csv" "$d/peer.png"; }
	t_peer=$(median_time 5 peer)
	c_peer=$(cpu "$py" "$MOETRACE_TOP/scripts/heatmap_matplotlib.py" "$d/heat.csv" "$d/peer.png")
	mpl=$("$py" -c 'import matplotlib; print(matplotlib.__version__)')
	echo "Peer: matplotlib $mpl (\`scripts/heatmap_matplotlib.py\`: Agg, imshow + colorbar, same size),"
	echo "given the already summed 58 x 256 matrix as CSV; whole process, median of 5 runs, same session."
	echo
	echo "| program | wall seconds | CPU seconds | budget (wall) |"
	echo "|---|---:|---:|---:|"
	echo "| moetrace render | $(fmt3 "$t_ours") | $c_ours | <= 0.030 |"
	echo "| matplotlib $mpl | $(fmt3 "$t_peer") | $c_peer | (DESIGN.md: 0.70 on this machine class) |"
	echo
	echo "moetrace is $(ratio "$t_peer" "$t_ours")x faster than matplotlib here (wall time; load"
	echo "average $(cut -d' ' -f1 /proc/loadavg) on $(nproc) cores while measuring)."
else
	echo
	echo "| program | wall seconds | CPU seconds | budget (wall) |"
	echo "|---|---:|---:|---:|"
	echo "| moetrace render | $(fmt3 "$t_ours") | $c_ours | <= 0.030 |"
	echo "| matplotlib (not installed here; DESIGN.md's figure) | 0.700 | - | - |"
fi
