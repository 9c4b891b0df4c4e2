#!/bin/sh
# The protocol of consecutive windows (moetrace compare --rounds) on the
# real traces and on generated ones: each algorithm fitted on window k from
# its own placement of round k-1 and scored on window k+1.
set -eu
. "$(dirname "$0")/lib.sh"
real="$MOETRACE_SHARED/data/real"
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
algos=static,eplb,flashlb,keel
echo "## Next-window protocol (moetrace compare --rounds)"
echo
echo "\`moetrace compare DB --rounds N --algos $algos --format csv\`: the trace cut into N"
echo "consecutive windows of equal step counts; in round k = 0..N-2 each algorithm is fitted on"
echo "window k, starting from its own placement of round k-1 (round 0 from the static layout), and"
echo "scored on window k+1. next = mean over rounds of sum over layers of max / sum of mean device"
echo "load on the scored window's summed heat; next/step = the same per step, averaged; copies and"
echo "seconds (2 threads, all layers) per round. \`eplb\` and \`flashlb\` are moetrace's ports of the"
echo "public codes (DeepSeek's \`eplb.py\`, vLLM-Ascend's FlashLB policy; ../shared/REFERENCE.md);"
echo "\`keel\` is the flagship as \`place\` runs it without options (docs/algorithms.md)."
echo
# folder  csv  model  ranks  slots  label
n=0
while read -r dir file model ranks slots label; do
	csv="$real/$dir/$file"
	[ -f "$csv" ] || continue
	n=$((n + 1))
	"$MOETRACE" import "$csv" --into "$d/$n.db" --run "$dir" --model "$model" \
		--ranks "$ranks" --slots "$slots" >/dev/null
	echo "$n $label ($ranks x $slots)" >>"$d/list"
done <<'LIST'
deepseek_v2_lite_puffin expert_load.csv deepseek-v2-lite 8 10 deepseek_v2_lite_puffin
llama4_maverick_mmlu expert_load_by_request.csv llama4-maverick 16 10 llama4_maverick_mmlu_by_request
llama4_maverick_mmlu expert_load.csv llama4-maverick 16 10 llama4_maverick_mmlu_by_step
mixtral_8x7b_humaneval_gsm8k expert_load.csv mixtral-8x7b 4 3 mixtral_8x7b_humaneval_gsm8k
LIST
# generated: moetrace gen presets (their typical layouts), 400 steps
for g in "deepseek-v3 1" "qwen3-235b-a22b 2" "llama4-maverick 3" "mixtral-8x7b 4"; do
	set -- $g
	n=$((n + 1))
	"$MOETRACE" gen --model "$1" --steps 400 --seed "$2" -q "$d/$n.db"
	lay=$("$MOETRACE" info "$d/$n.db" | sed -n 's/.*EP layout *\([0-9]*\) ranks x \([0-9]*\) slots.*/\1 x \2/p')
	echo "$n gen $1 seed $2 ($lay)" >>"$d/list"
done
echo "**4 windows** (3 rounds)"
echo
echo "| trace (ranks x slots) | static | eplb | flashlb | keel | keel next/step | copies eplb / flashlb / keel | keel s |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
while read -r i label; do
	"$MOETRACE" compare "$d/$i.db" --rounds 4 --algos $algos --format csv >"$d/out.csv"
	awk -F, -v label="$label" '$1 == "mean" { nx[$2] = $5; st[$2] = $6; mv[$2] = $7; s[$2] = $8 }
		END { printf "| %s | %.4f | %.4f | %.4f | %.4f | %.4f | %.0f / %.0f / %.0f | %.4f |\n",
			label, nx["static"], nx["eplb"], nx["flashlb"], nx["keel"], st["keel"],
			mv["eplb"], mv["flashlb"], mv["keel"], s["keel"] }' "$d/out.csv"
done <"$d/list"
echo
echo "**Other window counts** (next imbalance; copies per round in brackets)"
echo
echo "| trace | windows | eplb | flashlb | keel |"
echo "|---|---:|---:|---:|---:|"
while read -r i label; do
	for N in 3 5 6; do
		"$MOETRACE" compare "$d/$i.db" --rounds $N --algos eplb,flashlb,keel --format csv >"$d/out.csv"
		awk -F, -v label="$label" -v N=$N '$1 == "mean" { nx[$2] = $5; mv[$2] = $7 }
			END { printf "| %s | %d | %.4f (%.0f) | %.4f (%.0f) | %.4f (%.0f) |\n", label, N,
				nx["eplb"], mv["eplb"], nx["flashlb"], mv["flashlb"], nx["keel"], mv["keel"] }' "$d/out.csv"
	done
done <"$d/list"
echo
echo "For comparison, figures measured earlier under the same protocol with the public Python codes"
echo "(not rerun here; their static column reads 1.344 / 3.876 / 3.338 / 1.396 for the four real"
echo "traces, so the two Llama-4 traces were cut or imported slightly differently from ours): best"
echo "public code 1.044 / 2.309 / 1.204 / 1.205; fitted on the scored window itself 1.0002 / 1.0007 /"
echo "1.0007 / 1.0073; the scored window's own sampling noise 1.036 / 1.12 / 1.042 / 1.088. keel's goals"
echo "were 1.038 / 2.25 / 1.14 / 1.18 with no more copies than eplb: met on DeepSeek-V2-Lite and"
echo "Llama-4 by request, missed on Mixtral by 0.0007 (1.1807) and on Llama-4 by step (1.1515)."
