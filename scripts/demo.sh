#!/bin/sh
# make demo: record a realistic synthetic DeepSeek-V3 trace, analyse it and
# write the report — the one command a newcomer runs.
set -eu
cd "$(dirname "$0")/.."
mt=./moetrace
has() { $mt help | grep -q "^  $1 "; }
mkdir -p demo
rm -f demo/trace.db demo/trace.db-wal demo/trace.db-shm

step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "$2"; }

step "1. record a synthetic DeepSeek-V3 trace (58 MoE layers x 256 experts, top-8)" \
     "moetrace gen --model deepseek-v3 --steps 2000 --seed 7 demo/trace.db"
$mt gen --model deepseek-v3 --steps 2000 --seed 7 demo/trace.db

step "2. what is in it" "moetrace info demo/trace.db"
$mt info demo/trace.db

step "3. balance under the engines' default (static, contiguous) placement" \
     "moetrace balance demo/trace.db"
$mt balance demo/trace.db

if has compare; then
	step "4. what the placement algorithms would do (fit on steps 0-999, score on 1000-1999)" \
	     "moetrace compare demo/trace.db --steps 0:999"
	$mt compare demo/trace.db --steps 0:999
	step "4b. the same, the fitting window given as 8 episodes (placements that hold up after it)" \
	     "moetrace compare demo/trace.db --steps 0:999 --episodes 8"
	$mt compare demo/trace.db --steps 0:999 --episodes 8
fi
if has replay; then
	step "5. dynamic load balancing replayed on the trace at the default cadence (8 nodes x 8 ranks: copies inside a node on nvlink4, across nodes on ib-ndr-400g, fp8 weights)" \
	     "moetrace replay demo/trace.db"
	$mt replay demo/trace.db
	step "5b. the same, moving only what pays for its transfer" \
	     "moetrace replay demo/trace.db --pay --no-store"
	$mt replay demo/trace.db --pay --no-store
	step "5c. the engines' own EPLB with their default settings, against the flagship" \
	     "moetrace replay demo/trace.db --grid engine=vllm,sglang,vllm-ascend,trtllm"
	$mt replay demo/trace.db --grid engine=vllm,sglang,vllm-ascend,trtllm
fi
if has report; then
	step "6. the report" "moetrace report demo/trace.db -o demo/report"
	$mt report demo/trace.db -o demo/report
elif has render; then
	step "6. charts" "moetrace render demo/trace.db heatmap -o demo/heatmap.png"
	$mt render demo/trace.db heatmap -o demo/heatmap.png
fi
printf '\nDone. The trace is demo/trace.db; try: ./moetrace sql demo/trace.db --examples\n'
