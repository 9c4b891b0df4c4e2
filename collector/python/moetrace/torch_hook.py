"""A torch hook that records the expert routing of an MoE model.

    hook = moetrace.attach(model, recorder)      # or pattern=r"...", topk=K
    model(input_ids)                             # each forward = one step
    hook.remove()

What is recorded is what the model's experts actually receive, read where
the model hands tokens to them, never recomputed from the router's logits:

- MoE blocks are found by structure: a module with an ``experts`` child
  and a router child (``gate`` or ``router``) -- Mixtral
  ``model.layers.N.block_sparse_moe`` (``mlp`` in transformers v5),
  Qwen2/Qwen3-MoE, Qwen3-Next, OLMoE, DeepSeek-V2/V3 ``model.layers.N.mlp``,
  GPT-OSS ``mlp`` (``router``), Llama-4 ``feed_forward`` (``router``).  They
  are numbered 0..L-1 in module order (dense layers have no block).
- ``experts`` an ``nn.ModuleList`` (transformers v4 layouts): a forward
  hook on every expert counts the token rows it processes.  This is the
  routing whatever selected it (DeepSeek's grouped top-k with the
  correction bias, Qwen's k=4 or 8, a capacity drop).
- ``experts`` one fused module called with the selected ids (transformers
  v5: ``experts(hidden_states, top_k_index, top_k_weights)``; GPT-OSS
  ``experts(hidden_states, router_indices, routing_weights)``): a forward
  pre-hook takes the ids from that call.  In v5 the router of
  DeepSeek-V3 returns logits only and the selection happens in the block,
  and DeepSeek-V2's block does not call its gate at all: the ids given to
  the experts are the only faithful source.
- ``experts`` fused and called without ids (Llama-4 runs every expert on
  every token, weighted by a score that is zero off the top-k): the
  router's output is read instead -- integer ids when it returns them,
  else the top-k of its last floating output with the router's own k
  (``top_k``; Llama-4's router picks ``topk(router_logits, top_k)``).  When
  no k can be read from the model, attach() raises and asks for ``topk=``.

``pattern`` (a regular expression) restricts the blocks to the names it
matches; a name that matches a router or experts module is taken as its
block; a matched
module that is no block's child is read as a bare router (ids, or the
top-k of its logits with ``topk``, the module's ``top_k``, or the run's).

A forward pre-hook on the model starts a step; the model's forward hook
ends it with its phase (prefill when the input has more than one position
per sequence, else decode) and tokens (the most rows any block saw).  Ids
on CUDA are counted on the device (``torch.bincount``) and the L x E
counts go through Recorder.step()'s pinned copy; row counts and CPU ids
are counted on the host.
"""
import inspect
import re

_LAYER_RE = re.compile(r"(?:^|\.)(?:layers|h|blocks)\.(\d+)\.")
_ROUTER_NAMES = ("gate", "router")
_K_ATTRS = ("top_k", "num_experts_per_tok", "topk")


def _router_of(mod):
    for n in _ROUTER_NAMES:
        r = getattr(mod, n, None)
        if r is not None and hasattr(r, "register_forward_hook"):
            return r
    return None


def _is_block(mod):
    ex = getattr(mod, "experts", None)
    return ex is not None and hasattr(ex, "register_forward_hook") and _router_of(mod) is not None


def find_routers(model, pattern=None):
    """Returns [(name, module)] of the MoE blocks (or, with a pattern
    matching no block, the bare router modules) that attach() hooks, in
    module order."""
    mods = list(model.named_modules())
    if not pattern:
        return [(n, m) for n, m in mods if n and _is_block(m)]
    pat = re.compile(pattern)
    by_name = dict(mods)
    out, seen = [], set()
    for n, m in mods:
        if not n or not pat.search(n):
            continue
        parent = by_name.get(n.rpartition(".")[0])
        if not _is_block(m) and parent is not None and _is_block(parent) and \
                (m is _router_of(parent) or m is parent.experts):
            n, m = n.rpartition(".")[0], parent
        if id(m) not in seen:
            seen.add(id(m))
            out.append((n, m))
    return out


