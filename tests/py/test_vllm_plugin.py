"""The vLLM plugin (moetrace.vllm_plugin) against a stand-in of vLLM.

vLLM cannot be installed here, so the test writes a minimal `vllm` package
into a temporary directory with the module paths, class names and method
signatures of the vLLM source the plugin follows (docs/collector.md,
tests/data/README.md):

  vllm/plugins/__init__.py           load_general_plugins(): entry_points(group=
                                     "vllm.general_plugins"), VLLM_PLUGINS, call each
  vllm/model_executor/layers/fused_moe/layer.py     FusedMoE(num_experts, top_k, ...,
                                     prefix, enable_eplb, num_redundant_experts),
                                     .router, forward(hidden_states, router_logits)
  .../fused_moe/router/base_router.py   BaseRouter.select_experts(hidden_states,
                                     router_logits) -> (topk_weights, topk_ids), logical ids
  vllm/distributed/eplb/eplb_state.py   EplbState(parallel_config, device).model_states,
                                     add_model(model, model_config), step(is_dummy,
                                     is_profile, log_stats); EplbModelState.expert_load_pass,
                                     physical_to_logical_map
  vllm/v1/worker/gpu_model_runner.py    GPUModelRunner.execute_model(scheduler_output,
  (and gpu/model_runner.py, runner v2)  intermediate_tensors=None) returning None, then
                                     sample_tokens(grammar_output) stepping EPLB;
                                     _dummy_run, profile_run

The package itself is built into a wheel with its own backend and unpacked
on sys.path, so vLLM's loader finds the plugin through the wheel's
entry_points.txt.  Each scenario runs in a fresh interpreter (the plugin
patches classes once per process).  The truth is what the stand-in's MoE
layers dispatched for the real (unpadded) tokens of each step; the trace
must hold exactly that, per step and layer, from both sources (top-k ids
and EPLB's expert_load_pass through a placement with redundant experts that
is rearranged mid-run)."""
import ctypes
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import unittest
import zipfile

try:
    import numpy as np
    import torch  # noqa: F401
except ImportError:
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3") \
            and not os.environ.get("MOETRACE_PY_REEXEC"):
        os.environ["MOETRACE_PY_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    print("needs python3-torch and python3-numpy")
    sys.exit(77)

TOP = os.path.abspath(os.environ.get("MOETRACE_TOP") or
                      os.path.join(os.path.dirname(__file__), "..", ".."))
PY = os.path.join(TOP, "collector", "python")
sys.path.insert(0, PY)
if not os.environ.get("MOETRACE_LIB") and os.path.exists(os.path.join(TOP, "libmoetrace.so")):
    os.environ["MOETRACE_LIB"] = os.path.join(TOP, "libmoetrace.so")
import moetrace  # noqa: E402

try:
    LIB = moetrace.load()
except OSError as e:
    print("libmoetrace.so with the recorder not found (run make, or set MOETRACE_LIB): %s" % e)
    sys.exit(77)
LIB.moetrace_counts_decode.restype = ctypes.c_int
LIB.moetrace_counts_decode.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p,
                                       ctypes.c_size_t]

LAYERS, EXPERTS, TOPK, REDUNDANT = 3, 8, 2, 2

