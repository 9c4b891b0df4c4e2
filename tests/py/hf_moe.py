"""Small torch stand-ins for the MoE blocks of Hugging Face transformers, in
the module structure, attribute names, return values and call styles of
the real ones, for the router hook's tests (tests/py/test_torch_hook.py).

Each family exists in the transformers v4 layout (experts an
nn.ModuleList, the selection inside the block or returned by the gate)
and the v5 layout (one fused experts module called as
``experts(hidden_states, top_k_index, top_k_weights)``); which release and
file each follows is in tests/data/README.md ("Hugging Face MoE
stand-ins").  Only the routing is reproduced faithfully; the expert maths
is a small SwiGLU.

Every block appends the expert ids it actually dispatched (tokens x k) to
``block.truth``: the test compares what the hook recorded with them, and
the hook never reads them.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Cfg:
    def __init__(self, **kw):
        self.hidden_size = 16
        self.intermediate_size = 8
        self.moe_intermediate_size = 8
        self.num_experts = 8
        self.num_local_experts = 8
        self.n_routed_experts = 8
        self.num_experts_per_tok = 2
        self.n_group = 4
        self.topk_group = 2
        self.norm_topk_prob = True
        self.routed_scaling_factor = 2.5
        self.n_shared_experts = 1
        self.first_k_dense_replace = 1
        self.topk_method = "greedy"
        self.__dict__.update(kw)


class MLP(nn.Module):
    """A dense SwiGLU (one v4 expert, a shared expert, a dense layer)."""

    def __init__(self, cfg, inter=None):
        super().__init__()
        inter = inter or cfg.intermediate_size
        self.gate_proj = nn.Linear(cfg.hidden_size, inter, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, inter, bias=False)
        self.down_proj = nn.Linear(inter, cfg.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def _log(block, ids):
    if not hasattr(block, "truth"):
        block.truth = []
    block.truth.append(ids.detach().reshape(ids.shape[0], -1).clone())


# ---- transformers v4 layouts -----------------------------------------------------------

class MixtralSparseMoeBlockV4(nn.Module):
    """modeling_mixtral.py (v4): gate nn.Linear (logits), softmax + top-k in
    the block, loop over the hit experts; returns (out, router_logits)."""

    def __init__(self, cfg):
        super().__init__()
        self.hidden_dim = cfg.hidden_size
        self.num_experts = cfg.num_local_experts
        self.top_k = cfg.num_experts_per_tok
        self.gate = nn.Linear(self.hidden_dim, self.num_experts, bias=False)
        self.experts = nn.ModuleList([MLP(cfg) for _ in range(self.num_experts)])
        self.jitter_noise = 0.0

    def route(self, router_logits):
        w = F.softmax(router_logits, dim=1, dtype=torch.float)
        w, sel = torch.topk(w, self.top_k, dim=-1)
        return w / w.sum(dim=-1, keepdim=True), sel

    def forward(self, hidden_states):
        b, s, h = hidden_states.shape
        hidden_states = hidden_states.view(-1, h)
        router_logits = self.gate(hidden_states)
        w, sel = self.route(router_logits)
        _log(self, sel)
        out = torch.zeros_like(hidden_states)
        mask = F.one_hot(sel, num_classes=self.num_experts).permute(2, 1, 0)
        for e in (mask.sum(dim=(-1, -2)) > 0).nonzero(as_tuple=True)[0].tolist():
            idx, top_x = torch.where(mask[e])
            cur = hidden_states[None, top_x].reshape(-1, h)
            out.index_add_(0, top_x, self.experts[e](cur) * w[top_x, idx, None])
        return out.reshape(b, s, h), router_logits


class Qwen2MoeSparseMoeBlockV4(MixtralSparseMoeBlockV4):
    """modeling_qwen2_moe.py (v4): as Mixtral plus shared_expert and
    shared_expert_gate (an nn.Linear(hidden, 1) that is no router);
    norm_topk_prob False (Qwen1.5-MoE: k=4 of 60)."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.num_experts = cfg.num_experts
        self.norm_topk_prob = cfg.norm_topk_prob
        self.shared_expert = MLP(cfg)
        self.shared_expert_gate = nn.Linear(cfg.hidden_size, 1, bias=False)

    def route(self, router_logits):
        w = F.softmax(router_logits, dim=1, dtype=torch.float)
        w, sel = torch.topk(w, self.top_k, dim=-1)
        if self.norm_topk_prob:
            w = w / w.sum(dim=-1, keepdim=True)
        return w, sel

    def forward(self, hidden_states):
        out, logits = super().forward(hidden_states)
        x = hidden_states.reshape(-1, hidden_states.shape[-1])
        shared = torch.sigmoid(self.shared_expert_gate(x)) * self.shared_expert(x)
        return out + shared.reshape(out.shape), logits


