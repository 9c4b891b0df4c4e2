"""moetrace.attach() on a small random torch MoE (examples/torch_moe.py) in
both router styles, and on stand-ins of every Hugging Face MoE family in
its transformers v4 and v5 layouts (tests/py/hf_moe.py): what is recorded
per step must equal the routing the model actually dispatched."""
import os
import sqlite3
import sys
import tempfile
import unittest

try:
    import numpy as np
    import torch
except ImportError:
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3") \
            and not os.environ.get("MOETRACE_PY_REEXEC"):
        os.environ["MOETRACE_PY_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    print("needs python3-torch and python3-numpy")
    sys.exit(77)

TOP = os.environ.get("MOETRACE_TOP") or os.path.join(os.path.dirname(__file__), "..", "..")
sys.path.insert(0, os.path.join(TOP, "collector", "python"))
sys.path.insert(0, os.path.join(TOP, "examples"))
if not os.environ.get("MOETRACE_LIB") and os.path.exists(os.path.join(TOP, "libmoetrace.so")):
    os.environ["MOETRACE_LIB"] = os.path.join(TOP, "libmoetrace.so")
import moetrace  # noqa: E402

try:
    LIB = moetrace.load()
except OSError as e:
    print("libmoetrace.so with the recorder not found (run make, or set MOETRACE_LIB): %s" % e)
    sys.exit(77)

import ctypes  # noqa: E402

import torch_moe  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_moe  # noqa: E402

LIB.moetrace_counts_decode.restype = ctypes.c_int
LIB.moetrace_counts_decode.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p,
                                   ctypes.c_size_t]
LAYERS, EXPERTS, TOPK = 3, 8, 2


class ExpertCounter:
    """Counts the rows each expert module processes, per forward pass."""

    def __init__(self, model):
        self.steps = []
        self.handles = [model.register_forward_pre_hook(self.begin)]
        for l, layer in enumerate(model.model.layers):
            moe = layer.block_sparse_moe if hasattr(layer, "block_sparse_moe") else layer.mlp
            for e, ex in enumerate(moe.experts):
                self.handles.append(ex.register_forward_hook(self.count(l, e)))

    def begin(self, module, args):
        self.steps.append(np.zeros((LAYERS, EXPERTS), dtype=np.uint32))

    def count(self, l, e):
        def hook(module, args, out):
            self.steps[-1][l, e] += args[0].shape[0]
        return hook


def read(path, run, layers=LAYERS, experts=EXPERTS):
    db = sqlite3.connect(path)
    out = {}
    for step, layer, blob in db.execute(
            "SELECT c.step, c.layer, c.data FROM counts c JOIN runs r ON r.run = c.run "
            "WHERE r.name = ? ORDER BY 1, 2", (run,)):
        v = np.zeros(experts, dtype=np.uint32)
        assert LIB.moetrace_counts_decode(blob, len(blob), v.ctypes.data, experts) == 0
        out.setdefault(step, np.zeros((layers, experts), dtype=np.uint32))[layer] = v
    meta = db.execute("SELECT s.step, s.phase, s.tokens FROM steps s JOIN runs r "
                      "ON r.run = s.run WHERE r.name = ? ORDER BY 1", (run,)).fetchall()
    db.close()
    return out, meta


class TorchHookTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.db = os.path.join(self.dir.name, "t.db")
        torch.manual_seed(3)

    def tearDown(self):
        self.dir.cleanup()

    def model(self, style):
        return torch_moe.TinyMoeForCausalLM(vocab=64, hidden=16, inter=32, layers=LAYERS,
                                            experts=EXPERTS, topk=TOPK, style=style).eval()

    def record(self, style, pattern=None):
        m = self.model(style)
        counter = ExpertCounter(m)
        with moetrace.Recorder(self.db, style, layers=LAYERS, experts=EXPERTS,
                               topk=TOPK) as rec:
            hook = moetrace.attach(m, rec, pattern=pattern, first_step=100)
            torch_moe.generate(m, torch.randint(0, 64, (2, 5)), 3)
            hook.remove()
            torch_moe.generate(m, torch.randint(0, 64, (2, 5)), 1)  # not recorded
        got, meta = read(self.db, style)
        self.assertEqual(sorted(got), [100, 101, 102, 103])
        for i, s in enumerate(sorted(got)):
            np.testing.assert_array_equal(got[s], counter.steps[i], err_msg="step %d" % s)
        self.assertEqual(meta, [(100, 1, 10), (101, 2, 2), (102, 2, 2), (103, 2, 2)])
        self.assertEqual(int(got[100].sum()), 10 * TOPK * LAYERS)
        return hook

    def test_mixtral_logits_router(self):
        hook = self.record("mixtral")
        self.assertEqual(hook.blocks[0][0], "model.layers.0.block_sparse_moe")
        self.assertEqual(hook.layer_ids, [0, 1, 2])

    def test_deepseek_ids_router(self):
        hook = self.record("deepseek")
        self.assertEqual(hook.blocks[-1][0], "model.layers.2.mlp")

    def test_hf_families_v4_and_v5(self):
        """Each family's recorded counts equal the ids its blocks
        dispatched, step by step, with a run that does not state top-k
        (so nothing may fall back to an assumed k): DeepSeek-V3's grouped
        top-k with the correction bias, Qwen's k=4, DeepSeek-V2 v5 whose
        gate module never runs, GPT-OSS's keyword call, Llama-4's dense
        experts."""
        for fam in hf_moe.FAMILIES:
            with self.subTest(fam):
                torch.manual_seed(11)
                m = hf_moe.ForCausalLM(fam).eval()
                blocks = m.moe_blocks()
                L = len(blocks)
                db = os.path.join(self.dir.name, fam + ".db")
                with moetrace.Recorder(db, fam, layers=L, experts=EXPERTS) as rec:
                    hook = moetrace.attach(m, rec, first_step=5)
                    with torch.no_grad():
                        m(torch.randint(0, 64, (2, 5)))
                        m(torch.randint(0, 64, (2, 1)))
                        m(torch.randint(0, 64, (3, 1)))
                    hook.remove()
                got, meta = read(db, fam, L, EXPERTS)
                self.assertEqual(sorted(got), [5, 6, 7])
                k = m.config.num_experts_per_tok
                for i, step in enumerate(sorted(got)):
                    want = np.zeros((L, EXPERTS), dtype=np.uint32)
                    for l, b in enumerate(blocks):
                        want[l] = np.bincount(b.truth[i].reshape(-1).numpy(),
                                              minlength=EXPERTS)
                    np.testing.assert_array_equal(got[step], want,
                                                  err_msg="%s step %d" % (fam, step))
                    self.assertEqual(int(got[step].sum()), L * k * [10, 2, 3][i])
                self.assertEqual(meta, [(5, 1, 10), (6, 2, 2), (7, 2, 3)])

    def test_hf_v5_deepseek_v3_is_not_top_k_of_logits(self):
        """The stand-in really differs from a plain top-k of the router's
        logits, so the family test above can tell the two apart."""
        torch.manual_seed(11)
        m = hf_moe.ForCausalLM("deepseek_v3-v5").eval()
        block = m.moe_blocks()[0]
        x = torch.randn(40, 16)
        with torch.no_grad():
            logits = block.gate(x)
            idx, _ = block.route_tokens_to_experts(logits)
        plain = torch.topk(logits, 3, dim=-1).indices
        self.assertNotEqual(torch.bincount(idx.reshape(-1), minlength=8).tolist(),
                            torch.bincount(plain.reshape(-1), minlength=8).tolist())

    def test_k_is_asked_for_not_assumed(self):
        class Quiet(hf_moe.Llama4RouterV4):  # a router that keeps its k to itself
            def forward(self, hidden_states):
                self.top_k = self._pick
                try:
                    return super().forward(hidden_states)
                finally:
                    del self.top_k

        m = hf_moe.ForCausalLM("llama4-v5").eval()
        for b in m.moe_blocks():
            del b.top_k
            b.router._pick = b.router.top_k
            del b.router.top_k
            b.router.__class__ = Quiet
        with moetrace.Recorder(self.db, "k", layers=3, experts=EXPERTS) as rec:
            with self.assertRaisesRegex(ValueError, "pass topk=K"):
                moetrace.attach(m, rec)
            hook = moetrace.attach(m, rec, topk=1)
            with torch.no_grad():
                m(torch.randint(0, 64, (2, 4)))
            hook.remove()
        got, _ = read(self.db, "k")
        self.assertEqual(int(got[0].sum()), 3 * 8)

        class Bare(torch.nn.Module):  # a router matched by pattern, logits only
            def __init__(self):
                super().__init__()
                self.layers = torch.nn.ModuleList(
                    torch.nn.ModuleDict({"scorer": torch.nn.Linear(16, EXPERTS)})
                    for _ in range(2))

            def forward(self, x):
                for layer in self.layers:
                    layer["scorer"](x)
                return x

        bare = Bare()
        with moetrace.Recorder(self.db, "bare", layers=2, experts=EXPERTS) as rec:
            hook = moetrace.attach(bare, rec, pattern=r"scorer$")
            with self.assertRaisesRegex(ValueError, "pass topk=K"):
                bare(torch.randn(1, 4, 16))
            hook.remove()
        with moetrace.Recorder(self.db, "bare4", layers=2, experts=EXPERTS) as rec:
            hook = moetrace.attach(bare, rec, pattern=r"scorer$", topk=4)
            with torch.no_grad():
                bare(torch.randn(1, 5, 16))
            hook.remove()
        got, _ = read(self.db, "bare4", 2)
        self.assertEqual(got[0].sum(axis=1).tolist(), [20, 20])

    def test_block_that_calls_no_expert_module_is_an_error(self):
        """A v4 block whose forward a fused kernel replaced routes tokens
        without calling its expert modules: an error, not zero heat."""
        m = hf_moe.ForCausalLM("mixtral-v4").eval()
        for b in m.moe_blocks():
            b.forward = lambda x, _b=b: (torch.zeros_like(x), _b.gate(x))
        with moetrace.Recorder(self.db, "fused", layers=3, experts=EXPERTS) as rec:
            hook = moetrace.attach(m, rec)
            with self.assertRaisesRegex(RuntimeError, "without calling any of its expert"):
                with torch.no_grad():
                    m(torch.randint(0, 64, (1, 3)))
            hook.remove()

    def test_run_topk_contradicting_the_model_is_refused(self):
        m = hf_moe.ForCausalLM("qwen2_moe-v4").eval()
        with moetrace.Recorder(self.db, "q", layers=3, experts=EXPERTS, topk=2) as rec:
            with self.assertRaisesRegex(ValueError, "picks 4 experts per token.*topk=2"):
                moetrace.attach(m, rec)
        m = hf_moe.ForCausalLM("mixtral-v4").eval()
        with moetrace.Recorder(self.db, "e", layers=3, experts=EXPERTS + 1) as rec:
            with self.assertRaisesRegex(ValueError, "has 8 experts"):
                moetrace.attach(m, rec)

    def test_pattern_option(self):
        self.record("mixtral", pattern=r"layers\.\d+\.block_sparse_moe\.gate$")
        m = hf_moe.ForCausalLM("deepseek_v3-v5")
        for pat in (r"mlp\.experts$", r"mlp\.gate$", r"layers\.[12]\.mlp$"):
            self.assertEqual([n for n, _ in moetrace.find_routers(m, pat)],
                             ["model.layers.1.mlp", "model.layers.2.mlp"], pat)

    def test_example_runs(self):
        db = os.path.join(self.dir.name, "ex.db")
        self.assertEqual(torch_moe.main(["--db", db, "--steps", "4", "--layers", "2",
                                         "--experts", "8", "--run", "ex"]), 0)
        con = sqlite3.connect(db)
        self.assertEqual(con.execute("SELECT count(*), min(phase), max(phase) FROM steps")
                         .fetchone(), (5, 1, 2))
        self.assertEqual(con.execute("SELECT count(*) FROM counts").fetchone()[0], 10)

    def test_cuda_staging_logic(self):
        """The CUDA path without a GPU: a stand-in tensor that says it is on
        the device, pinned buffers as plain ones, events that complete on
        the second query.  Steps must arrive in order, buffers be reused,
        and nothing be lost at flush/close."""
        class FakeCuda:
            __module__ = "torch_fake"
            is_cuda = True

            def __init__(self, t):
                self.t = t
                self.dtype = t.dtype

            def numel(self):
                return self.t.numel()

            def reshape(self, *shape):
                return self.t.reshape(*shape)

        class FakeEvent:
            made = 0

            def __init__(self):
                FakeEvent.made += 1
                self.polls = 0

            def record(self):
                pass

            def query(self):
                self.polls += 1
                return self.polls > 1

            def synchronize(self):
                pass

        real_empty, real_event = torch.empty, torch.cuda.Event
        torch.empty = lambda *a, pin_memory=False, **k: real_empty(*a, **k)
        torch.cuda.Event = FakeEvent
        try:
            want = []
            with moetrace.Recorder(self.db, "cuda", layers=LAYERS, experts=EXPERTS) as rec:
                for s in range(12):
                    c = torch.randint(0, 50, (LAYERS, EXPERTS), dtype=torch.int64)
                    want.append(c.numpy().astype(np.uint32))
                    self.assertTrue(rec.step(s, FakeCuda(c), "decode", 3))
                self.assertLessEqual(len(rec._staging.free) + len(rec._staging.busy), 4)
                rec.step(12, np.zeros((LAYERS, EXPERTS), dtype=np.uint32))  # CPU after GPU
                want.append(np.zeros((LAYERS, EXPERTS), dtype=np.uint32))
                # a float tensor on the device is refused as on the CPU, not
                # truncated by the copy into the integer staging buffer
                for bad in (torch.full((LAYERS, EXPERTS), 1.5), torch.ones(LAYERS, EXPERTS)):
                    with self.assertRaisesRegex(ValueError, "step 13: counts: integer tensor "
                                                "expected, not torch.float32"):
                        rec.step(13, FakeCuda(bad))
                    with self.assertRaisesRegex(ValueError, "integer tensor expected"):
                        rec.step(13, bad)
        finally:
            torch.empty, torch.cuda.Event = real_empty, real_event
        got, meta = read(self.db, "cuda")
        self.assertEqual(sorted(got), list(range(13)))
        for s in range(13):
            np.testing.assert_array_equal(got[s], want[s], err_msg="step %d" % s)
        self.assertEqual(FakeEvent.made, 12)

    def test_mismatches_refused(self):
        m = self.model("mixtral")
        with moetrace.Recorder(self.db, "x", layers=LAYERS + 1, experts=EXPERTS) as rec:
            with self.assertRaisesRegex(ValueError, "found 3 MoE blocks"):
                moetrace.attach(m, rec)
            with self.assertRaisesRegex(ValueError, "no MoE blocks"):
                moetrace.attach(m, rec, pattern=r"nothing$")


if __name__ == "__main__":
    unittest.main(verbosity=2)
