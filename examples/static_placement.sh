#!/bin/sh
# Static placement export: from a recorded trace to the files vLLM-Ascend,
# SGLang and TensorRT-LLM load at start-up.
#
#   sh examples/static_placement.sh [TRACE.csv MODEL RANKS SLOTS] [OUTDIR]
#
# Without arguments it uses the DeepSeek-V2-Lite trace from ../shared/data
# (8 ranks x 10 slots).  Steps: import the CSV, compare the algorithms on a
# fitting window and the window after it, pick the flagship, write the
# three engine files and read one back to check it.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
mt=${MOETRACE:-$top/moetrace}
csv=${1:-$top/../shared/data/real/deepseek_v2_lite_puffin/expert_load.csv}
model=${2:-deepseek-v2-lite}
ranks=${3:-8}
slots=${4:-10}
out=${5:-$(mktemp -d)}
mkdir -p "$out"
[ -f "$csv" ] || { echo "no trace at $csv: give one (CSV step,layer,expert,tokens)" >&2; exit 2; }

echo "== import $csv"
"$mt" import "$csv" --into "$out/trace.db" --model "$model" --ranks "$ranks" --slots "$slots"

echo "== compare: fit on the first half, score on the second"
"$mt" compare "$out/trace.db" --model "$model" --quant bf16 --link nvlink4

echo "== place with the flagship on the whole trace, from the engines' static layout"
"$mt" place "$out/trace.db" --current static --model "$model" -o "$out/expert_map.json" \
	--format vllm-ascend | tail -4
"$mt" place "$out/trace.db" -o "$out/init_expert_location.json" --format sglang | tail -1
"$mt" place "$out/trace.db" -o "$out/moe_load_balancer.yaml" --format trtllm | tail -1

echo "== read one back: the same placement as current moves nothing"
"$mt" place "$out/trace.db" --current "$out/moe_load_balancer.yaml" --json |
	sed -n 's/.*"moves":\([0-9]*\).*/moves: \1/p'

cat <<MSG

Files in $out:
  expert_map.json            vllm-ascend: additional_config eplb expert_map_path
  init_expert_location.json  SGLang: --init-expert-location $out/init_expert_location.json
  moe_load_balancer.yaml     TensorRT-LLM: moe_config: {load_balancer: moe_load_balancer.yaml}
(docs/formats.md describes each format.)
MSG
