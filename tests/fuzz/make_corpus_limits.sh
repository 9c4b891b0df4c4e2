#!/bin/sh
# Writes the limit-* seeds of tests/fuzz/corpus/<target>/: values at and
# just past the type limits and the store's own (docs/schema.md, "Limits"):
# steps at +-(2^53 - 1) and at INT64_MAX/MIN, counts at UINT32_MAX and
# 2^32, ids of 2^32 + k, huge layer ids, token totals past 2^53.  Each
# target's invariants say what must happen to them (accepted within the
# limits, or refused naming the file).  Needs python3 only; make_corpus.sh
# runs it last.  Usage: sh tests/fuzz/make_corpus_limits.sh
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
python3 - "$top/tests/fuzz/corpus" <<'PY'
import json, struct, sys, os

c = sys.argv[1]
I64MAX, I64MIN, S = 2**63 - 1, -2**63, 2**53 - 1

def put(target, name, data):
    os.makedirs(os.path.join(c, target), exist_ok=True)
    with open(os.path.join(c, target, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

# ---- csv: step,layer,expert,tokens
def csv(rows, header="step,layer,expert,tokens"):
    return header + "\n" + "".join(",".join(str(x) for x in r) + "\n" for r in rows)
put("csv", "limit-step-max.csv", csv([(-S, 0, 0, 1), (S, 0, 1, 2)]))
put("csv", "limit-step-int64max.csv", csv([(0, 0, 0, 1), (I64MAX, 0, 0, 1)]))
put("csv", "limit-step-int64min.csv", csv([(I64MIN, 0, 0, 1), (0, 0, 0, 1)]))
put("csv", "limit-step-overflow.csv", csv([(2**63, 0, 0, 1)]))
put("csv", "limit-step-past.csv", csv([(S, 0, 0, 1), (S + 1, 0, 0, 1)]))
put("csv", "limit-tokens-u32max.csv", csv([(0, 0, 0, 2**32 - 1), (0, 1, 0, 2**32 - 1)]))
put("csv", "limit-tokens-2p32.csv", csv([(0, 0, 0, 2**32)]))
put("csv", "limit-expert-2p32.csv", csv([(0, 0, 2**32 + 1, 1)]))
put("csv", "limit-expert-max.csv", csv([(0, 0, 65535, 1)]))
put("csv", "limit-layer-huge.csv", csv([(0, 2**31, 0, 1)]))
put("csv", "limit-layer-2p32.csv", csv([(0, 2**32 + 3, 0, 1)]))

# ---- jsonl: ours and Megatron-LM's on the same bytes
def jl(*objs):
    return "".join(json.dumps(o) + "\n" for o in objs)
put("jsonl", "limit-step-max.jsonl", jl({"step": -S, "layer": 0, "counts": [1, 2]},
                                        {"step": S, "layer": 0, "counts": [3, 4]}))
put("jsonl", "limit-step-int64.jsonl", jl({"step": I64MIN, "layer": 0, "counts": [1]},
                                          {"step": I64MAX, "layer": 0, "counts": [1]}))
put("jsonl", "limit-step-past.jsonl", jl({"step": S + 1, "layer": 0, "counts": [1]}))
put("jsonl", "limit-counts-u32.jsonl", jl({"step": 0, "layer": 0, "counts": [2**32 - 1, 0]},
                                          {"step": 0, "layer": 1, "counts": [2**32, 0]}))
put("jsonl", "limit-tokens.jsonl", jl({"step": 0, "layer": 0, "tokens": S, "counts": [1]},
                                      {"step": 1, "layer": 0, "tokens": I64MAX, "counts": [1]}))
put("jsonl", "limit-layer-huge.jsonl", jl({"step": 0, "layer": 2**32 + 1, "counts": [1]}))
put("jsonl", "limit-header-huge.jsonl", jl({"moetrace": 1, "layers": 2**32 + 2, "experts": 2**31,
                                           "first_layer": I64MAX}, {"step": 0, "layer": 0,
                                                                    "counts": [1]}))
put("jsonl", "limit-megatron-ids.jsonl", jl(
    {"step": 0, "layer": 0, "top_indices": [[0, 1], [2**32 + 1, 3]], "num_experts": 4},
    {"step": I64MAX, "layer": 0, "top_indices": [[0, 1]], "num_experts": 4}))
put("jsonl", "limit-megatron-tpe.jsonl", jl(
    {"step": S, "layer": 2**40, "tokens_per_expert": [2**32 - 1, 2**32]}))

# ---- safetensors: one TensorRT-LLM rank file, keys "{iter}_{layer}"
DT = {"I64": ("<q", 8), "U64": ("<Q", 8), "I32": ("<i", 4)}
def st(tensors, dtype="I64"):
    fmt, size = DT[dtype]
    head, data = {}, b""
    for k, v in tensors.items():
        b = b"".join(struct.pack(fmt, x) for x in v)
        head[k] = {"dtype": dtype, "shape": [len(v)], "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    h = json.dumps(head).encode()
    return struct.pack("<Q", len(h)) + h + data
put("safetensors", "limit-key-step-max", st({"%d_0" % S: [1, 2], "0_0": [3, 4]}))
put("safetensors", "limit-key-int64max", st({"%d_0" % I64MAX: [1, 2], "0_0": [3, 4]}))
put("safetensors", "limit-key-overflow", st({"99999999999999999999_0": [1, 2]}))
put("safetensors", "limit-key-layer-huge", st({"0_%d" % (2**32 + 1): [1, 2]}))
put("safetensors", "limit-counts-u32max", st({"0_0": [2**32 - 1, 0]}))
put("safetensors", "limit-counts-2p32", st({"0_0": [2**32, 0]}))
put("safetensors", "limit-counts-u64max", st({"0_0": [2**64 - 1, 0]}, "U64"))
put("safetensors", "limit-counts-i64min", st({"0_0": [I64MIN, 0]}))
put("safetensors", "limit-counts-i32min", st({"0_0": [-2**31, 0]}, "I32"))

# ---- codec: blob headers at the count limits
def varint(n):
    out = b""
    while True:
        b = n & 0x7f
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out
put("codec", "limit-raw-u32max", b"\x00" + varint(3) + b"\xff\xff\xff\xff" * 3)
put("codec", "limit-count-65537", b"\x00" + varint(65537))
put("codec", "limit-count-2p32", b"\x01" + varint(2**32 + 1) + b"\x00")
put("codec", "limit-count-2p64", b"\x00" + varint(2**64 - 1))
put("codec", "limit-rice-escape-u32max", b"\x01" + varint(1) + b"\x00" + b"\xff\xff\xff" + b"\xff\xff\xff\xff")

# ---- sqlfn: mode byte (bit 0 blob placement, bits 1-3 ranks, bits 4-7
# counts_at index + 2), counts blob length, counts blob, placement
def sq(mode, counts_blob, placement):
    return bytes([mode, len(counts_blob)]) + counts_blob + placement
u32max = b"\x00" + varint(2) + b"\xff\xff\xff\xff" * 2
put("sqlfn", "limit-u32max-heat", sq(2 | (3 << 4), u32max, b"[0,1]"))
put("sqlfn", "limit-ids-2p32", sq(2, u32max, b"[4294967297,9223372036854775807]"))
put("sqlfn", "limit-ids-int64min", sq(4, u32max, b"[[-9223372036854775808],[1]]"))
put("sqlfn", "limit-ids-overflow", sq(4, u32max, b"[[99999999999999999999],[1]]"))
put("sqlfn", "limit-blob-2p32", sq(3, u32max, struct.pack("<ii", 2**31 - 1, -2**31)))

# ---- heat files (place --heat)
put("heat", "limit-heat-huge.json", json.dumps({"heat": [[1.7976931348623157e308, 1]]}))
put("heat", "limit-heat-int64.json", json.dumps({"heat": [[I64MAX, 2**64]]}))
put("heat", "limit-layout-2p32.json", json.dumps({"heat": [[1, 2]], "ranks": 2**32 + 2, "slots": 1}))

# ---- placement files: byte 0 picks fuzz_format.c's shape (0: 2 x 4 on 2 x 2)
def fmt(shape, name, text):
    put("format", name, bytes([shape]) + text.encode())
fmt(0, "limit-expert-2p32.json",
    json.dumps({"physical_to_logical_map": [[0, 1, 2, 2**32 + 3], [1, 0, 3, 2]]}))
fmt(0, "limit-layer-int64.json", json.dumps({"layer_list": [
    {"layer_id": I64MAX, "device_list": [{"device_expert": [0, 1]}, {"device_expert": [2, 3]}]},
    {"layer_id": 1, "device_list": [{"device_expert": [0, 1]}, {"device_expert": [2, 3]}]}]}))
fmt(1, "limit-trtllm-keys.yaml", "num_slots: 6\ninitial_global_assignments:\n"
    "  4294967299: [0, 1, 2, 3, 0, 1]\n  9223372036854775808: [0, 1, 2, 3, 0, 1]\n")
PY
