#!/usr/bin/env python3
"""Records the expert routing of a small, randomly initialised torch MoE
model through prefill and decode steps with moetrace's router hook.

    python3 examples/torch_moe.py [--db moe.db] [--steps 32] [--style mixtral|deepseek]
    moetrace info moe.db

The model is a toy (embedding, per-layer MoE feed-forward blocks, a
language-model head; no attention) whose module names follow Mixtral
(`model.layers.N.block_sparse_moe`, a Linear gate returning logits)
or DeepSeek (`model.layers.N.mlp`, a gate returning top-k ids and
weights), each with a list of expert modules.  Needs Debian's
python3-torch and libmoetrace (make; MOETRACE_LIB=path/libmoetrace.so if
it is not at the repository root).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "collector", "python"))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import moetrace  # noqa: E402


class Expert(nn.Module):
    def __init__(self, hidden, inter):
        super().__init__()
        self.w1 = nn.Linear(hidden, inter, bias=False)
        self.w2 = nn.Linear(inter, hidden, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)))


class TopKGate(nn.Module):
    """DeepSeek-style gate: returns (topk_idx, topk_weight)."""

    def __init__(self, hidden, experts, topk):
        super().__init__()
        self.topk = topk
        self.weight = nn.Parameter(torch.randn(experts, hidden) / hidden ** 0.5)

    def forward(self, x):
        scores = F.linear(x, self.weight).softmax(dim=-1)
        w, idx = torch.topk(scores, self.topk, dim=-1)
        return idx, w / w.sum(dim=-1, keepdim=True)


class SparseMoe(nn.Module):
    def __init__(self, hidden, inter, experts, topk, style):
        super().__init__()
        self.topk, self.style = topk, style
        if style == "mixtral":
            self.gate = nn.Linear(hidden, experts, bias=False)  # router logits
        else:
            self.gate = TopKGate(hidden, experts, topk)
        self.experts = nn.ModuleList(Expert(hidden, inter) for _ in range(experts))

    def forward(self, x):
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        if self.style == "mixtral":
            logits = self.gate(x)
            w, idx = torch.topk(logits.softmax(dim=-1), self.topk, dim=-1)
            w = w / w.sum(dim=-1, keepdim=True)
        else:
            idx, w = self.gate(x)
        out = torch.zeros_like(x)
        for e in idx.unique().tolist():
            tok, slot = (idx == e).nonzero(as_tuple=True)
            out[tok] += w[tok, slot, None] * self.experts[e](x[tok])
        return out.reshape(shape)


class Layer(nn.Module):
    def __init__(self, hidden, inter, experts, topk, style):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        moe = SparseMoe(hidden, inter, experts, topk, style)
        if style == "mixtral":
            self.block_sparse_moe = moe
        else:
            self.mlp = moe

    def forward(self, x):
        moe = self.block_sparse_moe if hasattr(self, "block_sparse_moe") else self.mlp
        return x + moe(self.norm(x))


class Body(nn.Module):
    def __init__(self, vocab, hidden, inter, layers, experts, topk, style):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, hidden)
        self.layers = nn.ModuleList(Layer(hidden, inter, experts, topk, style)
                                    for _ in range(layers))


class TinyMoeForCausalLM(nn.Module):
    def __init__(self, vocab=512, hidden=64, inter=128, layers=4, experts=16, topk=2,
                 style="mixtral"):
        super().__init__()
        self.model = Body(vocab, hidden, inter, layers, experts, topk, style)
        self.lm_head = nn.Linear(hidden, vocab, bias=False)

    def forward(self, input_ids):
        x = self.model.embed_tokens(input_ids)
        for layer in self.model.layers:
            x = layer(x)
        return self.lm_head(x)


def generate(model, prompt, steps):
    """Greedy decoding without a KV cache: the prefill sees the prompt,
    each decode step only the newest token (enough to drive the routers)."""
    with torch.no_grad():
        logits = model(prompt)
        tok = logits[:, -1].argmax(dim=-1, keepdim=True)
        out = [tok]
        for _ in range(steps):
            logits = model(tok)
            tok = logits[:, -1].argmax(dim=-1, keepdim=True)
            out.append(tok)
    return torch.cat(out, dim=1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", default="moe.db")
    ap.add_argument("--run", default=None)
    ap.add_argument("--steps", type=int, default=32, help="decode steps after the prefill")
    ap.add_argument("--batch", type=int, default=8, help="sequences decoded together")
    ap.add_argument("--prompt-len", type=int, default=16)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--experts", type=int, default=16)
    ap.add_argument("--topk", type=int, default=2)
    ap.add_argument("--style", choices=("mixtral", "deepseek"), default="mixtral")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)

    torch.manual_seed(a.seed)
    model = TinyMoeForCausalLM(layers=a.layers, experts=a.experts, topk=a.topk,
                               style=a.style).eval()
    run = a.run or "tiny-%s-%d" % (a.style, os.getpid())
    with moetrace.Recorder(a.db, run, layers=a.layers, experts=a.experts, topk=a.topk,
                           ranks=4, slots=(a.experts + 3) // 4, model="tiny-" + a.style,
                           source="examples/torch_moe.py") as rec:
        hook = moetrace.attach(model, rec)
        prompt = torch.randint(0, 512, (a.batch, a.prompt_len))
        generate(model, prompt, a.steps)
        hook.remove()
        rec.flush()
        st = rec.stats()
    print("recorded %d steps (%d dropped) of %d layers x %d experts into %s, run '%s'"
          % (st["recorded"], st["dropped"], a.layers, a.experts, a.db, run))
    print("MoE blocks hooked: %s ... %s" % (hook.blocks[0][0], hook.blocks[-1][0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
