#!/bin/sh
# A key given twice is refused wherever moetrace reads JSON or YAML, naming
# the key, where json-c (and PyYAML) would keep the last one without a
# word: a tensor key twice in a safetensors header (pointing at other
# data), data_offsets twice in one tensor's entry, num_experts twice in
# TensorRT-LLM's meta_info.json, physical_to_logical_map twice in a
# --deployed map, num_slots twice in a load-balancer YAML, and a key twice
# inside a nested object of a JSON line.  Exit 2, nothing written.
. "$(dirname "$0")/lib.sh"
D="$MOETRACE_TOP/tests/data"

bad() {
	f=$1 re=$2
	shift 2
	expect_status 2 mt import "$f" --into "$T/new.db" "$@"
	expect_grep "$T/err" "$re"
	[ ! -e "$T/new.db" ] || fail "a refused import of $f left a database"
}

# TensorRT-LLM: HEADER's text replaces rank0's header (data as it was)
trt() {
	rm -rf "$T/trt"
	mkdir "$T/trt"
	cp "$D"/trtllm/* "$T/trt/"
	python3 - "$T/trt/rank0.safetensors" "$1" <<'PY' || fail "cannot write the header"
import struct, sys
p = sys.argv[1]
b = open(p, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = sys.argv[2].encode()
open(p, "wb").write(struct.pack("<Q", len(h)) + h + b[8 + n:])
PY
}
e='"dtype": "I64", "shape": [4]'
trt "{\"10_3\": {$e, \"data_offsets\": [0, 32]}, \"10_4\": {$e, \"data_offsets\": [32, 64]},
 \"11_3\": {$e, \"data_offsets\": [64, 96]}, \"11_4\": {$e, \"data_offsets\": [96, 128]},
 \"10_3\": {$e, \"data_offsets\": [96, 128]}}"
bad "$T/trt" "rank0.safetensors: header: field '10_3' appears twice \\(which one is meant\\?\\)"
trt "{\"10_3\": {$e, \"data_offsets\": [0, 32], \"data_offsets\": [96, 128]},
 \"10_4\": {$e, \"data_offsets\": [32, 64]}, \"11_3\": {$e, \"data_offsets\": [64, 96]},
 \"11_4\": {$e, \"data_offsets\": [96, 128]}}"
bad "$T/trt" "rank0.safetensors: header: field '10_3.data_offsets' appears twice"
cp "$D/trtllm/rank0.safetensors" "$T/trt/"
printf '{"num_experts": 4, "num_experts_per_token": 2, "num_experts": 8}' >"$T/trt/meta_info.json"
bad "$T/trt" "meta_info.json' line 1: field 'num_experts' appears twice"
# the files as they were import (the helper changed nothing else)
cp "$D/trtllm/meta_info.json" "$T/trt/"
expect_status 0 mt import "$T/trt" --into "$T/db" --run trt

# --deployed maps: SGLang's, vllm-ascend's, TensorRT-LLM's YAML
printf '{"physical_to_logical_map": [[0, 1, 3, 2, 3, 0], [1, 2, 0, 3, 1, 2]],\n "physical_to_logical_map": [[0, 1, 2, 3, 3, 0], [1, 2, 0, 3, 1, 2]]}\n' >"$T/sg.json"
bad "$D/heat.csv" "sg.json' line 2: field 'physical_to_logical_map' appears twice" --deployed "$T/sg.json" --ranks 2
sed 's/"device_id": 1,/"device_id": 1, "device_id": 1,/' "$D/deployed/expert_map.json" >"$T/vl.json"
grep -q '"device_id": 1, "device_id": 1' "$T/vl.json" || fail "the sample map changed: no device_id 1"
bad "$D/heat.csv" "vl.json' line [0-9]*: field 'layer_list\\[0\\]\\.device_list\\[1\\]\\.device_id' appears twice" \
	--deployed "$T/vl.json"
printf 'num_slots: 6\ninitial_global_assignments:\n  0: [0, 1, 3, 2, 3, 0]\n  1: [1, 0, 2, 3, 2, 1]\nnum_slots: 8\n' >"$T/lb.yaml"
bad "$D/heat.csv" "lb.yaml' line 5: num_slots appears twice \\(first at line 1; which one is meant\\?\\)" \
	--deployed "$T/lb.yaml" --ranks 2
printf 'num_slots: 6\ninitial_global_assignments:\n  0: [0, 1, 3, 2, 3, 0]\ninitial_global_assignments:\n  1: [1, 0, 2, 3, 2, 1]\n' >"$T/lb.yaml"
bad "$D/heat.csv" "lb.yaml' line 4: initial_global_assignments appears twice" --deployed "$T/lb.yaml" --ranks 2
expect_status 0 mt place "$T/db" --run trt --algo static --ranks 2 --slots 2 -o "$T/ok.yaml" --format trtllm
printf 'layer_updates_per_iter: 0\n' >>"$T/ok.yaml"
expect_status 2 mt place "$T/db" --run trt --algo static --ranks 2 --slots 2 --current "$T/ok.yaml"
expect_grep "$T/err" "ok.yaml' line [0-9]*: layer_updates_per_iter appears twice"

# a key twice inside a nested value of a JSON line, and of a Megatron line
printf '{"step":0,"layer":0,"counts":[1,2],"x":{"a":1,"b":{"c":2,"c":3}}}\n' >"$T/n.jsonl"
bad "$T/n.jsonl" "n.jsonl:1: field 'x.b.c' appears twice"
sed '1s/"rank": 0,/"rank": 0, "rank": 1,/' "$D/megatron/router_trace_rank0.jsonl" >"$T/router_trace_rank0.jsonl"
bad "$T/router_trace_rank0.jsonl" "router_trace_rank0.jsonl:1: field 'rank' appears twice"
exit 0
