"""A torch hook that records the routing of an MoE model's router modules.

    hook = moetrace.attach(model, recorder)      # or pattern=r"...", topk=K
    model(input_ids)                             # each forward = one step
    hook.remove()

It finds the router ("gate") modules by name -- Mixtral
`model.layers.N.block_sparse_moe.gate`, Qwen-MoE and DeepSeek
`model.layers.N.mlp.gate`, or any regular expression given as `pattern` --
and numbers them 0..L-1 in module order.  A forward pre-hook on the model
starts a step, each router's forward hook adds its layer's top-k expert ids,
and the model's forward hook ends the step with its phase (prefill when the
input has more than one position per sequence, else decode) and tokens.

What a router returns decides what is recorded: integer tensors (DeepSeek's
MoEGate returns topk_idx, topk_weight[, aux_loss]) are taken as the
expert ids; floating tensors (Mixtral/Qwen `nn.Linear` routers return
logits, tokens x experts) are reduced with torch.topk(logits, topk).  The
selection is the engine's when it returns ids, and top-k of the logits
otherwise (what Mixtral and Qwen-MoE do, before any capacity dropping).

On CUDA the ids are histogrammed on the device (torch.bincount into an
L x E tensor) and handed to Recorder.step(), which copies it to pinned
memory without a stream sync; on CPU they go to the C histogram.
"""
import re

DEFAULT_PATTERNS = (
    r"(^|\.)block_sparse_moe\.gate$",  # Mixtral
    r"(^|\.)mlp\.gate$",               # Qwen-MoE, Qwen2/3-MoE, DeepSeek-V2/V3
)

_LAYER_RE = re.compile(r"(?:^|\.)(?:layers|h|blocks)\.(\d+)\.")


def find_routers(model, pattern=None):
    """Returns [(name, module)] of the router modules in module order."""
    pats = [re.compile(pattern)] if pattern else [re.compile(p) for p in DEFAULT_PATTERNS]
    return [(n, m) for n, m in model.named_modules() if n and any(p.search(n) for p in pats)]


class RouterHook:
    """The handles installed by attach(); remove() takes them out."""

    def __init__(self, model, recorder, routers, topk, first_step, experts):
        import torch
        self._torch = torch
        self.recorder = recorder
        self.routers = routers
        self.topk = topk
        self.experts = experts
        self.step = first_step - 1
        self.layer_ids = []
        for name, _ in routers:
            m = _LAYER_RE.search(name)
            self.layer_ids.append(int(m.group(1)) if m else None)
        self._handles = []
        self._tokens = 0
        self._phase = None
        self._dev = None  # CUDA accumulation buffer, L x E
        self._active = False
        self._fired = False
        try:  # torch >= 2.0 passes keyword arguments (HF models take input_ids=...)
            self._handles.append(model.register_forward_pre_hook(self._begin_kw,
                                                                 with_kwargs=True))
        except TypeError:
            self._handles.append(model.register_forward_pre_hook(self._begin))
        self._handles.append(model.register_forward_hook(self._end))
        for layer, (_, mod) in enumerate(routers):
            self._handles.append(mod.register_forward_hook(self._router(layer)))

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
        if self._dev is not None:
            self._dev.zero_()

    def _ids(self, out):
        torch = self._torch
        if isinstance(out, (tuple, list)):
            for o in out:
                if torch.is_tensor(o) and not o.dtype.is_floating_point:
                    return o
            out = out[0]
        if not torch.is_tensor(out):
            raise TypeError("router output of type %s: neither ids nor logits"
                            % type(out).__name__)
        if not out.dtype.is_floating_point:
            return out
        return torch.topk(out.reshape(-1, out.shape[-1]), self.topk, dim=-1).indices

    def _router(self, layer):
        def hook(module, args, out):
            if not self._active:
                return
            torch = self._torch
            with torch.no_grad():
                ids = self._ids(out)
                ids = ids.reshape(-1, ids.shape[-1]) if ids.dim() > 1 else ids.reshape(-1, 1)
                self._tokens = max(self._tokens, ids.shape[0])
                self._fired = True
                if ids.is_cuda:
                    if self._dev is None:
                        self._dev = torch.zeros((len(self.routers), self.experts),
                                                dtype=torch.int64, device=ids.device)
                    flat = ids.reshape(-1)
                    flat = flat[flat >= 0]
                    self._dev[layer] += torch.bincount(flat, minlength=self.experts)[
                        :self.experts]
                else:
                    self.recorder.step_topk(self.step, layer, ids)
        return hook

    def _end(self, module, args, out):
        if not self._active:
            return
        self._active = False
        if self._dev is not None:
            self.recorder.step(self.step, self._dev, self._phase, self._tokens)
        elif self._fired:
            self.recorder.step_end(self.step, self._phase, self._tokens)

    def remove(self):
        for h in self._handles:
            h.remove()
        self._handles = []


def attach(model, recorder, pattern=None, topk=None, first_step=0):
    """Hooks the router modules of `model` so that every forward pass is
    recorded as one step of `recorder` (a moetrace.Recorder whose layers
    must equal the number of routers found).  topk is needed when routers
    return logits (default: the recorder's run top-k, else 2).  Returns a
    RouterHook; call .remove() to detach."""
    routers = find_routers(model, pattern)
    if not routers:
        raise ValueError("no router modules match %s in %s" % (
            pattern or " or ".join(DEFAULT_PATTERNS), type(model).__name__))
    if len(routers) != recorder.layers:
        raise ValueError("found %d router modules (%s ... %s) but the recorder's run has %d "
                         "layers" % (len(routers), routers[0][0], routers[-1][0],
                                     recorder.layers))
    k = topk or getattr(recorder, "topk", 0) or 2
    return RouterHook(model, recorder, routers, k, first_step, recorder.experts)
