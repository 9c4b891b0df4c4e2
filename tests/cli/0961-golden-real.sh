#!/bin/sh
# Golden outputs on real traces ($MOETRACE_SHARED/data/real, imported
# here): info, balance, place and compare print exactly
# tests/golden/real-*.out (tests/cli/golden.sh; make golden rewrites them
# after an intended change).  Run times are left out.
. "$(dirname "$0")/golden.sh"
shared_or_skip
R=$MOETRACE_SHARED/data/real
expect_status 0 mt import "$R/mixtral_8x7b_humaneval_gsm8k/expert_load.csv" --into "$T/r.db" \
	--run mixtral --model mixtral-8x7b
expect_status 0 mt import "$R/qwen3_235b_a22b_sglang_counts/expert_load.csv" --into "$T/r.db" \
	--run qwen3 --model qwen3-235b-a22b
expect_status 0 mt import "$R/llama4_maverick_mmlu/expert_load.csv" --into "$T/r.db" --run llama4 \
	--ranks 16 --slots 10

golden real-info info "$T/r.db"
golden real-mixtral-balance balance --run mixtral "$T/r.db"
golden real-mixtral-compare -x seconds compare --format csv --run mixtral "$T/r.db"
golden real-qwen3-balance balance --run qwen3 "$T/r.db"
golden real-qwen3-place -v '^algorithm time:' place --run qwen3 --algo eplb "$T/r.db"
golden real-llama4-balance balance --run llama4 "$T/r.db"
golden real-llama4-compare -x seconds compare --format csv --run llama4 \
	--algos eplb,flashlb,keel "$T/r.db"
golden_done real-
