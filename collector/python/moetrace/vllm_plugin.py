"""A vLLM general plugin that records each MoE layer's routed expert counts
per engine step into a moetrace trace, with no change to vLLM.

Installed with the package (`pip install collector/python`), it is found
through the ``vllm.general_plugins`` entry point, which vLLM loads in every
process (``vllm.plugins.load_general_plugins``).  It does nothing unless
``MOETRACE_VLLM_TRACE`` names the trace database:

    MOETRACE_VLLM_TRACE=/data/trace-{rank}.db vllm serve ...

Written against vLLM's source (vllm-project/vllm main at the file
versions named in docs/collector.md, which also says what is recorded and how
it is tested -- against a stand-in with vLLM's module paths and signatures,
not a running vLLM).

Two sources, chosen per MoE layer (``MOETRACE_VLLM_SOURCE``: auto, topk,
eplb; auto takes eplb for layers built with EPLB on, else topk):

- topk: each ``FusedMoE`` layer (``vllm/model_executor/layers/fused_moe/
  layer.py``) routes through ``self.router.select_experts(hidden_states,
  router_logits) -> (topk_weights, topk_ids)`` (``router/base_router.py``).
  The plugin wraps that method on each layer's router and adds the logical
  ids to a preallocated ``layers x (experts + 1)`` int64 tensor on the
  device with ``scatter_add_`` (no host sync, no allocation that depends on
  the data, so it is also correct inside captured CUDA graphs).  Rows past
  the step's scheduled token count (CUDA-graph padding) and ids outside
  0..experts-1 (padding, zero-compute experts) go to the extra column,
  which is not recorded.  A step is ``GPUModelRunner.execute_model(
  scheduler_output, ...)`` and the ``sample_tokens(grammar_output)`` that
  follows when it returns None (``vllm/v1/worker/gpu_model_runner.py`` and
  the model runner v2, ``vllm/v1/worker/gpu/model_runner.py``): the
  tensor is zeroed before and handed to ``Recorder.step`` after (one
  non-blocking copy of L x E values into pinned memory).
- eplb: with ``--enable-eplb`` vLLM already counts, per MoE model, the
  tokens of this rank sent to every physical expert in the forward pass:
  ``EplbState.model_states[hash].expert_load_pass`` (``num_moe_layers x
  num_physical_experts``, ``vllm/distributed/eplb/eplb_state.py``), copied
  into the window and zeroed by ``EplbState.step(is_dummy, is_profile,
  log_stats)`` after each forward pass.  Just before that, the plugin
  folds it into logical experts with ``physical_to_logical_map``
  (``scatter_add_`` on the device, what ``rearrange()`` does) and records
  it.  Dummy and profile steps are not recorded.

Ranks: every worker process records what its own router saw.  A
``{rank}`` in the path is replaced by the global rank (one file per rank;
``moetrace merge --sum`` adds ranks that routed disjoint tokens).  Without
it only rank 0 records.

Nothing here may stop the engine: a failure is logged once (logger
``moetrace.vllm``) and recording stops; vLLM's own call always runs.
"""
import atexit
import importlib.abc
import inspect
import logging
import os
import sys
import threading
import time

ENV_TRACE = "MOETRACE_VLLM_TRACE"
ENV_SOURCE = "MOETRACE_VLLM_SOURCE"
ENV_RUN = "MOETRACE_VLLM_RUN"
ENV_METRICS = "MOETRACE_VLLM_METRICS"
ENV_EP = "MOETRACE_VLLM_EP"

MOE_MODULE = "vllm.model_executor.layers.fused_moe.layer"
EPLB_MODULE = "vllm.distributed.eplb.eplb_state"
RUNNER_MODULES = ("vllm.v1.worker.gpu_model_runner",   # GPUModelRunner
                  "vllm.v1.worker.gpu.model_runner")    # model runner v2

log = logging.getLogger("moetrace.vllm")

_state = None  # the process's _State once register() has enabled recording


def _rank():
    """(rank, world size) of this process in torch.distributed, else from
    the launcher's environment, else (0, 1)."""
    try:
        dist = sys.modules.get("torch.distributed")
        if dist is not None and dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except Exception:
        pass
    try:
        return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 0, 1


