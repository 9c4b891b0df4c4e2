#!/usr/bin/python3
"""Writes SGLang expert-distribution dumps with torch, the way SGLang's
ExpertDistributionRecorder does (python/sglang/srt/eplb/expert_distribution.py:
_StatAccumulator.dump, _DetailAccumulator.dump, _DetailSinglePassGatherer),
for the tests of the C reader (collector/import_sglang.c).

    /usr/bin/python3 tests/data/make_sglang_dumps.py small DIR
        stat.pt, per_pass_rank{0,1}.pt, per_token_rank0.pt encoding HEAT of
        make_samples.py (a dense model layer 0, then 2 MoE layers x 4 experts)
    /usr/bin/python3 tests/data/make_sglang_dumps.py stat DIR [PASSES LAYERS EXPERTS DENSE SEED]
        one stat dump of the default buffer (1000 passes x 61 model layers x
        256 experts, the first 3 layers dense), counts drawn with SEED
    /usr/bin/python3 tests/data/make_sglang_dumps.py pass DIR NAME FIRST N [RANK]
        one per_pass dump of N forward passes from FIRST (small shape of
        'small'; pass k holds HEAT[k % 2]), for the follow tests
    /usr/bin/python3 tests/data/make_sglang_dumps.py ranks DIR TIME FIRST N RANKS
        the rank files of one per_pass dump call, named as SGLang names them
"""
import os
import sys

import torch

# HEAT[step][moe_layer][expert] of make_samples.py: forward passes 10, 11
HEAT = [
    [[3, 0, 1, 4], [2, 2, 2, 2]],
    [[2, 3, 0, 3], [1, 3, 3, 1]],
]
PASSES = [10, 11]
TOKENS = 4            # tokens per forward pass, top-2 routing
TOP_K_NUM = 8         # _DetailSinglePassGatherer._TOP_K_NUM
# physical_to_logical_map of make_samples.py: model layer 0 dense (trivial
# row), layers 1, 2 on 2 ranks x 3 slots; int64 as SGLang builds it
P2L = torch.tensor([[0, 1, 2, 3, 0, 1], [0, 1, 3, 2, 3, 0], [1, 2, 0, 3, 1, 2]],
                   dtype=torch.int64)
NUM_LAYERS, NUM_PHYSICAL = P2L.shape
NUM_LOGICAL = 4


def topk_ids(step):
    """topk_ids_of_layer [layers, tokens, 8] of physical ids, -1 padded (the
    gatherer resets to -1 and fills [:tokens, :top_k]); each token's two
    experts differ; logical expert e goes to its first physical slot."""
    t = torch.full((NUM_LAYERS, TOKENS, TOP_K_NUM), -1, dtype=torch.int32)
    for l in range(2):
        ids = [e for e, c in enumerate(HEAT[step][l]) for _ in range(c)]
        row = P2L[l + 1].tolist()
        for tok in range(TOKENS):
            for k, e in enumerate((ids[tok], ids[tok + TOKENS])):
                t[l + 1, tok, k] = row.index(e)
    return t


def global_physical_count(ids):
    """_convert_per_token_to_global_physical_count."""
    flat = ids.reshape(NUM_LAYERS, -1)
    mask = flat != -1
    ans = torch.zeros((NUM_LAYERS, NUM_PHYSICAL), dtype=ids.dtype)
    ans.scatter_add_(dim=1, index=flat.masked_fill(~mask, 0).long(), src=mask.int())
    return ans


def logical_count(buffer, p2l, num_logical):
    """_convert_global_physical_count_to_logical_count."""
    n = buffer.shape[0]
    out = torch.zeros((n, p2l.shape[0], num_logical), dtype=buffer.dtype)
    out.scatter_add_(dim=2, index=p2l.unsqueeze(0).expand(n, -1, -1).to(torch.int64),
                     src=buffer)
    return out