class Qwen3MoeSparseMoeBlockV4(Qwen2MoeSparseMoeBlockV4):
    """modeling_qwen3_moe.py (v4): Qwen2-MoE without the shared expert."""

    def __init__(self, cfg):
        MixtralSparseMoeBlockV4.__init__(self, cfg)
        self.num_experts = cfg.num_experts
        self.norm_topk_prob = cfg.norm_topk_prob

    def forward(self, hidden_states):
        return MixtralSparseMoeBlockV4.forward(self, hidden_states)


OlmoeSparseMoeBlockV4 = Qwen3MoeSparseMoeBlockV4      # modeling_olmoe.py (v4): same shape
Qwen3NextSparseMoeBlockV4 = Qwen2MoeSparseMoeBlockV4  # modeling_qwen3_next.py (v4)


class DeepseekV2MoEGateV4(nn.Module):
    """DeepseekV2MoEGate (v4): softmax scores, greedy top-k; returns
    (topk_idx, topk_weight)."""

    def __init__(self, cfg):
        super().__init__()
        self.top_k = cfg.num_experts_per_tok
        self.num_experts = cfg.n_routed_experts
        self.routed_scaling_factor = cfg.routed_scaling_factor
        self.weight = nn.Parameter(torch.randn(self.num_experts, cfg.hidden_size))

    def forward(self, hidden_states):
        b, s, h = hidden_states.shape
        logits = F.linear(hidden_states.view(-1, h).float(), self.weight.float())
        scores = logits.softmax(dim=-1, dtype=torch.float32)
        w, idx = torch.topk(scores, k=self.top_k, dim=-1, sorted=False)
        return idx, w * self.routed_scaling_factor


