# import --model: a trace whose shape contradicts the preset (another
# model's trace) is refused with both shapes named, exit 2, no database.
. "$(dirname "$0")/lib.sh"
D="$MOETRACE_TOP/tests/data"

# a Mixtral-shaped trace, every cell written: 3 steps x 32 layers x 8
# experts, one token per step routed to 2 experts
python3 - "$T/mx.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens\n")
    for s in range(3):
        for l in range(32):
            for e in range(8):
                f.write("%d,%d,%d,%d\n" % (s, l, e, 1 if e in ((s + l) % 8, (s + l + 3) % 8) else 0))
PY
expect_status 2 mt import "$T/mx.csv" --into "$T/db" --model deepseek-v3
expect_grep "$T/err" "mx.csv: the data has every cell of 32 MoE layers x 8 experts in each of its 3 steps, --model deepseek-v3 has 58 x 256"
[ -e "$T/db" ] && fail "a refused import left a database"
# the right preset, or none, imports it
expect_status 0 mt import "$T/mx.csv" --into "$T/db" --model mixtral-8x7b --run mx
expect_status 0 mt import "$T/mx.csv" --into "$T/db" --run plain
# a sparse file (no zero cells) states no shape: the preset's is taken
grep -v ',0$' "$T/mx.csv" >"$T/sparse.csv"
expect_status 0 mt import "$T/sparse.csv" --into "$T/db" --model mixtral-8x7b --run sparse

# our JSON lines carry the run's description: top-k 2 is not DeepSeek-V3's 8
expect_status 0 mt export "$T/db" --run mx --format jsonl -o "$T/mx.jsonl"
expect_status 2 mt import "$T/mx.jsonl" --into "$T/db" --run j --model deepseek-v3
expect_grep "$T/err" "mx.jsonl: the data has 2 experts per token \\(top-k\\), --model deepseek-v3 has 8"
expect_status 0 mt import "$T/mx.jsonl" --into "$T/db" --run j --model mixtral-8x7b

# Megatron-LM's per-token top-k lists have 2 entries; Qwen3-30B-A3B routes 8
expect_status 2 mt import "$D/megatron" --into "$T/db" --run mg --model qwen3-30b-a3b
expect_grep "$T/err" "the data has 2 experts per token \\(top-k\\), --model qwen3-30b-a3b has 8"
# TensorRT-LLM's meta_info.json: 4 experts, top-2
expect_status 2 mt import "$D/trtllm" --into "$T/db" --run trt --model qwen3-30b-a3b
expect_grep "$T/err" "the data has 2 experts per token \\(top-k\\), --model qwen3-30b-a3b has 8"
# nothing of the refused imports was stored
[ "$(mt sql --format csv "$T/db" "SELECT count(*) FROM runs" | tail -n 1)" = 4 ] || fail "runs stored"
exit 0
