#!/bin/sh
# moetrace compare on the real traces: every algorithm fitted on the first
# half of a trace and scored on the second half (what a deployment would
# meet), with the copies from the static layout and the algorithm's time.
set -eu
. "$(dirname "$0")/lib.sh"
real="$MOETRACE_SHARED/data/real"
echo "## Fitted vs next window (moetrace compare)"
echo
[ -d "$real" ] || { echo "skipped: $real not found"; exit 0; }
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
echo "\`moetrace compare DB --capacity 1.25 --format csv\` on each real trace: each algorithm places every layer"
echo "on the heat of the first half of the trace's steps (\"fit\") and is scored on the second half"
echo "(\"next\"); imbalance = sum over layers of max / sum of mean device load; moves are copies"
echo "from the static layout; time is the algorithm's wall time for all layers (2 threads). keel, as"
echo "by default, fits a forecast of the next window from the first half's blocks (docs/algorithms.md)."
echo
# folder  csv  model  ranks  slots
n=0
while read -r dir file model ranks slots; do
	csv="$real/$dir/$file"
	[ -f "$csv" ] || continue
	n=$((n + 1))
	"$MOETRACE" import "$csv" --into "$d/$n.db" --run "$dir" --model "$model" \
		--ranks "$ranks" --slots "$slots" >/dev/null
	"$MOETRACE" compare "$d/$n.db" --capacity 1.25 --format csv >"$d/out.csv"
	echo "**$dir/$file** ($model, $ranks ranks x $slots slots)"
	echo
	echo "| algorithm | fit | next | next/step | gap to bound (next) | moves | token drop (next, 1.25x) | seconds |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|"
	# the columns by name: token_drop is there with --capacity only
	awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i
			split("fit_imbalance next_imbalance next_step_mean_imbalance gap_next moves token_drop seconds", need, " ")
			for (k in need) if (!(need[k] in c)) { print "bench_compare: no column " need[k] > "/dev/stderr"; exit 1 } }
		$1 == "overall" { printf "| %s | %.4f | %.4f | %.4f | %.1f%% | %d | %.2f%% | %.4f |\n",
		$2, $c["fit_imbalance"], $c["next_imbalance"], $c["next_step_mean_imbalance"],
		100 * $c["gap_next"], $c["moves"], 100 * $c["token_drop"], $c["seconds"] }' "$d/out.csv"
	echo
done <<'LIST'
deepseek_v2_lite_puffin expert_load.csv deepseek-v2-lite 8 10
llama4_maverick_mmlu expert_load_by_request.csv llama4-maverick 16 10
llama4_maverick_mmlu expert_load.csv llama4-maverick 16 10
mixtral_8x7b_humaneval_gsm8k expert_load.csv mixtral-8x7b 4 3
LIST