# vllm/v1/worker/gpu_model_runner.py and the model runner v2's
# vllm/v1/worker/gpu/model_runner.py: a GPUModelRunner each
RUNNER = '''
        import torch
        from vllm.distributed.eplb.eplb_state import EplbState
        from vllm.model_executor.layers.fused_moe.layer import FusedMoE

        EMPTY_MODEL_RUNNER_OUTPUT = "empty"

        class TinyMoeModel(torch.nn.Module):
            """num_moe_layers decoder layers: gate -> FusedMoE (the MixtureOfExperts
            interface EplbState reads)."""
            def __init__(self, cfg, enable_eplb):
                super().__init__()
                torch.manual_seed(11)
                H = 16
                self.embed = torch.nn.Embedding(64, H)
                self.gates = torch.nn.ModuleList(
                    torch.nn.Linear(H, cfg.num_experts, bias=False) for _ in range(cfg.layers))
                self.experts = torch.nn.ModuleList(
                    FusedMoE(cfg.num_experts, cfg.top_k, H, 24,
                             prefix="model.layers.%d.mlp.experts" % i,
                             enable_eplb=enable_eplb,
                             num_redundant_experts=cfg.redundant if enable_eplb else 0)
                    for i in range(cfg.layers))
                self.num_moe_layers = cfg.layers
                self.num_logical_experts = self.num_routed_experts = cfg.num_experts
                self.num_redundant_experts = cfg.redundant if enable_eplb else 0
                self.num_physical_experts = cfg.num_experts + self.num_redundant_experts
                self.num_expert_groups = 1
                self.moe_layers = list(self.experts)

            def set_eplb_state(self, expert_load_pass, logical_to_physical_map,
                               logical_replica_count):
                for i, layer in enumerate(self.experts):
                    layer.eplb_state.expert_load_view = expert_load_pass[i]
                    layer.eplb_state.logical_to_physical_map = logical_to_physical_map[i]
                    layer.eplb_state.logical_replica_count = logical_replica_count[i]

            def forward(self, input_ids, num_real):
                h = self.embed(input_ids)
                for gate, moe in zip(self.gates, self.experts):
                    moe.num_real_tokens = num_real
                    h = h + moe(h, gate(h))
                return h

        class GPUModelRunner:
            PAD = 8  # batches are padded to a multiple of 8, as to a CUDA graph size

            def __init__(self, vllm_config, device):
                self.vllm_config = vllm_config
                self.model_config = vllm_config.model_config
                self.parallel_config = vllm_config.parallel_config
                self.device = device
                self.eplb_state = None

            def load_model(self, eep_scale_up=False):
                eplb = self.parallel_config.enable_eplb
                self.model = TinyMoeModel(self.model_config.hf_config, eplb)
                if eplb:
                    self.eplb_state = EplbState(self.parallel_config, self.device)
                    self.eplb_state.add_model(self.model, self.model_config)

            def eplb_step(self, is_dummy=False, is_profile=False):
                if self.eplb_state is not None:
                    self.eplb_state.step(is_dummy, is_profile, log_stats=False)

            def _dummy_run(self, num_tokens, is_profile=False):
                with torch.no_grad():
                    self.model(torch.zeros(num_tokens, dtype=torch.long), num_tokens)
                self.eplb_step(is_dummy=True, is_profile=is_profile)

            def profile_run(self):
                self._dummy_run(16, is_profile=True)

            def execute_model(self, scheduler_output, intermediate_tensors=None):
                """Returns None: sample_tokens() follows (and steps EPLB)."""
                n = scheduler_output.total_num_scheduled_tokens
                if n == 0:
                    return EMPTY_MODEL_RUNNER_OUTPUT
                padded = -(-n // self.PAD) * self.PAD
                ids = torch.tensor(scheduler_output.token_ids + [0] * (padded - n))
                with torch.no_grad():
                    out = self.model(ids, n)
                self.execute_model_state = out[:n]
                return None

            def sample_tokens(self, grammar_output):
                out, self.execute_model_state = self.execute_model_state, None
                self.eplb_step()
                return out
    '''

# -- the stand-in ---------------------------------------------------------------------------