class _State:
    """Everything the hooks share in one worker process."""

    def __init__(self, path, source, run):
        self.path, self.source, self.run = path, source, run
        self.lock = threading.Lock()
        self.disabled = False
        self.rec = None
        self.rec_source = None  # "topk" or "eplb" once the recorder is open
        self.layers = []        # FusedMoE layers read by their top-k ids, in build order
        self.experts = None
        self.topk = 0
        self.buf = None         # layers x (experts + 1) int64 on the device
        self.ntok = None        # scalar int64 on the device: the step's scheduled tokens
        self._rows = None       # arange and ones reused by count(), grown before capture
        self.live = None        # the step's scheduled tokens while it runs (eager slicing)
        self._ones = None
        self.steps = 0          # execute_model calls so far
        self.eplb_steps = 0     # EplbState.step calls so far (profile runs aside)
        self.tokens = 0
        self.phase = None
        self.model = None
        self.in_step = False
        self.pending = False    # a step has begun and not ended
        self.cur = -1           # its number
        self.eplb_seen = False
        self.routed = False     # some router.select_experts ran (eager, or graph capture)

    # -- failure ----------------------------------------------------------------------

    def fail(self, what):
        """Logs the exception being handled, once, and stops recording."""
        if self.disabled:
            return
        self.disabled = True
        log.exception("moetrace: %s; recording stops (vLLM runs on)", what)
        rec, self.rec = self.rec, None
        if rec is not None:
            try:
                rec.close()
            except Exception:
                pass

    # -- the recorder -----------------------------------------------------------------

    def open(self, source, layers, experts, topk):
        """The recorder, opened on first use (the first step that has
        counts: ranks and model are known by then); None when this rank
        does not record."""
        if self.rec is not None:
            if self.rec_source != source:
                return None
            return self.rec
        if self.rec_source == "off":
            return None
        rank, world = _rank()
        path = self.path
        if "{rank}" in path:
            path = path.replace("{rank}", str(rank))
        elif world > 1 and rank != 0:
            log.info("moetrace: %s has no {rank}: only rank 0 records", ENV_TRACE)
            self.rec_source = "off"
            return None
        from .recorder import Recorder
        run = self.run or "vllm-%s-rank%d" % (time.strftime("%Y%m%dT%H%M%S"), rank)
        self.rec = Recorder(path, run, layers=layers, experts=experts, topk=topk,
                            model=self.model, flush_ms=1000,
                            source="vllm plugin (%s, rank %d of %d)"
                            % ("top-k ids" if source == "topk" else "EPLB expert_load_pass",
                               rank, world))
        self.rec_source = source
        log.info("moetrace: recording %d MoE layers x %d experts from %s into %s (run %s)",
                 layers, experts, source, path, run)
        self.serve_metrics(rank)
        atexit.register(self.close)
        return self.rec

    def serve_metrics(self, rank):
        """MOETRACE_VLLM_METRICS=HOST:PORT serves /metrics from the
        recorder; {rank} in it is replaced as in the trace's name, or the
        port is offset by the rank.  A failure is logged, not raised: the
        recording goes on."""
        listen = os.environ.get(ENV_METRICS, "").strip()
        if not listen:
            return
        if "{rank}" in listen:
            listen = listen.replace("{rank}", str(rank))
        else:
            host, _, port = listen.rpartition(":")
            if port.isdigit() and int(port) > 0:
                listen = "%s:%d" % (host, int(port) + rank)
        ranks = slots = 0
        ep = os.environ.get(ENV_EP, "").strip().lower()
        if ep:
            r, _, s = ep.partition("x")
            if not (r.isdigit() and s.isdigit()):
                log.warning("moetrace: %s=%s is not RANKSxSLOTS: no metrics", ENV_EP, ep)
                return
            ranks, slots = int(r), int(s)
        try:
            port = self.rec.serve_metrics(listen, ranks=ranks, slots=slots)
            log.info("moetrace: metrics at http://%s/metrics (port %d)", listen, port)
        except Exception as e:
            log.warning("moetrace: %s=%s: %s%s", ENV_METRICS, listen, e,
                        "" if ep else " (%s=RANKSxSLOTS gives the EP layout)" % ENV_EP)

    def close(self):
        if self.pending and not self.disabled:
            try:
                self.end()
            except Exception:
                self.fail("cannot record step %d" % self.cur)
        rec, self.rec = self.rec, None
        if rec is not None:
            try:
                rec.close()
            except Exception:
                log.exception("moetrace: closing the trace failed")

    # -- top-k ids --------------------------------------------------------------------

    def add_layer(self, layer):
        """Called after FusedMoE.__init__: wraps its router's select_experts."""
        if self.source == "eplb" or (self.source == "auto" and
                                     getattr(layer, "enable_eplb", False)):
            return
        import torch
        router = getattr(layer, "router", None)
        select = getattr(router, "select_experts", None)
        if select is None:
            raise RuntimeError("%s has no router.select_experts: this vLLM is not the one the "
                               "plugin follows" % type(layer).__name__)
        n = getattr(layer, "logical_num_experts", None) or layer.global_num_experts
        n = int(n)
        name = getattr(layer, "layer_name", "?")
        if self.experts is None:
            self.experts, self.topk = n, int(getattr(layer, "top_k", 0) or 0)
        elif n != self.experts or self.rec is not None:
            # a drafter of another shape, or a layer built once recording has begun
            log.warning("moetrace: MoE layer %s (%d experts) is not recorded: the run has "
                        "%d experts%s", name, n, self.experts,
                        " and its layers are fixed" if self.rec is not None else "")
            return
        i = len(self.layers)
        self.layers.append(layer)
        dev = None
        for p in layer.parameters():
            dev = p.device
            break
        if dev is None or dev.type == "meta":
            dev = torch.device("cpu")
        # grown while the model is built, never after: captured graphs keep its address
        buf = torch.zeros((i + 1, n + 1), dtype=torch.int64, device=dev)
        if self.buf is not None:
            buf[:i].copy_(self.buf.to(dev))
        self.buf = buf
        if self.ntok is None or self.ntok.device != dev:
            self.ntok = torch.full((), 2**62, dtype=torch.int64, device=dev)
        state = self

        def select_experts(*args, **kwargs):
            out = select(*args, **kwargs)
            state.routed = True
            if not state.disabled:
                try:
                    state.count(i, out[1])
                except Exception:
                    state.fail("counting the top-k ids of MoE layer %d" % i)
            return out

        router.select_experts = select_experts

    def count(self, i, ids):
        """Adds layer i's ids to its row of the counts: no host sync and no
        allocation that depends on the values.  In eager mode the host knows
        the step's tokens and slices the padding off (4 small ops); while a
        CUDA graph is captured the padded rows are masked on the device
        against the step's token count instead (6), so replays stay right."""
        import torch
        E = self.experts
        with torch.no_grad():
            n = ids.shape[0] if ids.dim() else 0
            if n == 0 or ids.numel() == 0:
                return
            ids = ids.reshape(n, -1)
            if self.buf.device != ids.device:  # built elsewhere than it runs (eager only)
                self.buf = self.buf.to(ids.device)
                self.ntok = self.ntok.to(ids.device)
                self._rows = self._ones = None
            capturing = ids.is_cuda and torch.cuda.is_current_stream_capturing()
            if not capturing and self.live is not None:
                if self.live < n:
                    ids = ids[:self.live]
                    n = self.live
                mask = False
            else:
                mask = True
                if self._rows is None or self._rows.numel() < n:
                    self._rows = torch.arange(max(n, 1024), device=ids.device)
            m = ids.numel()
            if m == 0:
                return
            if self._ones is None or self._ones.numel() < m:
                self._ones = torch.ones(max(m, 8192), dtype=torch.int64, device=ids.device)
            # -1 (padding) and ids >= E (zero-compute experts) land in column E, and so
            # do the rows past the step's scheduled tokens (CUDA-graph padding)
            idx = torch.clamp(ids, -1, E).remainder_(E + 1).long()
            if mask:
                idx.masked_fill_(self._rows[:n].unsqueeze(1) >= self.ntok, E)
            self.buf[i].scatter_add_(0, idx.reshape(-1), self._ones[:m])

    def begin(self, runner, scheduler_output):
        """execute_model(scheduler_output) starts a step (ending one still open)."""
        if self.pending:
            self.end()
        n = int(getattr(scheduler_output, "total_num_scheduled_tokens", 0) or 0)
        per_req = getattr(scheduler_output, "num_scheduled_tokens", None) or {}
        self.tokens = n
        # decode only when every request gets exactly one token; else mixed/unknown
        self.phase = "decode" if per_req and all(v == 1 for v in per_req.values()) else None
        if self.model is None:
            mc = getattr(runner, "model_config", None)
            self.model = getattr(mc, "model", None) if mc is not None else None
            if self.model is not None and not isinstance(self.model, str):
                self.model = str(self.model)
        self.cur = self.steps
        self.steps += 1
        self.pending = True
        self.in_step = n > 0
        if self.buf is not None and self.in_step:
            self.buf.zero_()
            self.ntok.fill_(n)
            self.live = n

    def end(self):
        """After execute_model when it returned the output, else after
        sample_tokens (which runs the drafter and steps EPLB)."""
        self.pending = False
        if not self.in_step or self.buf is None:
            return
        self.in_step = False
        self.live = None
        self.ntok.fill_(2**62)
        if self.eplb_seen and self.source == "auto":
            return  # the EPLB load is recorded instead
        if not self.routed:
            raise RuntimeError("step %d ran without any MoE layer calling router."
                               "select_experts (a monolithic MoE kernel routes inside the "
                               "kernel): its top-k ids cannot be read; run with "
                               "--enable-eplb and %s=eplb" % (self.cur, ENV_SOURCE))
        rec = self.open("topk", len(self.layers), self.experts, self.topk)
        if rec is None:
            return
        rec.step(self.cur, self.buf[:, :self.experts], self.phase, self.tokens)

    # -- EPLB load --------------------------------------------------------------------

    def eplb_step(self, eplb, is_dummy, is_profile):
        if is_profile:
            return
        step = self.eplb_steps
        self.eplb_steps += 1
        if self.source == "topk" or is_dummy:
            return
        states = getattr(eplb, "model_states", None)
        if not states:
            if hasattr(eplb, "expert_load_pass"):
                raise RuntimeError("this vLLM keeps expert_load_pass on EplbState itself "
                                   "(before model_states): not supported, use "
                                   "%s=topk" % ENV_SOURCE)
            return
        self.eplb_seen = True
        st = next(iter(states.values()))  # the main model (drafters come after it)
        import torch
        with torch.no_grad():
            load = st.expert_load_pass
            p2l = st.physical_to_logical_map
            model = st.model
            L, E = int(model.num_moe_layers), int(model.num_logical_experts)
            if self.model is None:
                self.model = str(getattr(st, "model_name", "") or "") or None
            if tuple(load.shape) != tuple(p2l.shape) or load.shape[0] != L:
                raise RuntimeError("expert_load_pass %s and physical_to_logical_map %s do not "
                                   "match %d MoE layers" % (tuple(load.shape),
                                                           tuple(p2l.shape), L))
            idx = p2l.long()
            idx = torch.where((idx >= 0) & (idx < E), idx, torch.full_like(idx, E))
            logical = torch.zeros((L, E + 1), dtype=torch.int64, device=load.device)
            logical.scatter_add_(1, idx, load.long())
        rec = self.open("eplb", L, E, 0)
        if rec is not None:
            rec.step(step, logical[:, :E], self.phase, self.tokens)