class DeepseekV2MoEV4(nn.Module):
    """DeepseekV2MoE (v4): gate returns ids; moe() sorts the tokens by
    expert and calls each expert once on its slice."""

    def __init__(self, cfg):
        super().__init__()
        self.num_experts_per_tok = cfg.num_experts_per_tok
        self.experts = nn.ModuleList([MLP(cfg, cfg.moe_intermediate_size)
                                      for _ in range(cfg.n_routed_experts)])
        self.gate = DeepseekV2MoEGateV4(cfg)
        self.shared_experts = MLP(cfg, cfg.moe_intermediate_size * cfg.n_shared_experts)

    def moe(self, x, topk_ids, topk_weight):
        cnts = topk_ids.new_zeros((topk_ids.shape[0], len(self.experts)))
        cnts.scatter_(1, topk_ids, 1)
        tokens_per_expert = cnts.sum(dim=0)
        indices = topk_ids.view(-1).argsort()
        sorted_tokens = x[indices // topk_ids.shape[1]]
        outputs, start = [], 0
        for i, n in enumerate(tokens_per_expert.tolist()):
            if n == 0:
                continue
            outputs.append(self.experts[i](sorted_tokens[start:start + n]))
            start += n
        outs = torch.cat(outputs, dim=0)
        new_x = torch.empty_like(outs)
        new_x[indices] = outs
        return (new_x.view(*topk_ids.shape, -1) * topk_weight.unsqueeze(-1)).sum(dim=1)

    def forward(self, hidden_states):
        shape = hidden_states.shape
        idx, w = self.gate(hidden_states)
        _log(self, idx)
        out = self.moe(hidden_states.view(-1, shape[-1]), idx, w).view(*shape)
        return out + self.shared_experts(hidden_states)


def _grouped_topk(scores, bias, n_group, topk_group, top_k):
    """DeepSeek-V3's selection: scores + correction bias, the top
    topk_group groups by the sum of their two best, then top_k within."""
    E = scores.shape[-1]
    choice = scores.view(-1, E) + bias.unsqueeze(0)
    group_scores = choice.view(-1, n_group, E // n_group).topk(2, dim=-1)[0].sum(dim=-1)
    group_idx = torch.topk(group_scores, k=topk_group, dim=-1, sorted=False)[1]
    group_mask = torch.zeros_like(group_scores).scatter_(1, group_idx, 1)
    score_mask = group_mask.unsqueeze(-1).expand(-1, n_group, E // n_group).reshape(-1, E)
    choice = choice.masked_fill(~score_mask.bool(), 0.0)
    return torch.topk(choice, k=top_k, dim=-1, sorted=False)[1]


class DeepseekV3TopkRouterV4(nn.Module):
    """DeepseekV3TopkRouter (v4): sigmoid scores, grouped top-k with
    e_score_correction_bias inside the router; returns (ids, weights)."""

    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        self.top_k = cfg.num_experts_per_tok
        self.n_routed_experts = cfg.n_routed_experts
        self.n_group, self.topk_group = cfg.n_group, cfg.topk_group
        self.weight = nn.Parameter(torch.randn(self.n_routed_experts, cfg.hidden_size))
        self.register_buffer("e_score_correction_bias", torch.randn(self.n_routed_experts))

    def forward(self, hidden_states):
        hidden_states = hidden_states.view(-1, self.config.hidden_size)
        scores = F.linear(hidden_states.float(), self.weight.float()).sigmoid()
        idx = _grouped_topk(scores, self.e_score_correction_bias, self.n_group,
                            self.topk_group, self.top_k)
        w = scores.gather(1, idx)
        return idx, w / (w.sum(dim=-1, keepdim=True) + 1e-20)


class DeepseekV3MoEV4(nn.Module):
    """DeepseekV3MoE (v4): loops over every expert, calling those with tokens."""

    def __init__(self, cfg):
        super().__init__()
        self.experts = nn.ModuleList([MLP(cfg, cfg.moe_intermediate_size)
                                      for _ in range(cfg.n_routed_experts)])
        self.gate = DeepseekV3TopkRouterV4(cfg)
        self.shared_experts = MLP(cfg, cfg.moe_intermediate_size * cfg.n_shared_experts)

    def moe(self, x, idx, w):
        out = torch.zeros_like(x, dtype=w.dtype)
        mask = F.one_hot(idx, num_classes=len(self.experts)).permute(2, 0, 1)
        for e in range(len(self.experts)):
            tok, slot = torch.where(mask[e])
            if tok.numel() > 0:
                out.index_add_(0, tok, self.experts[e](x[tok]) * w[tok, slot].unsqueeze(-1))
        return out.type(x.dtype)

    def forward(self, hidden_states):
        shape = hidden_states.shape
        idx, w = self.gate(hidden_states)
        _log(self, idx)
        out = self.moe(hidden_states.view(-1, shape[-1]), idx, w).view(*shape)
        return out + self.shared_experts(hidden_states)


class GptOssTopKRouterV4(nn.Module):
    """GptOssTopKRouter (v4.55): top-k of the biased logits; returns
    (router_scores: tokens x experts, router_indices)."""

    def __init__(self, cfg):
        super().__init__()
        self.top_k = cfg.num_experts_per_tok
        self.num_experts = cfg.num_local_experts
        self.hidden_dim = cfg.hidden_size
        self.weight = nn.Parameter(torch.randn(self.num_experts, self.hidden_dim))
        self.bias = nn.Parameter(torch.randn(self.num_experts))

    def forward(self, hidden_states):
        hidden_states = hidden_states.reshape(-1, self.hidden_dim)
        logits = F.linear(hidden_states, self.weight, self.bias)
        top_value, idx = torch.topk(logits, self.top_k, dim=-1)
        top_value = F.softmax(top_value, dim=1, dtype=top_value.dtype)
        return torch.zeros_like(logits).scatter_(1, idx, top_value), idx


class FusedExperts(nn.Module):
    """Experts as 3-D parameters, looping over the hit experts (v5's
    MixtralExperts; GPT-OSS's GptOssExperts)."""

    def __init__(self, cfg):
        super().__init__()
        self.num_experts = cfg.num_local_experts
        H, I = cfg.hidden_size, cfg.moe_intermediate_size
        self.gate_up_proj = nn.Parameter(torch.randn(self.num_experts, 2 * I, H) / H ** 0.5)
        self.down_proj = nn.Parameter(torch.randn(self.num_experts, H, I) / I ** 0.5)

    def run(self, hidden_states, top_k_index, top_k_weights):
        out = torch.zeros_like(hidden_states)
        mask = F.one_hot(top_k_index, num_classes=self.num_experts).permute(2, 1, 0)
        for e in torch.greater(mask.sum(dim=(-1, -2)), 0).nonzero():
            e = e[0]
            if e == self.num_experts:
                continue
            pos, tok = torch.where(mask[e])
            gate, up = F.linear(hidden_states[tok], self.gate_up_proj[e]).chunk(2, dim=-1)
            cur = F.linear(F.silu(gate) * up, self.down_proj[e])
            w = top_k_weights[tok, pos, None] if top_k_weights.shape[-1] == top_k_index.shape[-1] \
                else top_k_weights.gather(1, top_k_index)[tok, pos, None]
            out.index_add_(0, tok, (cur * w).to(out.dtype))
        return out


class GptOssExpertsV4(FusedExperts):
    def forward(self, hidden_states, router_indices=None, routing_weights=None):
        return self.run(hidden_states, router_indices, routing_weights)


class GptOssMLPV4(nn.Module):
    """GptOssMLP (v4.55): experts called with keyword arguments."""

    def __init__(self, cfg):
        super().__init__()
        self.router = GptOssTopKRouterV4(cfg)
        self.experts = GptOssExpertsV4(cfg)

    def forward(self, hidden_states):
        b, s, h = hidden_states.shape
        scores, idx = self.router(hidden_states)
        _log(self, idx)
        out = self.experts(hidden_states.view(-1, h), router_indices=idx, routing_weights=scores)
        return out.view(b, s, h), scores


class Llama4RouterV4(nn.Linear):
    """Llama4Router (v4.51): an nn.Linear; top_k of the logits, scores
    sigmoid(-inf elsewhere) transposed to experts x tokens; returns
    (router_scores, router_logits)."""

    def __init__(self, cfg, transpose=True):
        super().__init__(cfg.hidden_size, cfg.num_local_experts, bias=False)
        self.num_experts = cfg.num_local_experts
        self.top_k = cfg.num_experts_per_tok
        self.transpose = transpose

    def forward(self, hidden_states):
        logits = super().forward(hidden_states)
        top_value, idx = torch.topk(logits, self.top_k, dim=1)
        scores = torch.full_like(logits, float("-inf")).scatter_(1, idx, top_value)
        if self.transpose:
            scores = scores.transpose(0, 1)
        self.last_idx = idx
        return torch.sigmoid(scores.float()).to(scores.dtype), logits


class Llama4TextExperts(nn.Module):
    """Llama4TextExperts: every expert runs on every (score-weighted) token."""

    def __init__(self, cfg):
        super().__init__()
        self.num_experts = cfg.num_local_experts
        self.hidden_size = cfg.hidden_size
        I = cfg.intermediate_size
        self.gate_up_proj = nn.Parameter(torch.randn(self.num_experts, cfg.hidden_size, 2 * I) / 4)
        self.down_proj = nn.Parameter(torch.randn(self.num_experts, I, cfg.hidden_size) / 4)

    def forward(self, hidden_states):
        hidden_states = hidden_states.view(self.gate_up_proj.shape[0], -1, self.hidden_size)
        gate, up = torch.bmm(hidden_states, self.gate_up_proj).chunk(2, dim=-1)
        return torch.bmm(up * F.silu(gate), self.down_proj).view(-1, self.hidden_size)


class Llama4TextMoeV4(nn.Module):
    """Llama4TextMoe (v4.51), the layer's ``feed_forward``."""

    transpose = True

    def __init__(self, cfg):
        super().__init__()
        self.top_k = cfg.num_experts_per_tok
        self.hidden_dim = cfg.hidden_size
        self.num_experts = cfg.num_local_experts
        self.experts = Llama4TextExperts(cfg)
        self.router = Llama4RouterV4(cfg, transpose=self.transpose)
        self.shared_expert = MLP(cfg)

    def forward(self, hidden_states):
        shape = hidden_states.shape
        hidden_states = hidden_states.reshape(-1, self.hidden_dim)
        scores, logits = self.router(hidden_states)
        _log(self, self.router.last_idx)
        st = scores if self.transpose else scores.transpose(0, 1)  # experts x tokens
        routed_in = hidden_states.repeat(st.shape[0], 1) * st.reshape(-1, 1)
        routed_out = self.experts(routed_in)
        out = self.shared_expert(hidden_states)
        out = out + routed_out.reshape(st.shape[0], -1, routed_out.shape[-1]).sum(dim=0)
        return out.reshape(shape), logits


# ---- transformers v5 layouts -----------------------------------------------------------

class MixtralExperts(FusedExperts):
    """MixtralExperts (v5, the base of Qwen2/3-MoE, OLMoE and DeepSeek's
    experts): forward(hidden_states, top_k_index, top_k_weights)."""

    def forward(self, hidden_states, top_k_index, top_k_weights):
        return self.run(hidden_states, top_k_index, top_k_weights)


class Qwen2MoeTopKRouterV5(nn.Module):
    """Qwen2MoeTopKRouter (v5): returns (router_scores: tokens x experts,
    router_indices)."""

    def __init__(self, cfg):
        super().__init__()
        self.top_k = cfg.num_experts_per_tok
        self.num_experts = cfg.num_experts
        self.norm_topk_prob = cfg.norm_topk_prob
        self.hidden_dim = cfg.hidden_size
        self.weight = nn.Parameter(torch.randn(self.num_experts, self.hidden_dim))

    def forward(self, hidden_states):
        hidden_states = hidden_states.reshape(-1, self.hidden_dim)
        logits = F.softmax(F.linear(hidden_states, self.weight), dtype=torch.float, dim=-1)
        top_value, idx = torch.topk(logits, self.top_k, dim=-1)
        if self.norm_topk_prob:
            top_value = top_value / top_value.sum(dim=-1, keepdim=True)
        return torch.zeros_like(logits).scatter_(1, idx, top_value.to(logits.dtype)), idx


class Qwen2MoeSparseMoeBlockV5(nn.Module):
    """Qwen2MoeSparseMoeBlock (v5)."""

    def __init__(self, cfg):
        super().__init__()
        self.gate = Qwen2MoeTopKRouterV5(cfg)
        self.experts = MixtralExperts(cfg)
        self.shared_expert = MLP(cfg)
        self.shared_expert_gate = nn.Linear(cfg.hidden_size, 1, bias=False)

    def forward(self, hidden_states):
        b, s, h = hidden_states.shape
        x = hidden_states.view(-1, h)
        shared = self.shared_expert(x)
        routing_weights, selected = self.gate(x)
        _log(self, selected)
        out = self.experts(x, selected, routing_weights)
        out = out + torch.sigmoid(self.shared_expert_gate(x)) * shared
        return out.reshape(b, s, h)


class MixtralSparseMoeBlockV5(Qwen2MoeSparseMoeBlockV5):
    """Mixtral's v5 block: MixtralExperts behind a top-k router, no shared expert."""

    def __init__(self, cfg):
        nn.Module.__init__(self)
        self.gate = Qwen2MoeTopKRouterV5(cfg)
        self.experts = MixtralExperts(cfg)

    def forward(self, hidden_states):
        b, s, h = hidden_states.shape
        x = hidden_states.view(-1, h)
        w, sel = self.gate(x)
        _log(self, sel)
        return self.experts(x, sel, w).reshape(b, s, h)


class DeepseekV2MoeV5(nn.Module):
    """DeepseekV2Moe (v5): the block multiplies by gate.weight itself (the
    gate's forward never runs), route_tokens_to_experts picks the ids, the
    experts get (ids, weights scattered to tokens x experts)."""

    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        self.experts = MixtralExperts(cfg)
        self.gate = nn.Linear(cfg.hidden_size, cfg.n_routed_experts, bias=False)
        self.shared_experts = MLP(cfg, cfg.moe_intermediate_size * cfg.n_shared_experts)
        self.routed_scaling_factor = cfg.routed_scaling_factor
        self.top_k = cfg.num_experts_per_tok

    def route_tokens_to_experts(self, router_logits):
        b, s, e = router_logits.shape
        router_logits = router_logits.view(-1, e).softmax(dim=-1, dtype=torch.float32)
        w, idx = torch.topk(router_logits, k=self.top_k, dim=-1, sorted=False)
        w = torch.zeros_like(router_logits).scatter_(1, idx, w * self.routed_scaling_factor)
        return idx, w

    def forward(self, hidden_states):
        shape = hidden_states.shape
        router_logits = F.linear(hidden_states.float(), self.gate.weight.float())
        idx, w = self.route_tokens_to_experts(router_logits)
        _log(self, idx)
        out = self.experts(hidden_states.view(-1, shape[-1]), idx, w).view(*shape)
        return out + self.shared_experts(hidden_states)


class DeepseekV3TopkRouterV5(nn.Module):
    """DeepseekV3TopkRouter (v5): returns the logits only."""

    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        self.n_routed_experts = cfg.n_routed_experts
        self.weight = nn.Parameter(torch.randn(self.n_routed_experts, cfg.hidden_size))
        self.register_buffer("e_score_correction_bias", torch.randn(self.n_routed_experts))

    def forward(self, hidden_states):
        hidden_states = hidden_states.view(-1, self.config.hidden_size)
        return F.linear(hidden_states.float(), self.weight.float())


class DeepseekV3MoEV5(nn.Module):
    """DeepseekV3MoE (v5): route_tokens_to_experts does the grouped top-k
    with the correction bias in the block."""

    def __init__(self, cfg):
        super().__init__()
        self.experts = MixtralExperts(cfg)
        self.gate = DeepseekV3TopkRouterV5(cfg)
        self.shared_experts = MLP(cfg, cfg.moe_intermediate_size * cfg.n_shared_experts)
        self.n_routed_experts = cfg.n_routed_experts
        self.n_group, self.topk_group = cfg.n_group, cfg.topk_group
        self.routed_scaling_factor = cfg.routed_scaling_factor
        self.top_k = cfg.num_experts_per_tok

    def route_tokens_to_experts(self, router_logits):
        scores = router_logits.sigmoid()
        idx = _grouped_topk(scores, self.gate.e_score_correction_bias, self.n_group,
                            self.topk_group, self.top_k)
        w = scores.gather(1, idx)
        return idx, w / (w.sum(dim=-1, keepdim=True) + 1e-20) * self.routed_scaling_factor

    def forward(self, hidden_states):
        shape = hidden_states.shape
        router_logits = self.gate(hidden_states)
        idx, w = self.route_tokens_to_experts(router_logits)
        _log(self, idx)
        out = self.experts(hidden_states.view(-1, shape[-1]), idx, w).view(*shape)
        return out + self.shared_experts(hidden_states)


class GptOssTopKRouterV5(GptOssTopKRouterV4):
    """GptOssTopKRouter (v5): returns (router_logits, router_scores: tokens
    x k, router_indices)."""

    def forward(self, hidden_states):
        logits = F.linear(hidden_states, self.weight, self.bias)
        top_value, idx = torch.topk(logits, self.top_k, dim=-1)
        return logits, F.softmax(top_value, dim=1, dtype=top_value.dtype), idx


class GptOssMLPV5(nn.Module):
    """GptOssMLP (v5): experts called positionally."""

    def __init__(self, cfg):
        super().__init__()
        self.router = GptOssTopKRouterV5(cfg)
        self.experts = GptOssExpertsV4(cfg)

    def forward(self, hidden_states):
        b, s, h = hidden_states.shape
        x = hidden_states.view(-1, h)
        _, scores, idx = self.router(x)
        _log(self, idx)
        return self.experts(x, idx, scores).view(b, s, h), scores


class Llama4TextMoeV5(Llama4TextMoeV4):
    """Llama4TextMoe (v5): router_scores stay tokens x experts."""

    transpose = False


# family -> (layer attribute, block class, config overrides, dense first layer)
FAMILIES = {
    "mixtral-v4": ("block_sparse_moe", MixtralSparseMoeBlockV4, {}, False),
    "qwen2_moe-v4": ("mlp", Qwen2MoeSparseMoeBlockV4,
                     {"num_experts_per_tok": 4, "norm_topk_prob": False}, False),
    "qwen3_moe-v4": ("mlp", Qwen3MoeSparseMoeBlockV4, {"num_experts_per_tok": 3}, False),
    "olmoe-v4": ("mlp", OlmoeSparseMoeBlockV4,
                 {"num_experts_per_tok": 3, "norm_topk_prob": False}, False),
    "qwen3_next-v4": ("mlp", Qwen3NextSparseMoeBlockV4, {"num_experts_per_tok": 5}, False),
    "deepseek_v2-v4": ("mlp", DeepseekV2MoEV4, {"num_experts_per_tok": 3}, True),
    "deepseek_v3-v4": ("mlp", DeepseekV3MoEV4, {"num_experts_per_tok": 3}, True),
    "gpt_oss-v4": ("mlp", GptOssMLPV4, {"num_experts_per_tok": 4}, False),
    "llama4-v4": ("feed_forward", Llama4TextMoeV4, {"num_experts_per_tok": 1}, False),
    "mixtral-v5": ("mlp", MixtralSparseMoeBlockV5, {}, False),
    "qwen2_moe-v5": ("mlp", Qwen2MoeSparseMoeBlockV5,
                     {"num_experts_per_tok": 4, "norm_topk_prob": False}, False),
    "deepseek_v2-v5": ("mlp", DeepseekV2MoeV5, {"num_experts_per_tok": 3}, True),
    "deepseek_v3-v5": ("mlp", DeepseekV3MoEV5, {"num_experts_per_tok": 3}, True),
    "gpt_oss-v5": ("mlp", GptOssMLPV5, {"num_experts_per_tok": 4}, False),
    "llama4-v5": ("feed_forward", Llama4TextMoeV5, {"num_experts_per_tok": 1}, False),
}


class DecoderLayer(nn.Module):
    def __init__(self, attr, block):
        super().__init__()
        self.input_layernorm = nn.LayerNorm(block_hidden(block))
        self.attr = attr
        setattr(self, attr, block)

    def forward(self, x):
        out = getattr(self, self.attr)(self.input_layernorm(x))
        if isinstance(out, tuple):
            out = out[0]
        return x + out


def block_hidden(block):
    for p in block.parameters():
        return p.shape[-1] if p.dim() == 2 else 16
    return 16


class Body(nn.Module):
    def __init__(self, cfg, attr, cls, dense_first, layers, vocab):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, cfg.hidden_size)
        mods = []
        for i in range(layers):
            if dense_first and i < cfg.first_k_dense_replace:
                mods.append(DecoderLayer("mlp", MLP(cfg)))
            else:
                mods.append(DecoderLayer(attr, cls(cfg)))
        self.layers = nn.ModuleList(mods)


class ForCausalLM(nn.Module):
    """model.embed_tokens, model.layers.N.<attr>, lm_head, as HF's CausalLMs."""

    def __init__(self, family, layers=3, vocab=64):
        super().__init__()
        attr, cls, over, dense_first = FAMILIES[family]
        self.config = cfg = Cfg(**over)
        self.model = Body(cfg, attr, cls, dense_first, layers, vocab)
        self.lm_head = nn.Linear(cfg.hidden_size, vocab, bias=False)

    def moe_blocks(self):
        return [m for m in self.modules() if hasattr(m, "experts") and not isinstance(m, Body)]

    def forward(self, input_ids):
        x = self.model.embed_tokens(input_ids)
        for layer in self.model.layers:
            x = layer(x)
        return self.lm_head(x)