FAKE = {
    "vllm/__init__.py": "",
    "vllm/envs.py": '''
        import os
        def __getattr__(name):
            if name == "VLLM_PLUGINS":
                v = os.environ.get("VLLM_PLUGINS")
                return None if v is None else v.split(",")
            raise AttributeError(name)
    ''',
    "vllm/plugins/__init__.py": '''
        import logging
        import vllm.envs as envs
        logger = logging.getLogger(__name__)
        DEFAULT_PLUGINS_GROUP = "vllm.general_plugins"
        plugins_loaded = False

        def load_plugins_by_group(group):
            from importlib.metadata import entry_points
            allowed = envs.VLLM_PLUGINS
            plugins = {}
            for plugin in entry_points(group=group):
                if allowed is None or plugin.name in allowed:
                    try:
                        plugins[plugin.name] = plugin.load()
                    except Exception:
                        logger.exception("Failed to load plugin %s", plugin.name)
            return plugins

        def load_general_plugins():
            global plugins_loaded
            if plugins_loaded:
                return
            plugins_loaded = True
            for func in load_plugins_by_group(DEFAULT_PLUGINS_GROUP).values():
                func()
    ''',
    "vllm/distributed/__init__.py": "",
    "vllm/distributed/eplb/__init__.py": "",
    "vllm/distributed/eplb/eplb_state.py": '''
        from dataclasses import dataclass
        import torch

        @dataclass
        class EplbModelState:
            physical_to_logical_map: torch.Tensor
            logical_to_physical_map: torch.Tensor
            logical_replica_count: torch.Tensor
            expert_load_pass: torch.Tensor
            expert_load_window: torch.Tensor
            model_name: str
            model: object

        @dataclass
        class EplbLayerState:
            expert_load_view: torch.Tensor | None = None
            logical_to_physical_map: torch.Tensor | None = None
            logical_replica_count: torch.Tensor | None = None

        def _maps(p2l, n_logical):
            L, P = p2l.shape
            l2p = torch.full((L, n_logical, P), -1, dtype=torch.long)
            cnt = torch.zeros((L, n_logical), dtype=torch.long)
            for l in range(L):
                for p in range(P):
                    e = int(p2l[l, p])
                    l2p[l, e, cnt[l, e]] = p
                    cnt[l, e] += 1
            return l2p, cnt

        class EplbState:
            def __init__(self, parallel_config, device):
                self.parallel_config = parallel_config
                self.device = device
                self.model_states = {}
                self.expert_load_window_step = 0
                self.expert_load_window_size = parallel_config.eplb_config.window_size
                self.expert_rearrangement_step = 0
                self.expert_rearrangement_step_interval = parallel_config.eplb_config.step_interval

            @staticmethod
            def build_initial_global_physical_to_logical_map(num_routed_experts,
                                                             num_redundant_experts):
                m = list(range(num_routed_experts))
                return m + [i % num_routed_experts for i in range(num_redundant_experts)]

            def add_model(self, model, model_config, global_expert_load=None,
                          old_global_expert_indices=None, rank_mapping=None):
                p2l = torch.tensor(self.build_initial_global_physical_to_logical_map(
                    model.num_routed_experts, model.num_redundant_experts), device=self.device)
                p2l = p2l.unsqueeze(0).expand(model.num_moe_layers, -1).contiguous()
                l2p, cnt = _maps(p2l, model.num_logical_experts)
                load = torch.zeros((model.num_moe_layers, model.num_physical_experts),
                                   dtype=torch.int32, device=self.device)
                window = torch.zeros((self.expert_load_window_size,) + tuple(load.shape),
                                     dtype=torch.int32, device=self.device)
                model.set_eplb_state(load, l2p, cnt)
                self.model_states[model_config.compute_hash()] = EplbModelState(
                    p2l, l2p, cnt, load, window, model_config.model, model)

            def step(self, is_dummy=False, is_profile=False, log_stats=False):
                if is_profile:
                    return
                if is_dummy:
                    for st in self.model_states.values():
                        st.expert_load_pass.zero_()
                if not is_dummy:
                    for st in self.model_states.values():
                        st.expert_load_window[self.expert_load_window_step] = \\
                            st.expert_load_pass.clone()
                        st.expert_load_pass.zero_()
                    self.expert_load_window_step = \\
                        (self.expert_load_window_step + 1) % self.expert_load_window_size
                self.expert_rearrangement_step += 1
                if self.expert_rearrangement_step >= self.expert_rearrangement_step_interval:
                    self.expert_rearrangement_step = 0
                    self.rearrange()

            def rearrange(self, is_profile=False, execute_shuffle=True,
                          global_expert_loads=None, rank_mapping=None):
                # stand-in policy: a new placement every interval (slots rotated, other
                # experts replicated), every logical expert kept on some slot
                self._moves = getattr(self, "_moves", 0) + 1
                for st in self.model_states.values():
                    E = st.model.num_logical_experts
                    P = st.physical_to_logical_map.shape[1]
                    row = [(i + 3 * self._moves) % E for i in range(E)]
                    row += [(self._moves + j) % E for j in range(P - E)]
                    new = torch.tensor(row).unsqueeze(0).expand_as(
                        st.physical_to_logical_map)
                    st.physical_to_logical_map.copy_(new)
                    l2p, cnt = _maps(new, st.model.num_logical_experts)
                    st.logical_to_physical_map.copy_(l2p)
                    st.logical_replica_count.copy_(cnt)
    ''',
    "vllm/model_executor/__init__.py": "",
    "vllm/model_executor/layers/__init__.py": "",
    "vllm/model_executor/layers/fused_moe/__init__.py":
        "from vllm.model_executor.layers.fused_moe.layer import FusedMoE  # noqa: F401\n",
    "vllm/model_executor/layers/fused_moe/router/__init__.py": "",
    "vllm/model_executor/layers/fused_moe/router/fused_moe_router.py": '''
        from abc import ABC, abstractmethod
        class FusedMoERouter(ABC):
            @abstractmethod
            def select_experts(self, hidden_states, router_logits):
                raise NotImplementedError
    ''',
    "vllm/model_executor/layers/fused_moe/router/base_router.py": '''
        from abc import abstractmethod
        from vllm.model_executor.layers.fused_moe.router.fused_moe_router import FusedMoERouter

        class BaseRouter(FusedMoERouter):
            def __init__(self, top_k, global_num_experts, eplb_state, enable_eplb=False,
                         indices_type_getter=None):
                super().__init__()
                self.top_k = top_k
                self.global_num_experts = global_num_experts
                self.eplb_state = eplb_state
                self.enable_eplb = enable_eplb
                self.indices_type_getter = indices_type_getter
                self.capture_fn = None

            def set_capture_fn(self, capture_fn):
                self.capture_fn = capture_fn

            @abstractmethod
            def _compute_routing(self, hidden_states, router_logits, indices_type):
                raise NotImplementedError

            def select_experts(self, hidden_states, router_logits):
                indices_type = self.indices_type_getter() if self.indices_type_getter else None
                topk_weights, topk_ids = self._compute_routing(hidden_states, router_logits,
                                                               indices_type)
                if self.capture_fn is not None:
                    self.capture_fn(topk_ids)
                if indices_type is not None and topk_ids.dtype != indices_type:
                    topk_ids = topk_ids.to(dtype=indices_type)
                return topk_weights, topk_ids
    ''',
    "vllm/model_executor/layers/fused_moe/router/fused_topk_router.py": '''
        import torch
        from vllm.model_executor.layers.fused_moe.router.base_router import BaseRouter

        class FusedTopKRouter(BaseRouter):
            def __init__(self, top_k, global_num_experts, eplb_state, renormalize=True,
                         enable_eplb=False, indices_type_getter=None):
                super().__init__(top_k, global_num_experts, eplb_state, enable_eplb,
                                 indices_type_getter)
                self.renormalize = renormalize

            def _compute_routing(self, hidden_states, router_logits, indices_type):
                w, ids = torch.topk(torch.softmax(router_logits.float(), -1), self.top_k, -1)
                if self.renormalize:
                    w = w / w.sum(-1, keepdim=True)
                return w, ids.to(torch.int32)
    ''',
    "vllm/model_executor/layers/fused_moe/layer.py": '''
        import torch
        from vllm.distributed.eplb.eplb_state import EplbLayerState
        from vllm.model_executor.layers.fused_moe.router.fused_topk_router import (
            FusedTopKRouter)

        class FusedMoE(torch.nn.Module):
            def __init__(self, num_experts, top_k, hidden_size, intermediate_size,
                         params_dtype=None, reduce_results=False, renormalize=True,
                         use_grouped_topk=False, num_expert_group=None, topk_group=None,
                         quant_config=None, tp_size=None, ep_size=None, dp_size=None,
                         prefix="", custom_routing_function=None, scoring_func="softmax",
                         routed_scaling_factor=1.0, e_score_correction_bias=None,
                         apply_router_weight_on_input=False, activation="silu",
                         enable_eplb=False, num_redundant_experts=0, has_bias=False,
                         is_sequence_parallel=False, **kwargs):
                super().__init__()
                self.layer_name = prefix
                self.top_k = top_k
                self.logical_num_experts = num_experts
                self.global_num_experts = num_experts + num_redundant_experts
                self.enable_eplb = enable_eplb
                self.eplb_state = EplbLayerState()
                self.router = FusedTopKRouter(top_k, self.global_num_experts, self.eplb_state,
                                              renormalize, enable_eplb)
                g = torch.Generator().manual_seed(len(prefix) * 7 + 1)
                self.w13_weight = torch.nn.Parameter(torch.randn(
                    self.global_num_experts, 2 * intermediate_size, hidden_size, generator=g)
                    * 0.1, requires_grad=False)
                self.w2_weight = torch.nn.Parameter(torch.randn(
                    self.global_num_experts, hidden_size, intermediate_size, generator=g)
                    * 0.1, requires_grad=False)
                self.last_logical_ids = None

            def forward(self, hidden_states, router_logits):
                if getattr(self, "monolithic", False):  # a kernel that routes inside
                    topk_weights, topk_ids = self.router._compute_routing(
                        hidden_states, router_logits, None)
                else:
                    topk_weights, topk_ids = self.router.select_experts(hidden_states,
                                                                        router_logits)
                self.last_logical_ids = topk_ids.clone()
                ids = topk_ids.long()
                if self.enable_eplb:
                    # the kernel maps logical -> physical (a replica by token) and counts
                    # the real tokens into expert_load_view
                    st = self.eplb_state
                    rows = torch.arange(ids.shape[0]).unsqueeze(1)
                    rep = rows % st.logical_replica_count[ids]
                    ids = st.logical_to_physical_map[ids, rep]
                    n = getattr(self, "num_real_tokens", ids.shape[0])
                    st.expert_load_view.index_add_(
                        0, ids[:n].reshape(-1),
                        torch.ones(ids[:n].numel(), dtype=st.expert_load_view.dtype))
                out = torch.zeros_like(hidden_states)
                for e in range(self.global_num_experts):
                    tok, slot = (ids == e).nonzero(as_tuple=True)
                    if tok.numel() == 0:
                        continue
                    x = hidden_states[tok]
                    gu = x @ self.w13_weight[e].t()
                    g, u = gu.chunk(2, -1)
                    y = (torch.nn.functional.silu(g) * u) @ self.w2_weight[e].t()
                    out.index_add_(0, tok, y * topk_weights[tok, slot].unsqueeze(1))
                return out
    ''',
    "vllm/model_executor/models/__init__.py": "",
    "vllm/v1/__init__.py": "",
    "vllm/v1/core/__init__.py": "",
    "vllm/v1/core/sched/__init__.py": "",
    "vllm/v1/core/sched/output.py": '''
        from dataclasses import dataclass, field
        @dataclass
        class SchedulerOutput:
            num_scheduled_tokens: dict
            total_num_scheduled_tokens: int
            # stand-in only: vLLM's runner takes the ids from its persistent input batch
            token_ids: list = field(default_factory=list)
    ''',
    "vllm/v1/worker/__init__.py": "",
    "vllm/v1/worker/gpu_model_runner.py": RUNNER,
    "vllm/v1/worker/gpu/__init__.py": "",
    # the model runner v2: its own GPUModelRunner class with the same entry points
    "vllm/v1/worker/gpu/model_runner.py": RUNNER,
}

