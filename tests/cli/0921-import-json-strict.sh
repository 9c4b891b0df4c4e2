#!/bin/sh
# Every JSON reader takes JSON and nothing looser: a trailing comma, single
# quotes, a comment, NaN, a raw control character in a string or text after
# the value is refused in our JSON lines (by the fast path and by json-c),
# in Megatron-LM traces, in a --deployed map, in a heat file, in
# TensorRT-LLM's meta_info.json and in a safetensors header — each with
# the file and line, exit 2, and nothing written.
. "$(dirname "$0")/lib.sh"
D="$MOETRACE_TOP/tests/data"

# bad FILE REGEX [import options]: refused, no database left
bad() {
	f=$1 re=$2
	shift 2
	expect_status 2 mt import "$f" --into "$T/new.db" "$@"
	expect_grep "$T/err" "$re"
	[ ! -e "$T/new.db" ] || fail "a refused import of $f left a database"
}
jl() { printf '%s\n' "$@" >"$T/bad.jsonl"; }

# our JSON lines: the compact form export writes, then spaced out
jl '{"step":0,"counts":[[1,2],]}'
bad "$T/bad.jsonl" "bad.jsonl:1: malformed JSON line: field 'counts': a comma before '\\]' \\(a trailing comma\\)"
jl '{"step": 0, "counts": [[1, 2], ]}'
bad "$T/bad.jsonl" "bad.jsonl:1: malformed JSON line: field 'counts': a comma before '\\]'"
jl '{"step":0,"layer":0,"counts":[1,2],}'
bad "$T/bad.jsonl" "bad.jsonl:1: malformed JSON line: a comma before '}' \\(a trailing comma\\)"
jl '{"step":0,"layer":0,"counts":[1,2,],"phase":"decode"}'
bad "$T/bad.jsonl" "bad.jsonl:1: malformed JSON line: field 'counts': a comma before '\\]'"
jl "{'step':0,'layer':0,'counts':[1,2]}"
bad "$T/bad.jsonl" "bad.jsonl:1: malformed JSON line: a string in single quotes"
jl '{"step":0,"layer":0,"counts":[1,2]} // step 0'
bad "$T/bad.jsonl" "bad.jsonl:1: malformed JSON line: text after the JSON value"
jl '{"step":0,"layer":0,"counts":[1,2],"time":NaN}'
bad "$T/bad.jsonl" "bad.jsonl:1: malformed JSON line: field 'time': 'N' where a value should follow"
jl '{"step":0,"layer":0,"counts":[1,2],"time":1.}'
bad "$T/bad.jsonl" "bad.jsonl:1: malformed JSON line: field 'time': no digit after"
jl '{"step":0,"layer":0,"counts":[1,2],"time":.5}'
bad "$T/bad.jsonl" "bad.jsonl:1: malformed JSON line: field 'time': '.' where a value should follow"
jl '{"step":0,"layer":0,"counts":[01,2]}'
bad "$T/bad.jsonl" "bad.jsonl:1: malformed JSON line: field 'counts\\[0\\]': a number with a leading zero"
printf '{"step":0,"layer":0,"counts":[1,2],"phase":"de\tcode"}\n' >"$T/bad.jsonl"
bad "$T/bad.jsonl" "bad.jsonl:1: malformed JSON line: field 'phase': control character 0x09"
jl '{"moetrace":1,"layers":1,"experts":2,}' '{"step":0,"layer":0,"counts":[1,2]}'
bad "$T/bad.jsonl" "bad.jsonl:1: malformed JSON line: a comma before '}'"

# Megatron-LM router traces (its own fast path, then json-c)
sed '2s/\]\]}$/],]}/' "$D/megatron/router_trace_rank0.jsonl" >"$T/router_trace_rank0.jsonl"
bad "$T/router_trace_rank0.jsonl" "router_trace_rank0.jsonl:2: malformed JSON line: field 'top_indices': a comma before '\\]'"
sed '1s/"pre_dispatch"/"pre\tdispatch"/' "$D/megatron/router_trace_rank0.jsonl" >"$T/router_trace_rank0.jsonl"
bad "$T/router_trace_rank0.jsonl" "router_trace_rank0.jsonl:1: malformed JSON line: field 'stage': control character 0x09"
sed "1s/\"pre_dispatch\"/\"pre$(printf '\377')dispatch\"/" "$D/megatron/router_trace_rank0.jsonl" >"$T/router_trace_rank0.jsonl"
bad "$T/router_trace_rank0.jsonl" "router_trace_rank0.jsonl:1: malformed JSON line: field 'stage': byte 0xff is not valid UTF-8"

# a --deployed map and a heat file
printf '{"physical_to_logical_map": [[0, 1, 3, 2, 3, 0], [1, 2, 0, 3, 1, 2],\n]}\n' >"$T/map.json"
bad "$D/heat.csv" "map.json' line 2: not valid JSON: field 'physical_to_logical_map': a comma before '\\]'" \
	--deployed "$T/map.json" --ranks 2
printf "{'physical_to_logical_map': [[0, 1, 3, 2, 3, 0], [1, 2, 0, 3, 1, 2]]}\n" >"$T/map.json"
bad "$D/heat.csv" "map.json' line 1: not valid JSON: a string in single quotes" --deployed "$T/map.json" --ranks 2
printf '{"heat": [[1, 2, 3, 4],]}' >"$T/heat.json"
expect_status 2 mt place --heat "$T/heat.json" --algo static --ranks 2 --slots 2
expect_grep "$T/err" "heat.json' line 1: not valid JSON: field 'heat': a comma before '\\]'"
printf '{"heat": [[1, 2, 3, NaN]]}' >"$T/heat.json"
expect_status 2 mt place --heat "$T/heat.json" --algo static --ranks 2 --slots 2
expect_grep "$T/err" "heat.json' line 1: not valid JSON: field 'heat\\[0\\]\\[3\\]': 'N' where"

# TensorRT-LLM: meta_info.json and a safetensors header
mkdir "$T/trt"
cp "$D"/trtllm/rank*.safetensors "$T/trt/"
printf '{"num_experts": 4, "num_experts_per_token": 2,}' >"$T/trt/meta_info.json"
bad "$T/trt" "meta_info.json' line 1: not valid JSON: a comma before '}'"
cp "$D/trtllm/meta_info.json" "$T/trt/"
python3 - "$T/trt/rank1.safetensors" <<'PY' || fail "cannot rewrite the safetensors header"
import struct, sys
p = sys.argv[1]
b = open(p, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = b[8:8 + n].replace(b'"__metadata__"', b"'__metadata__'")
open(p, "wb").write(b[:8] + h + b[8 + n:])
PY
bad "$T/trt" "rank1.safetensors: header is not valid JSON: a string in single quotes"

# and the same files, written right, import
expect_status 0 mt import "$D/megatron" --into "$T/db" --run meg
expect_status 0 mt import "$D/trtllm" --into "$T/db" --run trt
expect_status 0 mt import "$D/jsonl/heat.jsonl" --into "$T/db" --run jl
exit 0
