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
for g in "deepseek-v3 1" "qwen3-235b-a22b 2" "llama4-maverick 3" "mixtral-8x7b 4" \
	"deepseek-v3 5" "qwen3-235b-a22b 6" "llama4-maverick 7" "mixtral-8x7b 8"; do
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
# DeepSeek's public eplb.py under the same protocol (EPLB_PY: the path of
# eplb.py from github.com/deepseek-ai/EPLB, EPLB_COMMIT its commit;
# PYTHON: an interpreter with numpy and torch)
py=${PYTHON:-python3}
if [ -n "${EPLB_PY:-}" ] && [ -f "$EPLB_PY" ] && "$py" -c "import numpy, torch" 2>/dev/null; then
	echo "**DeepSeek's eplb.py** (\`$(basename "$EPLB_PY")\` from github.com/deepseek-ai/EPLB,"
	echo "${EPLB_COMMIT:+commit $EPLB_COMMIT, }"
	echo "\`rebalance_experts(heat, ranks x slots, 1, 1, ranks)\`) under the same protocol, run by"
	echo "\`tests/bench/rounds_public.py\` in Python on the CSV files, beside moetrace's figures:"
	echo
	echo "| trace (ranks x slots) | windows | static: Python / moetrace | eplb: eplb.py / moetrace's port |"
	echo "|---|---:|---:|---:|"
	while read -r dir file model ranks slots label; do
		csv="$real/$dir/$file"
		[ -f "$csv" ] || continue
		"$MOETRACE" import "$csv" --into "$d/pub.db" --run p --ranks "$ranks" --slots "$slots" \
			>/dev/null
		for N in 3 4 5 6; do
			pub=$("$py" "$MOETRACE_TOP/tests/bench/rounds_public.py" "$EPLB_PY" "$csv" "$ranks" "$slots" $N)
			"$MOETRACE" compare "$d/pub.db" --rounds $N --algos static,eplb --format csv >"$d/out.csv"
			echo "$pub" | awk -F, -v label="$label ($ranks x $slots)" -v N=$N -v f="$d/out.csv" '
				BEGIN { while ((getline l < f) > 0) { split(l, a, ","); if (a[1] == "mean") nx[a[2]] = a[5] } }
				{ split($0, p, " "); printf "| %s | %d | %.4f / %.4f | %.4f / %.4f |\n", label, N,
					p[1], nx["static"], p[2], nx["eplb"] }'
		done
		rm -f "$d/pub.db"
	done <<'LIST'
deepseek_v2_lite_puffin expert_load.csv deepseek-v2-lite 8 10 deepseek_v2_lite_puffin
llama4_maverick_mmlu expert_load_by_request.csv llama4-maverick 16 10 llama4_maverick_mmlu_by_request
llama4_maverick_mmlu expert_load.csv llama4-maverick 16 10 llama4_maverick_mmlu_by_step
mixtral_8x7b_humaneval_gsm8k expert_load.csv mixtral-8x7b 4 3 mixtral_8x7b_humaneval_gsm8k
LIST
	echo
fi
