#!/bin/sh
# Import throughput: moetrace import of a real CSV trace against the sqlite3
# shell's own `.import --csv` of the same file into a plain table, same run.
set -eu
. "$(dirname "$0")/lib.sh"
csv="$MOETRACE_SHARED/data/real/deepseek_v2_lite_puffin/expert_load.csv"
[ -f "$csv" ] || { echo "## Import"; echo; echo "skipped: $csv not found"; exit 0; }
rows=$(($(wc -l <"$csv") - 1))
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT

ours() { rm -f "$d/a.db"*; "$MOETRACE" import "$csv" --into "$d/a.db" --run r --model deepseek-v2-lite >/dev/null; }
peer() { rm -f "$d/b.db"*; sqlite3 "$d/b.db" ".import --csv $csv heat" >/dev/null; }
t_ours=$(median_time 7 ours)
t_peer=$(median_time 7 peer)
# CPU seconds (user + sys), median of 5: on a shared machine the steadier
# figure, since waiting for a core or the disk is not in it
cpu() { # cmd...
	if [ -x /usr/bin/time ]; then
		for i in 1 2 3 4 5; do /usr/bin/time -f "%U %S" "$@" 2>&1 >/dev/null | tail -n 1; done |
			awk '{ print $1 + $2 }' | sort -g | awk '{ v[NR] = $1 } END { printf "%.3f", v[3] }'
	else
		echo "-"
	fi
}
c_ours=$(cpu sh -c "rm -f '$d/a.db'*; exec '$MOETRACE' import '$csv' --into '$d/a.db' --run r --model deepseek-v2-lite")
c_peer=$(cpu sh -c "rm -f '$d/b.db'*; exec sqlite3 '$d/b.db' '.import --csv $csv heat'")
size_ours=$(stat -c %s "$d/a.db")
size_peer=$(stat -c %s "$d/b.db")
echo "## Import"
echo
echo "\`moetrace import\` of \`deepseek_v2_lite_puffin/expert_load.csv\` ($rows rows, 26 x 64, 500 steps)"
echo "against \`sqlite3 DB '.import --csv FILE heat'\` (a plain row-per-cell table of text columns)."
echo "Wall: median of 7 runs each; CPU (user + sys): median of 5; one session, load average"
echo "$(cut -d' ' -f1 /proc/loadavg) on $(nproc) cores when done."
echo
echo "| what | moetrace import | sqlite3 .import --csv | ratio |"
echo "|---|---|---|---|"
echo "| seconds | $(fmt3 "$t_ours") | $(fmt3 "$t_peer") | $(ratio "$t_peer" "$t_ours")x faster |"
echo "| CPU seconds | $c_ours | $c_peer | $(ratio "$c_peer" "$c_ours")x less |"
echo "| rows / s | $(awk -v r="$rows" -v t="$t_ours" 'BEGIN{printf "%.0f", r/t}') | $(awk -v r="$rows" -v t="$t_peer" 'BEGIN{printf "%.0f", r/t}') | |"
echo "| database bytes | $size_ours | $size_peer | $(ratio "$size_peer" "$size_ours")x smaller |"