# -- patching vLLM's classes when their modules are imported ------------------------------

_pending = {}
_finder = None


class _PostImport(importlib.abc.MetaPathFinder):
    """Runs a function on a module right after it is first executed, so the
    plugin imports nothing of vLLM's itself (general plugins load in every
    process, before the model and CUDA are set up)."""

    def find_spec(self, name, path=None, target=None):
        if name not in _pending:
            return None
        try:
            return self._spec(name, path, target)
        except Exception:  # never in the way of vLLM's own import
            _pending.pop(name, None)
            if _state is not None:
                _state.fail("cannot hook %s" % name)
            return None

    def _spec(self, name, path, target):
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module):
            try:
                del loader.exec_module  # the loader's own method again
            except AttributeError:
                pass
            run(module)
            fn = _pending.pop(name, None)
            if fn is not None:
                _patch(fn, module)

        try:
            loader.exec_module = exec_module
        except Exception:
            return spec
        return spec


def _patch(fn, module):
    try:
        fn(module)
    except Exception:
        if _state is not None:
            _state.fail("cannot hook %s" % module.__name__)


def _when_imported(name, fn):
    global _finder
    mod = sys.modules.get(name)
    if mod is not None:
        _patch(fn, mod)
        return
    _pending[name] = fn
    if _finder is None:
        _finder = _PostImport()
        sys.meta_path.insert(0, _finder)


