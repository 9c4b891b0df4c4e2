"""moetrace.attach() on a small random torch MoE (examples/torch_moe.py) in
both router styles: what is recorded per step must equal the number of
tokens each expert module actually processed, counted by hooks on the
experts themselves."""
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

LIB.store_codec_decode.restype = ctypes.c_int
LIB.store_codec_decode.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p,
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


def read(path, run):
    db = sqlite3.connect(path)
    out = {}
    for step, layer, blob in db.execute(
            "SELECT c.step, c.layer, c.data FROM counts c JOIN runs r ON r.run = c.run "
            "WHERE r.name = ? ORDER BY 1, 2", (run,)):
        v = np.zeros(EXPERTS, dtype=np.uint32)
        assert LIB.store_codec_decode(blob, len(blob), v.ctypes.data, EXPERTS) == 0
        out.setdefault(step, np.zeros((LAYERS, EXPERTS), dtype=np.uint32))[layer] = v
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
        self.assertEqual(hook.routers[0][0], "model.layers.0.block_sparse_moe.gate")
        self.assertEqual(hook.layer_ids, [0, 1, 2])

    def test_deepseek_ids_router(self):
        hook = self.record("deepseek")
        self.assertEqual(hook.routers[-1][0], "model.layers.2.mlp.gate")

    def test_pattern_option(self):
        self.record("mixtral", pattern=r"layers\.\d+\.block_sparse_moe\.gate$")

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
            with self.assertRaisesRegex(ValueError, "found 3 router modules"):
                moetrace.attach(m, rec)
            with self.assertRaisesRegex(ValueError, "no router modules match"):
                moetrace.attach(m, rec, pattern=r"nothing$")


if __name__ == "__main__":
    unittest.main(verbosity=2)
