#!/usr/bin/env python3
"""Writes the small engine-format samples in tests/data/ (standard library
only), so each file can be regenerated and read next to the numbers the
tests expect.  Run from the repository root:  python3 tests/data/make_samples.py

Every sample encodes the same tiny trace, HEAT below: 2 steps x 2 MoE
layers x 4 experts, so the importers' results can be compared cell by cell.
"""
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# HEAT[step][moe_layer][expert]: the trace every sample encodes (steps 10, 11).
STEPS = [10, 11]
HEAT = [
    [[3, 0, 1, 4], [2, 2, 2, 2]],
    [[2, 3, 0, 3], [1, 3, 3, 1]],
]
TOPK = 2


def write(path, data, mode="w"):
    full = os.path.join(HERE, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, mode) as f:
        f.write(data)


def jsonl():
    # Ours: a description line, step 10 as per-layer records (phase decode),
    # step 11 as one per-step record.
    lines = [json.dumps({"moetrace": 1, "layers": 2, "experts": 4, "topk": TOPK})]
    for l in range(2):
        lines.append(json.dumps({"step": STEPS[0], "layer": l, "phase": "decode",
                                 "counts": HEAT[0][l]}))
    lines.append(json.dumps({"step": STEPS[1], "phase": "prefill", "tokens": 8,
                             "counts": HEAT[1]}))
    write("jsonl/heat.jsonl", "\n".join(lines) + "\n")


def topk_rows(counts):
    """Token rows of TOPK distinct experts whose histogram is counts: deal
    the expert ids round-robin so no token picks one expert twice."""
    ids = []
    for e, c in enumerate(counts):
        ids += [e] * c
    assert len(ids) % TOPK == 0
    n = len(ids) // TOPK
    return [[ids[t + k * n] for k in range(TOPK)] for t in range(n)]


def megatron():
    # Megatron-LM router_trace.py records, model layer ids 1 and 3 (dense
    # layers 0 and 2 have no router).  Rank 0 routes layer 1's tokens of
    # step 10 and all of step 11; rank 1 the rest, so the ranks must be
    # summed.  An MTP record must be skipped.
    layer_ids = [1, 3]
    r0, r1 = [], []
    for si, step in enumerate(STEPS):
        for l, lid in enumerate(layer_ids):
            rows = topk_rows(HEAT[si][l])
            rec = {"step": si, "stage": "pre_dispatch", "block": "decoder", "layer": lid,
                   "num_tokens": len(rows), "topk": TOPK}
            if si == 0 and l == 1:
                half = len(rows) // 2
                a = dict(rec, rank=0, num_tokens=half, top_indices=rows[:half])
                b = dict(rec, rank=1, num_tokens=len(rows) - half, top_indices=rows[half:])
                r0.append(a)
                r1.append(b)
            elif si == 0:
                r1.append(dict(rec, rank=1, top_indices=rows))
            else:
                r0.append(dict(rec, rank=0, top_indices=rows))
    r0.append({"step": 1, "stage": "pre_dispatch", "block": "mtp", "mtp_idx": 0, "layer": 1,
               "rank": 0, "num_tokens": 1, "topk": TOPK, "top_indices": [[0, 1]]})
    r0.sort(key=lambda r: r["step"])
    r1.sort(key=lambda r: r["step"])
    write("megatron/router_trace_rank0.jsonl", "".join(json.dumps(r) + "\n" for r in r0))
    write("megatron/router_trace_rank1.jsonl", "".join(json.dumps(r) + "\n" for r in r1))


def megatron_pp():
    # Training with pipeline parallelism 2 and data parallelism 2 (4 ranks;
    # Megatron's rank order tp-cp-ep-dp-pp puts the pipeline outermost:
    # ranks 0, 1 are stage 0, ranks 2, 3 stage 1).  The model has 4 layers,
    # 2 per stage; model layers 1 and 3 are MoE.  Each stage names its
    # layers decoder.layers.0 and .1, so both MoE layers trace as layer 1.
    # The tracer in training mode stamps every record of an iteration with
    # it (advance_step(step_id=iteration)): each DP rank's 2 tokens come as
    # 2 microbatches of 1 token, so a file repeats (step, layer).
    files = {r: [] for r in range(4)}
    for si, step in enumerate(STEPS):
        for stage in range(2):
            rows = topk_rows(HEAT[si][stage])
            for dp in range(2):
                rank = stage * 2 + dp
                for mb in range(2):
                    tok = rows[dp * 2 + mb: dp * 2 + mb + 1]
                    files[rank].append({"step": step, "stage": "pre_dispatch",
                                        "block": "decoder", "layer": 1, "rank": rank,
                                        "num_tokens": len(tok), "topk": TOPK,
                                        "top_indices": tok})
    for r, recs in files.items():
        write(f"megatron/pp2/router_trace_rank{r}.jsonl",
              "".join(json.dumps(x) + "\n" for x in recs))