def _hook_moe(module):
    cls = module.FusedMoE
    if getattr(cls.__init__, "_moetrace", False):
        return
    init = cls.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        st = _state
        if st is not None and not st.disabled:
            try:
                with st.lock:
                    st.add_layer(self)
            except Exception:
                st.fail("cannot read MoE layer %s" % getattr(self, "layer_name", "?"))

    __init__._moetrace = True
    __init__.__wrapped__ = init
    cls.__init__ = __init__


def _hook_eplb(module):
    cls = module.EplbState
    step = cls.step
    if getattr(step, "_moetrace", False):
        return
    sig = inspect.signature(step)

    def wrapped(self, *args, **kwargs):
        st = _state
        if st is not None and not st.disabled:
            try:
                b = sig.bind(self, *args, **kwargs)
                b.apply_defaults()
                st.eplb_step(self, bool(b.arguments.get("is_dummy", False)),
                             bool(b.arguments.get("is_profile", False)))
            except Exception:
                st.fail("cannot record the EPLB expert load")
        return step(self, *args, **kwargs)

    wrapped._moetrace = True
    wrapped.__wrapped__ = step
    wrapped.__doc__ = step.__doc__
    cls.step = wrapped


def _hook_runner(module):
    """GPUModelRunner (v1 and the model runner v2 alike): execute_model(
    scheduler_output, ...) runs the forward pass and returns None when
    sample_tokens(grammar_output) is to follow (sampling, the drafter,
    EPLB's step)."""
    cls = module.GPUModelRunner
    execute = cls.execute_model
    if getattr(execute, "_moetrace", False):
        return
    sample = getattr(cls, "sample_tokens", None)

    def execute_model(self, *args, **kwargs):
        st = _state
        live = st is not None and not st.disabled
        if live:
            try:
                so = args[0] if args else kwargs.get("scheduler_output")
                st.begin(self, so)
            except Exception:
                st.fail("cannot start a step")
                live = False
        out = execute(self, *args, **kwargs)
        if live and out is not None and not st.disabled:
            try:
                st.end()
            except Exception:
                st.fail("cannot record step %d" % st.cur)
        return out

    def sample_tokens(self, *args, **kwargs):
        out = sample(self, *args, **kwargs)
        st = _state
        if st is not None and st.pending and not st.disabled:
            try:
                st.end()
            except Exception:
                st.fail("cannot record step %d" % st.cur)
        return out

    for name, fn, orig in (("execute_model", execute_model, execute),
                           ("sample_tokens", sample_tokens, sample)):
        if orig is None:
            continue
        fn._moetrace = True
        fn.__wrapped__ = orig
        fn.__doc__ = orig.__doc__
        setattr(cls, name, fn)


def register():
    """The ``vllm.general_plugins`` entry point: enables recording when
    MOETRACE_VLLM_TRACE is set.  vLLM may call it more than once per
    process; the hooks are installed once."""
    global _state
    path = os.environ.get(ENV_TRACE, "").strip()
    if not path or _state is not None:
        return
    source = os.environ.get(ENV_SOURCE, "auto").strip().lower() or "auto"
    if source not in ("auto", "topk", "eplb"):
        log.error("moetrace: %s=%r: expected auto, topk or eplb; not recording",
                  ENV_SOURCE, source)
        return
    try:
        from . import _lib
        _lib.load()  # fail here, once, rather than at the first step
    except Exception:
        log.exception("moetrace: cannot load libmoetrace; not recording")
        return
    _state = _State(path, source, os.environ.get(ENV_RUN, "").strip() or None)
    _when_imported(MOE_MODULE, _hook_moe)
    _when_imported(EPLB_MODULE, _hook_eplb)
    for name in RUNNER_MODULES:
        _when_imported(name, _hook_runner)


def state():
    """The process's recording state (None when not enabled): .rec, .steps,
    .disabled, .layers; for tests and diagnostics."""
    return _state