def small(d):
    os.makedirs(d, exist_ok=True)
    # stat: a circular buffer of 3 slots, 2 filled; written by rank 0 only
    buf = torch.zeros((3, NUM_LAYERS, NUM_PHYSICAL), dtype=torch.int32)
    for i in range(2):
        buf[i] = global_physical_count(topk_ids(i))
    torch.save(dict(rank=0, logical_count=logical_count(buf, P2L, NUM_LOGICAL),
                    average_utilization_rate_over_window=None), os.path.join(d, "stat.pt"))
    # per_pass: each rank counts the tokens it routed; rank 0 half of each
    # physical count (rounded down), rank 1 the rest
    for rank in range(2):
        records = []
        for i, fp in enumerate(PASSES):
            g = global_physical_count(topk_ids(i))
            part = g // 2 if rank == 0 else g - g // 2
            records.append(dict(forward_pass_id=fp, rank=rank, gatherer_key="primary",
                                global_physical_count=part.cpu().clone()))
        torch.save(dict(records=records, last_physical_to_logical_map=P2L),
                   os.path.join(d, "per_pass_rank%d.pt" % rank))
    # per_token: one rank saw every token
    records = []
    for i, fp in enumerate(PASSES):
        ids = topk_ids(i)
        records.append(dict(forward_pass_id=fp, rank=0, gatherer_key="primary",
                            input_ids=[100 + t for t in range(TOKENS)],
                            positions=list(range(TOKENS)),
                            extend_seq_lens=[TOKENS] if i == 0 else None,
                            forward_mode=1 if i == 0 else 2,
                            topk_ids_of_layer=ids[:, :TOKENS, :].clone().cpu(),
                            misc_objects=[],
                            global_physical_count=global_physical_count(ids)))
    torch.save(dict(records=records, last_physical_to_logical_map=P2L),
               os.path.join(d, "per_token_rank0.pt"))


def stat(d, passes=1000, layers=61, experts=256, dense=3, seed=1):
    """A full default buffer (expert_distribution_recorder_buffer_size 1000)
    of a DeepSeek-V3-like model, skewed per expert, written as SGLang names it."""
    os.makedirs(d, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    rate = torch.rand((layers - dense, experts), generator=g) ** 3 * 400 + 8
    counts = torch.zeros((passes, layers, experts), dtype=torch.int32)
    for i in range(passes):
        counts[i, dense:] = torch.poisson(rate, generator=g).to(torch.int32)
    p2l = torch.arange(0, experts).repeat(layers, 1) % experts
    out = dict(rank=0, logical_count=logical_count(counts, p2l, experts),
               average_utilization_rate_over_window=None)
    torch.save(out, os.path.join(d, "expert_distribution_recorder_1765000000.25.pt"))


def per_pass(d, name, first, n, rank=0):
    os.makedirs(d, exist_ok=True)
    records = []
    for k in range(n):
        g = global_physical_count(topk_ids(k % 2))
        records.append(dict(forward_pass_id=first + k, rank=rank, gatherer_key="primary",
                            global_physical_count=g))
    # straight to its name, as SGLang's _dump_to_file does: a reader may see
    # it half written
    torch.save(dict(records=records, last_physical_to_logical_map=P2L), os.path.join(d, name))


def ranks(d, t, first, n, nranks):
    for r in range(nranks):
        per_pass(d, "expert_distribution_recorder_%s_%d.pt" % (t, r), first, n, r)


if __name__ == "__main__":
    what, d = sys.argv[1], sys.argv[2]
    if what == "small":
        small(d)
    elif what == "stat":
        stat(d, *[int(x) for x in sys.argv[3:]])
    elif what == "ranks":
        ranks(d, sys.argv[3], *[int(x) for x in sys.argv[4:]])
    elif what == "pass":
        per_pass(d, sys.argv[3], *[int(x) for x in sys.argv[4:]])
    else:
        sys.exit("usage: make_sglang_dumps.py small|stat|pass DIR ...")
    # the files are written and closed: skip the interpreter's teardown of
    # torch's modules (seconds of CPU for nothing)
    sys.stdout.flush()
    os._exit(0)