DRIVER = r'''
import json, logging, os, sys, types
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
import torch
if os.environ.get("STANDIN_PREIMPORT") == "1":  # vLLM's modules loaded before the plugins
    import vllm.v1.worker.gpu_model_runner  # noqa: F401
import vllm.plugins
vllm.plugins.load_general_plugins()
vllm.plugins.plugins_loaded = False
vllm.plugins.load_general_plugins()          # vLLM may load plugins again: harmless
from vllm.v1.core.sched.output import SchedulerOutput
if os.environ.get("STANDIN_RUNNER") == "v2":
    from vllm.v1.worker.gpu.model_runner import GPUModelRunner
else:
    from vllm.v1.worker.gpu_model_runner import GPUModelRunner
L, E, K, R = map(int, sys.argv[2:6])
eplb = sys.argv[6] == "1"
by_eplb_step = sys.argv[7] == "eplb"      # how the expected source numbers steps
hf = types.SimpleNamespace(layers=L, num_experts=E, top_k=K, redundant=R)
mc = types.SimpleNamespace(model="stand-in/tiny-moe", hf_config=hf, compute_hash=lambda: "h0")
pc = types.SimpleNamespace(enable_eplb=eplb, eplb_config=types.SimpleNamespace(
    window_size=4, step_interval=3))
runner = GPUModelRunner(types.SimpleNamespace(model_config=mc, parallel_config=pc),
                        torch.device("cpu"))
runner.load_model()
for m in runner.model.experts:
    m.monolithic = os.environ.get("STANDIN_MONOLITHIC") == "1"
runner.profile_run()
runner._dummy_run(5)
g = torch.Generator().manual_seed(5)
batches = [{"a": 7, "b": 4}, {"a": 1, "b": 1}, {}, {"a": 1, "b": 1, "c": 9},
           {"a": 1}, "dummy", {"b": 1, "c": 1}, {"a": 3, "c": 1}, {"a": 1, "b": 1, "c": 1}]
truth, outs, exec_calls, eplb_calls = {}, [], 0, 1     # the _dummy_run above was one
for b in batches:
    if b == "dummy":
        runner._dummy_run(8)
        eplb_calls += 1
        continue
    n = sum(b.values())
    ids = torch.randint(0, 64, (n,), generator=g).tolist()
    out = runner.execute_model(SchedulerOutput(dict(b), n, ids))
    if out is None:
        out = runner.sample_tokens(None)
    if n:
        counts = [torch.bincount(m.last_logical_ids[:n].reshape(-1).long(),
                                 minlength=E).tolist() for m in runner.model.experts]
        key = eplb_calls if by_eplb_step else exec_calls
        truth[key] = {"counts": counts, "tokens": n,
                      "decode": all(v == 1 for v in b.values())}
        outs.append(out.sum().item())
        eplb_calls += 1
    exec_calls += 1
from moetrace import vllm_plugin
st = vllm_plugin.state()
if st is not None:
    st.close()
json.dump({"truth": truth, "outs": outs,
           "hooked": "select_experts" in vars(runner.model.experts[0].router),
           "disabled": None if st is None else st.disabled}, open(sys.argv[1], "w"))
'''