def megatron_tpe():
    # Megatron-LM's tokens-per-expert logs (activation_logging.py save_tpe):
    # {save}/tokens_per_expert/rank{R}.jsonl, per iteration one line per
    # layer, keys iter, block, layer, tpe = [[local expert counts] per
    # microbatch].  Expert parallelism 2: rank 0 holds experts 0, 1 and
    # rank 1 experts 2, 3; each count split over 2 microbatches (the first
    # takes the rounded-down half).  Model layer ids 1 and 3, plus an MTP
    # line that must be skipped.
    layer_ids = [1, 3]
    for rank in range(2):
        lines = []
        for si, step in enumerate(STEPS):
            for l, lid in enumerate(layer_ids):
                local = HEAT[si][l][rank * 2: rank * 2 + 2]
                mb0 = [c // 2 for c in local]
                mb1 = [c - a for c, a in zip(local, mb0)]
                lines.append({"iter": step, "block": "decoder", "layer": lid,
                              "tpe": [mb0, mb1]})
            lines.append({"iter": step, "block": "mtp", "mtp_idx": 0, "layer": 1,
                          "tpe": [[1, 1]]})
        write(f"megatron/tokens_per_expert/rank{rank}.jsonl",
              "".join(json.dumps(x) + "\n" for x in lines))


def safetensors(tensors, dtype="I64"):
    """tensors: {name: list of ints}; returns the file bytes."""
    fmt = {"I64": "<q", "I32": "<i", "F32": "<f"}[dtype]
    size = struct.calcsize(fmt)
    header, blobs, off = {}, [], 0
    for name, vals in tensors.items():
        raw = b"".join(struct.pack(fmt, v) for v in vals)
        header[name] = {"dtype": dtype, "shape": [len(vals)],
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def trtllm():
    # TensorRT-LLM expert_statistic.py: keys "{iter}_{layer}" (iterations
    # 10, 11; model layer ids 3, 4), one file per rank; the ranks sum to HEAT.
    write("trtllm/meta_info.json", json.dumps({"num_experts": 4, "num_experts_per_token": TOPK}))
    r0, r1 = {}, {}
    for si, it in enumerate(STEPS):
        for l, lid in enumerate([3, 4]):
            full = HEAT[si][l]
            part = [c // 2 for c in full]
            r0[f"{it}_{lid}"] = part
            r1[f"{it}_{lid}"] = [a - b for a, b in zip(full, part)]
    write("trtllm/rank0.safetensors", safetensors(r0), "wb")
    write("trtllm/rank1.safetensors", safetensors(r1), "wb")


def trtllm_lb():
    # TensorRT-LLM with its MoE load balancer on: the MoE modules call
    # ExpertStatistic.maybe_add_info(num_slots, token_selected_slots), so
    # meta_info.json's num_experts is the slot count (6 = 2 ranks x 3 slots)
    # and the tensors count global slots.  The placement is the load
    # balancer's YAML as generate_eplb_config.py writes it (yaml.dump:
    # keys sorted, lists inline).  An expert with two slots has its tokens
    # split between them (the first takes the rounded-down half); rank 0
    # holds half of each slot count (rounded down), rank 1 the rest.
    assign = {3: [0, 1, 3, 2, 3, 0], 4: [1, 0, 2, 3, 2, 1]}
    write("trtllm_lb/meta_info.json", json.dumps({"num_experts": 6,
                                                  "num_experts_per_token": TOPK}))
    r0, r1 = {}, {}
    for si, it in enumerate(STEPS):
        for l, lid in enumerate([3, 4]):
            slots = [0] * 6
            for e, c in enumerate(HEAT[si][l]):
                where = [p for p, x in enumerate(assign[lid]) if x == e]
                first = c // len(where)
                slots[where[0]] += first
                for p in where[1:]:
                    slots[p] += (c - first) // (len(where) - 1)
            part = [c // 2 for c in slots]
            r0[f"{it}_{lid}"] = part
            r1[f"{it}_{lid}"] = [a - b for a, b in zip(slots, part)]
    write("trtllm_lb/rank0.safetensors", safetensors(r0), "wb")
    write("trtllm_lb/rank1.safetensors", safetensors(r1), "wb")
    write("trtllm_lb/moe_load_balancer.yaml",
          "initial_global_assignments:\n"
          + "".join(f"  {lid}: [{', '.join(map(str, v))}]\n" for lid, v in assign.items())
          + "layer_updates_per_iter: 0\nnum_slots: 6\n")


def vllm_ascend_map():
    # A deployed placement for 2 ranks x 3 slots (2 redundant experts).
    layers = [[[0, 1, 3], [2, 3, 0]], [[1, 2, 0], [3, 1, 2]]]
    doc = {"moe_layer_count": 2, "layer_list": [
        {"layer_id": l, "device_count": 2, "device_list": [
            {"device_id": d, "device_expert": layers[l][d]} for d in range(2)]}
        for l in range(2)]}
    write("deployed/expert_map.json", json.dumps(doc, indent=1) + "\n")
    write("deployed/sglang_map.json", json.dumps(
        {"physical_to_logical_map": [sum(layers[l], []) for l in range(2)]}) + "\n")


class _FakeTensor:
    """An int32 tensor for torch_save: shape and row-major values."""

    def __init__(self, shape, values):
        self.shape, self.values = tuple(shape), list(values)


def torch_save(obj, path):
    """Writes obj as torch.save does (zip archive: archive/data.pkl, protocol
    2, tensors reduced to torch._utils._rebuild_tensor_v2 over storages in
    archive/data/N), without torch: stand-in modules make the pickle name
    torch.IntStorage and torch._utils._rebuild_tensor_v2 as torch would."""
    import collections
    import io
    import pickle
    import types
    import zipfile

    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    class IntStorage:
        pass
    IntStorage.__module__, IntStorage.__qualname__ = "torch", "IntStorage"

    def _rebuild_tensor_v2(*args):
        raise AssertionError("only for pickling")
    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    torch.IntStorage, utils._rebuild_tensor_v2, torch._utils = IntStorage, _rebuild_tensor_v2, utils
    storages = []

    class Storage:
        def __init__(self, values):
            self.key, self.values = str(len(storages)), values
            storages.append(self)

    def reduce_tensor(t):
        stride, acc = [], 1
        for s in reversed(t.shape):
            stride.insert(0, acc)
            acc *= s
        return (_rebuild_tensor_v2, (Storage(t.values), 0, t.shape, tuple(stride), False,
                                     collections.OrderedDict()))

    class Pickler(pickle.Pickler):
        dispatch_table = {_FakeTensor: reduce_tensor}

        def persistent_id(self, o):
            if isinstance(o, Storage):
                return ("storage", IntStorage, o.key, "cpu", len(o.values))
            return None

    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
    try:
        buf = io.BytesIO()
        Pickler(buf, protocol=2).dump(obj)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    full = os.path.join(HERE, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    def entry(name):  # fixed dates: the same bytes on every run
        return zipfile.ZipInfo("archive/" + name, date_time=(2025, 1, 1, 0, 0, 0))
    with zipfile.ZipFile(full, "w", zipfile.ZIP_STORED) as z:
        z.writestr(entry("data.pkl"), buf.getvalue())
        z.writestr(entry("byteorder"), "little")
        for st in storages:
            z.writestr(entry("data/" + st.key), struct.pack("<%di" % len(st.values), *st.values))
        z.writestr(entry("version"), "3\n")


# SGLang's physical_to_logical_map for the model's 3 layers: layer 0 is
# dense (SGLang's trivial row), layers 1 and 2 are the MoE layers of
# deployed/sglang_map.json (2 ranks x 3 slots).
SGLANG_MAP = [[0, 1, 2, 3, 0, 1], [0, 1, 3, 2, 3, 0], [1, 2, 0, 3, 1, 2]]


def sglang():
    # mode "stat": logical_count [buffer slots, model layers, experts], dense
    # layer 0 all zero; a circular buffer of 3 slots of which 2 were filled
    flat = []
    for si in range(2):
        flat += [0] * 4
        for l in range(2):
            flat += HEAT[si][l]
    flat += [0] * 12
    torch_save({"rank": 0, "logical_count": _FakeTensor((3, 3, 4), flat),
                "average_utilization_rate_over_window": None}, "sglang/stat.pt")
    # mode "per_pass": per rank, records of global_physical_count [layers, 6
    # slots]; a logical count goes to the expert's first slot for rank 0 and
    # its last slot for rank 1, rank 0 taking half (rounded down)
    for rank in range(2):
        records = []
        for si, step in enumerate(STEPS):
            phys = [[0] * 6 for _ in range(3)]
            for l in range(2):
                row = SGLANG_MAP[l + 1]
                for e, c in enumerate(HEAT[si][l]):
                    slots = [s for s, x in enumerate(row) if x == e]
                    share = c // 2 if rank == 0 else c - c // 2
                    phys[l + 1][slots[0] if rank == 0 else slots[-1]] += share
            records.append({"forward_pass_id": step, "rank": rank, "gatherer_key": "primary",
                            "global_physical_count": _FakeTensor((3, 6), sum(phys, []))})
        torch_save({"records": records,
                    "last_physical_to_logical_map": _FakeTensor((3, 6), sum(SGLANG_MAP, []))},
                   "sglang/per_pass_rank%d.pt" % rank)


def csv():
    rows = ["step,layer,expert,tokens"]
    for si, step in enumerate(STEPS):
        for l in range(2):
            for e in range(4):
                rows.append(f"{step},{l},{e},{HEAT[si][l][e]}")
    write("heat.csv", "\n".join(rows) + "\n")


if __name__ == "__main__":
    jsonl()
    megatron()
    megatron_pp()
    megatron_tpe()
    trtllm()
    trtllm_lb()
    vllm_ascend_map()
    sglang()
    csv()
    print("wrote the samples under", HERE, file=sys.stderr)
