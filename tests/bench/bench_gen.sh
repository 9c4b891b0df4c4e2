#!/bin/sh
# moetrace gen: generator throughput on DeepSeek-V3 (58 x 256, top-8),
# alone and end to end into a database, bytes per cell of the result, and
# the calibration table of docs/generator.md against the real traces.
set -eu
. "$(dirname "$0")/lib.sh"
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
bin="$MOETRACE_BENCH_BIN"
steps=10000
median() { sort -g | awk '{v[NR]=$1} END{ if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2 }'; }

echo "## Synthetic generator (moetrace gen)"
echo
# the generator alone: steps/s, tokens per step, set-up time (median of 3)
: >"$d/alone"
for i in 1 2 3; do "$bin/bench_gen" deepseek-v3 $steps 7 >>"$d/alone"; done
alone=$(cut -d' ' -f1 "$d/alone" | median)
tps=$(cut -d' ' -f2 "$d/alone" | median)
setup=$(cut -d' ' -f3 "$d/alone" | median)
cpu=$(cut -d' ' -f4 "$d/alone" | median)
# end to end: moetrace gen into a new database, whole process (median of 3)
run() { rm -f "$d/t.db" "$d/t.db-wal" "$d/t.db-shm"; "$MOETRACE" gen --model deepseek-v3 --steps $steps --seed 7 "$d/t.db" >"$d/gen.out"; }
t=$(median_time 3 run)
bpc=$(sed -n 's/.*tokens, \([0-9.]*\) bytes per cell.*/\1/p' "$d/gen.out")
size=$(stat -c %s "$d/t.db")
echo "DeepSeek-V3 shape (58 MoE layers x 256 experts, top-8), calibrated defaults (decode batch 128,"
echo "10 % prefill steps of up to 2,048 tokens: $(awk -v x="$tps" 'BEGIN{printf "%.0f", x}') tokens per step on average), seed 7, medians of 3:"
echo
echo "| what | figure |"
echo "|---|---:|"
echo "| generator alone ($steps steps, \`bench_gen\`) | $(awk -v x="$alone" 'BEGIN{printf "%.0f", x}') steps/s |"
echo "| generator alone, CPU time for $steps steps | $(fmt3 "$cpu") s |"
echo "| set-up (popularity, tables, k-set pools) | $(awk -v x="$setup" 'BEGIN{printf "%.0f", x}') ms |"
echo "| \`moetrace gen --steps $steps\` into a new database, whole process | $(fmt3 "$t") s ($(awk -v s=$steps -v t="$t" 'BEGIN{printf "%.0f", s/t}') steps/s) |"
echo "| storage of the result (counts blobs / cells) | $bpc bytes per cell |"
echo "| database file | $(awk -v s="$size" 'BEGIN{printf "%.1f", s/1e6}') MB |"
t1=$(median_time 1 "$MOETRACE" gen -q --model deepseek-v3 --steps 2000 --seed 7 "$d/p.db")
t2=$(median_time 1 "$MOETRACE" gen -q --model deepseek-v3 --steps 2000 --seed 7 --fresh-routing "$d/f.db")
echo "| 2,000 steps, default vs \`--fresh-routing\` (every token drawn afresh) | $(fmt3 "$t1") s vs $(fmt3 "$t2") s |"
echo
real="$MOETRACE_SHARED/data/real"
[ -d "$real" ] || { echo "calibration: skipped, $real not found"; exit 0; }
echo "Calibration (docs/generator.md): \`bench_genstats\` on each real trace and on a generated"
echo "trace of the same shape and token volume (default knobs unless named); per layer, then"
echo "median (p90 or max) over layers; W = window in steps."
echo
S="$bin/bench_genstats"
g() { # name db window gen-args...
	n=$1; db=$2; w=$3; shift 3
	"$MOETRACE" gen -q --seed 1 "$@" "$d/$db" && "$S" --window "$w" --name "$n" "$d/$db"
}
"$S" --header
"$S" --name "real: deepseek_v2_lite_puffin" "$real/deepseek_v2_lite_puffin/expert_load.csv"
g "gen: deepseek-v2-lite, prefill 384 tok/step" c1.db 31 --model deepseek-v2-lite --steps 500 --prefill-fraction 1 --prefill-tokens 384
g "gen: same, --skew 0.3" c1s.db 31 --model deepseek-v2-lite --steps 500 --prefill-fraction 1 --prefill-tokens 384 --skew 0.3
"$S" --name "real: llama4_maverick_mmlu (steps)" "$real/llama4_maverick_mmlu/expert_load.csv"
g "gen: llama4-maverick, decode batch 387" c2.db 8 --model llama4-maverick --steps 129 --prefill-fraction 0 --decode-batch 387
"$S" --name "real: llama4_maverick_mmlu (by request)" "$real/llama4_maverick_mmlu/expert_load_by_request.csv"
g "gen: llama4-maverick, prefill 145 tok/step" c3.db 24 --model llama4-maverick --steps 387 --prefill-fraction 1 --prefill-tokens 145
"$S" --name "real: mixtral_8x7b_humaneval_gsm8k" "$real/mixtral_8x7b_humaneval_gsm8k/expert_load.csv"
g "gen: mixtral-8x7b, decode batch 1" c4.db 36 --model mixtral-8x7b --steps 585 --prefill-fraction 0 --decode-batch 1
"$S" --name "real: qwen3_235b_a22b_sglang_counts" "$real/qwen3_235b_a22b_sglang_counts/expert_load.csv"
g "gen: qwen3-235b-a22b" c5.db 18 --model qwen3-235b-a22b --steps 300
g "gen: qwen3-235b-a22b, --domains 1" c5d.db 18 --model qwen3-235b-a22b --steps 300 --domains 1
g "gen: deepseek-v3 (defaults)" c6.db 125 --model deepseek-v3 --steps 2000
g "gen: deepseek-v3, --fresh-routing" c7.db 125 --model deepseek-v3 --steps 2000 --fresh-routing