def read_trace(path):
    db = sqlite3.connect(path)
    runs = db.execute("SELECT run, name, layers, experts, topk, model, source "
                      "FROM runs").fetchall()
    out = {}
    for step, layer, blob in db.execute("SELECT step, layer, data FROM counts ORDER BY 1, 2"):
        v = np.zeros(EXPERTS, dtype=np.uint32)
        assert LIB.moetrace_counts_decode(blob, len(blob), v.ctypes.data, EXPERTS) == 0
        out.setdefault(step, np.zeros((LAYERS, EXPERTS), dtype=np.uint32))[layer] = v
    meta = {s: (ph, tok) for s, ph, tok in db.execute("SELECT step, phase, tokens FROM steps")}
    db.close()
    return runs, out, meta


# Each engine run is a process of its own, as vLLM's is, but torch is
# imported once: a zygote process imports it and forks one child per run,
# which sets the run's environment, directory, sys.path (as PYTHONPATH
# would), arguments and output files, runs the driver as __main__ and exits
# as an interpreter does (threads joined, atexit handlers run), so the plugin
# sees what it sees in an engine.  Importing torch and tearing it down at
# exit took most of this test's time.
ZYGOTE = r'''
import atexit, json, os, sys, threading, time, traceback
import torch  # noqa: F401  (an engine imports torch before anything else)
base = sys.path[1:]
for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        rc = 1
        try:
            os.chdir(req["cwd"])
            os.environ.clear()
            os.environ.update(req["env"])
            out = os.open(req["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            err = os.open(req["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(out, 1)
            os.dup2(err, 2)
            os.close(out)
            os.close(err)
            sys.stdin.close()
            argv = req["argv"]
            sys.argv = list(argv)
            extra = [p for p in req["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
            sys.path[:] = [os.path.dirname(argv[0])] + extra + base
            with open(argv[0]) as f:
                code = compile(f.read(), argv[0], "exec")
            exec(code, {"__name__": "__main__", "__file__": argv[0]})
            rc = 0
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            traceback.print_exc()
        # what an interpreter does at exit, in its order (threads joined,
        # then atexit handlers: the plugin's close), but not the teardown
        # of torch's modules, which took two seconds a run
        try:
            getattr(threading, "_shutdown", lambda: None)()
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            traceback.print_exc()
            rc = rc or 1
        os._exit(rc)
    end = time.monotonic() + req["timeout"]
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            rc = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() > end:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            rc = "timed out"
            break
        time.sleep(0.02)
    print(json.dumps({"rc": rc}), flush=True)
'''


