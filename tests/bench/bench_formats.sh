#!/bin/sh
# Trace formats: export of a DeepSeek-V3-shaped run as CSV and JSON lines,
# and import of the JSON lines and of the same heat as TensorRT-LLM expert
# statistics (2 ranks of safetensors); Python's own json.loads of the same
# JSON lines as a reference for the parsing cost.
set -eu
. "$(dirname "$0")/lib.sh"
steps=500
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
"$MOETRACE" gen --model deepseek-v3 --steps $steps --seed 3 --run g -q "$d/g.db"
cells=$((steps * 58 * 256))

exp_csv() { "$MOETRACE" export "$d/g.db" --format csv -o "$d/h.csv" >/dev/null; }
exp_jsonl() { "$MOETRACE" export "$d/g.db" --format jsonl -o "$d/h.jsonl" >/dev/null; }
imp_jsonl() { rm -f "$d/j.db"*; "$MOETRACE" import "$d/h.jsonl" --into "$d/j.db" --run j >/dev/null; }
imp_trt() { rm -f "$d/t.db"*; "$MOETRACE" import "$d/trt" --into "$d/t.db" --run t >/dev/null; }
py_json() { python3 -c 'import json,sys
for line in open(sys.argv[1]): json.loads(line)' "$d/h.jsonl"; }
t_csv=$(median_time 3 exp_csv)
t_jsonl=$(median_time 3 exp_jsonl)
t_ijsonl=$(median_time 3 imp_jsonl)
# the same heat as TensorRT-LLM statistics: iteration = step, model layers 3..60
python3 - "$MOETRACE_TOP/tests/data" "$d/h.jsonl" "$d/trt" <<'PY'
import json, os, sys
sys.path.insert(0, sys.argv[1])
import make_samples as m
os.makedirs(sys.argv[3])
ranks = [{}, {}]
with open(sys.argv[2]) as f:
    head = json.loads(f.readline())
    for line in f:
        r = json.loads(line)
        for l, row in enumerate(r["counts"]):
            ranks[0]["%d_%d" % (r["step"], l + 3)] = [c // 2 for c in row]
            ranks[1]["%d_%d" % (r["step"], l + 3)] = [c - c // 2 for c in row]
for i, t in enumerate(ranks):
    with open(os.path.join(sys.argv[3], "rank%d.safetensors" % i), "wb") as f:
        f.write(m.safetensors(t))
with open(os.path.join(sys.argv[3], "meta_info.json"), "w") as f:
    json.dump({"num_experts": head["experts"], "num_experts_per_token": head["topk"]}, f)
PY
t_itrt=$(median_time 3 imp_trt)
t_py=$(median_time 3 py_json)
# a Megatron-LM router trace: 20 steps x 58 layers x 256 tokens x top-8 random ids
python3 - "$d/mg" <<'PY'
import json, os, random, sys
random.seed(1)
os.makedirs(sys.argv[1])
with open(os.path.join(sys.argv[1], "router_trace_rank0.jsonl"), "w") as f:
    for step in range(20):
        for layer in range(3, 61):
            rows = [random.sample(range(256), 8) for _ in range(256)]
            f.write(json.dumps({"step": step, "stage": "pre_dispatch", "block": "decoder",
                                "layer": layer, "rank": 0, "num_tokens": 256, "topk": 8,
                                "top_indices": rows}) + "\n")
PY
imp_mg() { rm -f "$d/m.db"*; "$MOETRACE" import "$d/mg" --into "$d/m.db" --run m --experts 256 >/dev/null; }
t_mg=$(median_time 3 imp_mg)
ids=$((20 * 58 * 256 * 8))
[ "$(sqlite3 "$d/m.db" "SELECT sum(tokens) FROM steps")" = $((20 * 256)) ] || { echo "megatron import lost tokens" >&2; exit 1; }
same=$(sqlite3 "$d/g.db" "SELECT step, layer, hex(data) FROM counts ORDER BY 1, 2" | md5sum)
check=$(sqlite3 "$d/t.db" "SELECT step, layer, hex(data) FROM counts ORDER BY 1, 2" | md5sum)
[ "$same" = "$check" ] || { echo "trtllm import differs from the generated run" >&2; exit 1; }
echo "## Trace formats: collector, importers and exporters"
echo
echo "A generated DeepSeek-V3 run ($steps steps x 58 layers x 256 experts = $cells cells):"
echo "\`moetrace export\` to CSV ($(stat -c %s "$d/h.csv") bytes) and JSON lines"
echo "($(stat -c %s "$d/h.jsonl") bytes), \`moetrace import\` of those JSON lines and of the same heat"
echo "as TensorRT-LLM expert statistics (2 rank files, $(du -cb "$d"/trt/rank*.safetensors | tail -n 1 | cut -f1) bytes"
echo "of I64 tensors); the TensorRT-LLM run's counts blobs equal the generated run's byte for byte."
echo "Reference: Python's \`json.loads\` of the same JSON lines (parsing only, no database)."
echo "Median of 3 runs; wall time, which includes waiting for the disk on a shared machine."
echo
echo "| what | seconds | cells / s |"
echo "|---|---|---|"
for row in "export CSV:$t_csv" "export JSON lines:$t_jsonl" "import JSON lines:$t_ijsonl" \
	"import TensorRT-LLM safetensors:$t_itrt" "python3 json.loads only (reference):$t_py"; do
	name=${row%:*} t=${row##*:}
	echo "| $name | $(fmt3 "$t") | $(awk -v c=$cells -v t="$t" 'BEGIN{printf "%.0f", c/t}') |"
done
echo
echo "Megatron-LM router trace (20 steps x 58 layers x 256 tokens x top-8 = $ids expert ids,"
echo "$(stat -c %s "$d/mg/router_trace_rank0.jsonl") bytes): imported in $(fmt3 "$t_mg") s,"
echo "$(awk -v c=$ids -v t="$t_mg" 'BEGIN{printf "%.0f", c/t}') ids / s (histogrammed per step and layer)."