def _model_k(*mods):
    for m in mods:
        if m is None:
            continue
        for a in _K_ATTRS:
            v = getattr(m, a, None)
            if isinstance(v, int) and not isinstance(v, bool) and v > 0:
                return v
    return None


def _n_experts(block):
    ex = block.experts
    if isinstance(ex, (list, tuple)) or type(ex).__name__ in ("ModuleList", "Sequential"):
        return len(ex)
    for m in (ex, _router_of(block), block):
        for a in ("num_experts", "n_routed_experts", "num_local_experts"):
            v = getattr(m, a, None)
            if isinstance(v, int) and not isinstance(v, bool) and v > 0:
                return v
    w = getattr(ex, "gate_up_proj", None)
    return int(w.shape[0]) if w is not None and getattr(w, "dim", lambda: 0)() == 3 else None


def _ids_param(experts):
    """(position, name) of the selected-ids parameter of a fused experts
    module's forward (after the hidden states), or None if it takes none."""
    try:
        params = list(inspect.signature(experts.forward).parameters.values())
    except (TypeError, ValueError):
        return None
    params = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(params) < 2:
        return None
    return 1, params[1].name


class RouterHook:
    """The handles installed by attach(); remove() takes them out.
    .blocks (also .routers) lists the hooked (name, module) in layer
    order, .sources how each layer is read, .layer_ids the model layer
    numbers found in the names."""

    def __init__(self, model, recorder, blocks, topk, first_step):
        import torch
        self._torch = torch
        self.recorder = recorder
        self.blocks = self.routers = blocks
        self.experts = recorder.experts
        self.step = first_step - 1
        self.layer_ids = []
        self.sources = []
        L, E = len(blocks), self.experts
        self._handles = []
        self._tokens = 0
        self._phase = None
        self._dev = None
        self._rows = None
        self._host = None
        self._active = False
        self._fired = False
        self._got_ids = [False] * L
        self._block_rows = [0] * L
        self._router_out = [None] * L
        self._k = [None] * L
        self._has_kwargs = True
        try:  # torch >= 2.0 passes keyword arguments (HF models take input_ids=...)
            self._handles.append(model.register_forward_pre_hook(self._begin_kw,
                                                                 with_kwargs=True))
        except TypeError:
            self._has_kwargs = False
            self._handles.append(model.register_forward_pre_hook(self._begin))
        self._handles.append(model.register_forward_hook(self._end))
        try:
            for layer, (name, mod) in enumerate(blocks):
                m = _LAYER_RE.search(name + ".")
                self.layer_ids.append(int(m.group(1)) if m else None)
                self._install(layer, name, mod, topk)
        except Exception:
            self.remove()
            raise
        self._rows = [[0] * E for _ in range(L)]

    # -- installation ---------------------------------------------------------------

    def _install(self, layer, name, mod, topk):
        rec, h = self.recorder, self._handles
        if _is_block(mod):
            router, experts = _router_of(mod), mod.experts
            n = _n_experts(mod)
            if n is not None and n != rec.experts:
                raise ValueError("%s has %d experts but the recorder's run has %d"
                                 % (name, n, rec.experts))
            k = _model_k(router, mod)
            self._check_k(name, k, topk)
            h.append(mod.register_forward_pre_hook(self._block_begin(layer)))
            if type(experts).__name__ in ("ModuleList", "Sequential") or \
                    isinstance(experts, (list, tuple)):
                for e, ex in enumerate(experts):
                    h.append(ex.register_forward_hook(self._expert_rows(layer, e)))
                h.append(mod.register_forward_hook(self._rows_end(layer, name)))
                self.sources.append("expert calls")
                return
            h.append(router.register_forward_hook(self._router_keep(layer)))
            h.append(mod.register_forward_hook(self._block_end(layer, name)))
            param = _ids_param(experts)
            if param is not None:
                hook = self._experts_ids(layer, name, param)
                if self._has_kwargs:
                    h.append(experts.register_forward_pre_hook(hook, with_kwargs=True))
                else:
                    h.append(experts.register_forward_pre_hook(
                        lambda m, args, _hook=hook: _hook(m, args, {})))
                self.sources.append("experts input '%s'" % param[1])
                self._k[layer] = k or topk or None  # only if the ids are not seen
                return
            k = k or topk or (rec.topk or None)
            if k is None:
                raise ValueError("%s: its experts are not called with the selected ids and "
                                 "neither %s nor the recorder's run says how many experts "
                                 "each token picks; pass topk=K" % (name, type(mod).__name__))
            self._k[layer] = k
            self.sources.append("router output (top-%d)" % k)
            return
        # a bare router matched by a pattern: its integer output, else top-k of its logits
        k = _model_k(mod) or topk or (rec.topk or None)
        self._check_k(name, _model_k(mod), topk)
        self._k[layer] = k
        h.append(mod.register_forward_pre_hook(self._block_begin(layer)))
        h.append(mod.register_forward_hook(self._bare_router(layer, name)))
        self.sources.append("router output" + (" (top-%d)" % k if k else ""))

    def _check_k(self, name, model_k, topk):
        rk = self.recorder.topk
        if model_k and topk and model_k != topk:
            raise ValueError("%s picks %d experts per token but topk=%d was given"
                             % (name, model_k, topk))
        if model_k and rk and model_k != rk:
            raise ValueError("%s picks %d experts per token but the recorder's run says topk=%d"
                             % (name, model_k, rk))

    # -- the model: one forward pass is one step ------------------------------------

    def _begin_kw(self, module, args, kwargs):
        x = args[0] if args else kwargs.get("input_ids", kwargs.get("inputs_embeds"))
        self._start(x)

    def _begin(self, module, args):
        self._start(args[0] if args else None)

    def _start(self, x):
        self.step += 1
        self._active = True
        self._tokens = 0
        self._phase = None
        self._fired = False
        shape = getattr(x, "shape", None)
        if shape is not None and len(shape) >= 2:
            self._phase = "prefill" if shape[1] > 1 else "decode"
        for row in self._rows:
            row[:] = [0] * self.experts
        self._host = None
        if self._dev is not None:
            self._dev.zero_()

    def _end(self, module, args, out):
        if not self._active:
            return
        self._active = False
        if not self._fired:
            return
        torch = self._torch
        host = torch.tensor(self._rows, dtype=torch.int64)
        if self._host is not None:
            host += self._host
        if self._dev is not None:
            if any(any(r) for r in self._rows) or self._host is not None:
                self._dev += host.to(self._dev.device)
            self.recorder.step(self.step, self._dev, self._phase, self._tokens)
        else:
            self.recorder.step(self.step, host, self._phase, self._tokens)

    # -- per block ------------------------------------------------------------------

    def _block_begin(self, layer):
        def hook(module, args):
            if not self._active:
                return
            self._fired = True
            self._got_ids[layer] = False
            self._router_out[layer] = None
            x = args[0] if args else None
            shape = getattr(x, "shape", None)
            n = 0
            if shape is not None and len(shape) >= 1:
                n = 1
                for s in shape[:-1]:
                    n *= int(s)
                self._tokens = max(self._tokens, n)
            self._block_rows[layer] = n
        return hook

    def _expert_rows(self, layer, e):
        def hook(module, args, out):
            if not self._active or not args:
                return
            shape = getattr(args[0], "shape", None)
            if shape is None or len(shape) < 1:
                return
            n = 1
            for s in shape[:-1]:
                n *= int(s)
            self._rows[layer][e] += n
        return hook

    def _rows_end(self, layer, name):
        def hook(module, args, out):
            # a block whose forward was replaced by a fused kernel calls no expert module
            if self._active and self._block_rows[layer] and not any(self._rows[layer]):
                raise RuntimeError("%s routed %d tokens without calling any of its expert "
                                   "modules (a fused kernel?): its routing cannot be recorded"
                                   % (name, self._block_rows[layer]))
        return hook

    def _experts_ids(self, layer, name, param):
        pos, pname = param

        def hook(module, args, kwargs):
            if not self._active:
                return
            ids = args[pos] if len(args) > pos else kwargs.get(pname)
            if ids is None:
                return  # given by keyword on torch < 2.0: the router's output is read
            torch = self._torch
            if not torch.is_tensor(ids) or ids.dtype.is_floating_point:
                raise TypeError("%s: the experts' argument '%s' is not a tensor of expert ids"
                                % (name, pname))
            self._got_ids[layer] = True
            self._add_ids(layer, name, ids)
        return hook

    def _router_keep(self, layer):
        def hook(module, args, out):
            if self._active:
                self._router_out[layer] = out
        return hook

    def _block_end(self, layer, name):
        def hook(module, args, out):
            if not self._active or self._got_ids[layer]:
                return
            out_r = self._router_out[layer]
            if out_r is None:
                raise RuntimeError("%s ran without passing expert ids to its experts or "
                                   "calling its router: its routing cannot be recorded" % name)
            self._add_ids(layer, name, self._ids(out_r, layer, name))
        return hook

    def _bare_router(self, layer, name):
        def hook(module, args, out):
            if self._active:
                self._add_ids(layer, name, self._ids(out, layer, name))
        return hook

    def _ids(self, out, layer, name):
        """The expert ids a router output stands for: its integer tensor,
        else the top-k of its last floating tensor."""
        torch = self._torch
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        for o in outs:
            if torch.is_tensor(o) and not o.dtype.is_floating_point and o.dtype != torch.bool:
                return o
        fl = [o for o in outs if torch.is_tensor(o) and o.dtype.is_floating_point]
        if not fl:
            raise TypeError("%s: router output of type %s: neither ids nor logits"
                            % (name, type(out).__name__))
        k = self._k[layer]
        if not k:
            raise ValueError("%s: the router returns logits and nothing says how many experts "
                             "each token picks; pass topk=K" % name)
        logits = fl[-1]
        return torch.topk(logits.reshape(-1, logits.shape[-1]), k, dim=-1).indices

    def _add_ids(self, layer, name, ids):
        torch, E = self._torch, self.experts
        with torch.no_grad():
            flat = ids.reshape(-1)
            flat = flat[flat >= 0].long()  # negative ids are padding
            counts = torch.bincount(flat, minlength=E)
            if counts.numel() > E:
                bad = int(flat.max())
                raise ValueError("%s: expert id %d is out of range (the recorder's run has %d "
                                 "experts)" % (name, bad, E))
            if ids.is_cuda:
                if self._dev is None:
                    self._dev = torch.zeros((len(self.blocks), E), dtype=torch.int64,
                                            device=ids.device)
                self._dev[layer] += counts
            else:
                if self._host is None:
                    self._host = torch.zeros((len(self.blocks), E), dtype=torch.int64)
                self._host[layer] += counts

    def remove(self):
        for h in self._handles:
            h.remove()
        self._handles = []


def attach(model, recorder, pattern=None, topk=None, first_step=0):
    """Hooks the MoE blocks of `model` so that every forward pass is
    recorded as one step of `recorder` (a moetrace.Recorder whose layers
    must equal the number of blocks found and whose experts their
    experts).  topk is needed only where the model's experts do not show
    the selection and the router does not say its k.  Returns a RouterHook;
    call .remove() to detach."""
    blocks = find_routers(model, pattern)
    if not blocks:
        raise ValueError("no MoE blocks (a module with 'experts' and a 'gate' or 'router') %sin "
                         "%s" % ("match %s " % pattern if pattern else "", type(model).__name__))
    if len(blocks) != recorder.layers:
        raise ValueError("found %d MoE blocks (%s ... %s) but the recorder's run has %d layers"
                         % (len(blocks), blocks[0][0], blocks[-1][0], recorder.layers))
    if topk is not None and (isinstance(topk, bool) or not isinstance(topk, int) or topk <= 0):
        raise ValueError("topk: %r is not a positive integer" % (topk,))
    return RouterHook(model, recorder, blocks, topk, first_step)