class Zygote:
    def __init__(self):
        self.p = subprocess.Popen([sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)

    def run(self, argv, env, cwd, timeout=300):
        """Runs `python3 ARGV` in a child of the zygote; returns (exit status, stderr)."""
        logs = tempfile.mkdtemp()  # beside the run's directory, not in it
        out, err = os.path.join(logs, "stdout"), os.path.join(logs, "stderr")
        self.p.stdin.write(json.dumps({"argv": argv, "env": env, "cwd": cwd, "out": out,
                                       "err": err, "timeout": timeout}) + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError("the zygote exited (status %s)" % self.p.wait())
        with open(err) as f:
            text = f.read()
        os.remove(out)
        os.remove(err)
        os.rmdir(logs)
        return json.loads(line)["rc"], text

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=60)


class VllmPluginTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        root = cls.tmp.name
        cls.fake = os.path.join(root, "fake")
        for rel, text in FAKE.items():
            p = os.path.join(cls.fake, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write(textwrap.dedent(text))
        # the package as pip would install it: built by its backend, unpacked
        sys.path.insert(0, os.path.join(PY, "build_backend"))
        import moetrace_build
        wheels = os.path.join(root, "wheel")
        os.makedirs(wheels)
        name = moetrace_build.build_wheel(wheels)
        cls.site = os.path.join(root, "site")
        with zipfile.ZipFile(os.path.join(wheels, name)) as z:
            z.extractall(cls.site)
        cls.driver = os.path.join(root, "driver.py")
        with open(cls.driver, "w") as f:
            f.write(DRIVER)
        cls.zygote = Zygote()

    @classmethod
    def tearDownClass(cls):
        cls.zygote.close()
        cls.tmp.cleanup()

    def run_engine(self, eplb=False, steps_of="topk", **env):
        d = tempfile.mkdtemp(dir=self.tmp.name)
        res = os.path.join(d, "result.json")
        e = {k: v for k, v in os.environ.items()
             if not k.startswith("MOETRACE_VLLM") and k not in ("RANK", "WORLD_SIZE")}
        e["PYTHONPATH"] = os.pathsep.join([self.fake, self.site])
        e.update({k: v.replace("@", d) for k, v in env.items()})
        argv = [self.driver, res, str(LAYERS), str(EXPERTS), str(TOPK), str(REDUNDANT),
                "1" if eplb else "0", steps_of]
        rc, err = self.zygote.run(argv, e, d)
        self.assertEqual(rc, 0, err)
        with open(res) as f:
            return d, json.load(f), err

    def check_trace(self, path, result, source):
        runs, got, meta = read_trace(path)
        self.assertEqual(len(runs), 1)
        _, name, layers, experts, topk, model, src = runs[0]
        self.assertEqual((layers, experts), (LAYERS, EXPERTS))
        self.assertEqual(model, "stand-in/tiny-moe")
        self.assertIn(source, src)
        truth = {int(k): v for k, v in result["truth"].items()}
        self.assertEqual(sorted(got), sorted(truth))
        for s, t in truth.items():
            np.testing.assert_array_equal(got[s], np.array(t["counts"], dtype=np.uint32),
                                          err_msg="step %d" % s)
            self.assertEqual(int(got[s].sum()), t["tokens"] * TOPK * LAYERS)
            self.assertEqual(meta[s], (2 if t["decode"] else 0, t["tokens"]))
        return runs[0]

    def test_topk_ids(self):
        d, r, log = self.run_engine(MOETRACE_VLLM_TRACE="@/t.db", MOETRACE_VLLM_RUN="r1")
        self.assertFalse(r["disabled"], log)
        self.assertTrue(r["hooked"])
        run = self.check_trace(os.path.join(d, "t.db"), r, "top-k ids")
        self.assertEqual(run[1], "r1")
        self.assertEqual(run[4], TOPK)
        # the padded rows of each batch (8 - n % 8 token-0 rows) were routed but not counted
        self.assertIn("recording 3 MoE layers x 8 experts from topk", log)

    def test_metrics_endpoint(self):
        """MOETRACE_VLLM_METRICS starts the recorder's /metrics endpoint; an
        address that cannot be served is logged and the recording goes on."""
        # the plugin's runs record no EP layout: without one, no endpoint
        d, r, log = self.run_engine(MOETRACE_VLLM_TRACE="@/t.db",
                                    MOETRACE_VLLM_METRICS="127.0.0.1:0")
        self.assertIn("records no EP layout", log)
        self.assertIn("MOETRACE_VLLM_EP=RANKSxSLOTS gives the EP layout", log)
        self.check_trace(os.path.join(d, "t.db"), r, "top-k ids")
        d, r, log = self.run_engine(MOETRACE_VLLM_TRACE="@/t.db", MOETRACE_VLLM_EP="2x4",
                                    MOETRACE_VLLM_METRICS="127.0.0.1:0")
        m = re.search(r"moetrace: metrics at http://127\.0\.0\.1:0/metrics \(port (\d+)\)", log)
        self.assertTrue(m and int(m.group(1)) > 0, log)
        self.check_trace(os.path.join(d, "t.db"), r, "top-k ids")
        d, r, log = self.run_engine(MOETRACE_VLLM_TRACE="@/t.db", MOETRACE_VLLM_EP="2x4",
                                    MOETRACE_VLLM_METRICS="nowhere")
        self.assertIn("MOETRACE_VLLM_METRICS=nowhere", log)
        self.assertIn("is not HOST:PORT", log)
        self.check_trace(os.path.join(d, "t.db"), r, "top-k ids")

    def test_topk_ids_model_runner_v2(self):
        d, r, log = self.run_engine(MOETRACE_VLLM_TRACE="@/t.db", STANDIN_RUNNER="v2")
        self.check_trace(os.path.join(d, "t.db"), r, "top-k ids")

    def test_modules_imported_before_the_plugin(self):
        d, r, log = self.run_engine(MOETRACE_VLLM_TRACE="@/t.db", STANDIN_PREIMPORT="1")
        self.check_trace(os.path.join(d, "t.db"), r, "top-k ids")

    def test_eplb_load(self):
        d, r, log = self.run_engine(eplb=True, steps_of="eplb",
                                    MOETRACE_VLLM_TRACE="@/t-{rank}.db", RANK="3",
                                    WORLD_SIZE="4")
        self.assertFalse(r["disabled"], log)
        self.assertFalse(r["hooked"])  # EPLB layers: no top-k hook
        run = self.check_trace(os.path.join(d, "t-3.db"), r, "EPLB expert_load_pass")
        self.assertIn("rank 3 of 4", run[6])
        self.assertEqual(run[1][-6:], "-rank3")

    def test_topk_forced_with_eplb_on(self):
        # logical ids (select_experts returns them before the kernel's physical mapping)
        d, r, log = self.run_engine(eplb=True, MOETRACE_VLLM_TRACE="@/t.db",
                                    MOETRACE_VLLM_SOURCE="topk")
        self.check_trace(os.path.join(d, "t.db"), r, "top-k ids")

    def test_off_without_env(self):
        d, r, log = self.run_engine()
        self.assertIsNone(r["disabled"])
        self.assertFalse(r["hooked"])
        self.assertEqual(sorted(os.listdir(d)), ["result.json"])

    def test_other_ranks_without_placeholder(self):
        d, r, log = self.run_engine(MOETRACE_VLLM_TRACE="@/t.db", RANK="1", WORLD_SIZE="2")
        self.assertFalse(r["disabled"])
        self.assertFalse(os.path.exists(os.path.join(d, "t.db")))
        self.assertIn("only rank 0 records", log)

    def test_failure_logs_once_and_engine_runs_on(self):
        _, clean, _ = self.run_engine()
        d, r, log = self.run_engine(MOETRACE_VLLM_TRACE="@/no/such/dir/t.db")
        self.assertTrue(r["disabled"])
        self.assertEqual(log.count("recording stops"), 1, log)
        self.assertIn("no/such/dir", log)
        self.assertEqual(r["outs"], clean["outs"])  # the engine's results are untouched
        self.assertEqual(r["truth"], clean["truth"])

    def test_monolithic_kernel_is_reported(self):
        # the router is never asked: nothing is recorded, and the log says why
        d, r, log = self.run_engine(MOETRACE_VLLM_TRACE="@/t.db", STANDIN_MONOLITHIC="1")
        self.assertTrue(r["disabled"])
        self.assertEqual(log.count("recording stops"), 1, log)
        self.assertIn("monolithic MoE kernel", log)
        self.assertFalse(os.path.exists(os.path.join(d, "t.db")))

    def test_count_drops_padding_ids_and_padded_rows(self):
        # -1 (padding ids), ids >= experts (zero-compute experts) and rows past the
        # step's scheduled tokens are not counted; the caller's ids are left as given
        from moetrace import vllm_plugin as vp
        st = vp._State("unused.db", "topk", None)
        st.experts = 4
        st.buf = torch.zeros((2, 5), dtype=torch.int64)
        st.ntok = torch.tensor(2)
        ids = torch.tensor([[0, -1], [3, 4], [1, 1]], dtype=torch.int64)
        st.count(1, ids)  # as inside a CUDA graph: rows masked against ntok on the device
        self.assertEqual(st.buf[1, :4].tolist(), [1, 0, 0, 1])
        self.assertEqual(st.buf[0].tolist(), [0] * 5)
        st.live = 2       # eager: the host slices the step's tokens
        st.count(0, ids)
        self.assertEqual(st.buf[0, :4].tolist(), [1, 0, 0, 1])
        self.assertEqual(ids.tolist(), [[0, -1], [3, 4], [1, 1]])

    def test_bad_source_is_refused(self):
        d, r, log = self.run_engine(MOETRACE_VLLM_TRACE="@/t.db", MOETRACE_VLLM_SOURCE="ids")
        self.assertIsNone(r["disabled"])
        self.assertIn("expected auto, topk or eplb", log)
        self.assertFalse(os.path.exists(os.path.join(d, "t.db")))

    def test_vllm_plugins_filter(self):
        # VLLM_PLUGINS names the plugins to load: without moetrace nothing is hooked
        d, r, log = self.run_engine(MOETRACE_VLLM_TRACE="@/t.db", VLLM_PLUGINS="other")
        self.assertIsNone(r["disabled"])
        self.assertFalse(os.path.exists(os.path.join(d, "t.db")))


if __name__ == "__main__":
    unittest.main()
