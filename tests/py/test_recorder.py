"""The Python Recorder (collector/python/moetrace) over libmoetrace:
numpy arrays, plain lists, top-k ids, placements, errors.  Counts are read
back from the database and decoded with the library's own codec."""
import os
import sqlite3
import struct
import sys
import tempfile
import unittest

# Debian's python3-numpy lives under the system interpreter.
try:
    import numpy as np
except ImportError:
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3") \
            and not os.environ.get("MOETRACE_PY_REEXEC"):
        os.environ["MOETRACE_PY_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    print("needs python3-numpy")
    sys.exit(77)

TOP = os.environ.get("MOETRACE_TOP") or os.path.join(os.path.dirname(__file__), "..", "..")
sys.path.insert(0, os.path.join(TOP, "collector", "python"))
if not os.environ.get("MOETRACE_LIB") and os.path.exists(os.path.join(TOP, "libmoetrace.so")):
    os.environ["MOETRACE_LIB"] = os.path.join(TOP, "libmoetrace.so")
import moetrace  # noqa: E402

try:
    LIB = moetrace.load()
except OSError as e:
    print("libmoetrace.so with the recorder not found (run make, or set MOETRACE_LIB): %s" % e)
    sys.exit(77)

import ctypes  # noqa: E402

LIB.moetrace_counts_decode.restype = ctypes.c_int
LIB.moetrace_counts_decode.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p,
                                   ctypes.c_size_t]
L, E = 3, 8


def read_counts(path, run):
    """{step: L x E numpy array} of a run, decoded by moetrace_counts_decode."""
    db = sqlite3.connect(path)
    out = {}
    rows = db.execute("SELECT c.step, c.layer, c.data FROM counts c JOIN runs r "
                      "ON r.run = c.run WHERE r.name = ? ORDER BY 1, 2", (run,))
    for step, layer, blob in rows:
        v = np.zeros(E, dtype=np.uint32)
        assert LIB.moetrace_counts_decode(blob, len(blob), v.ctypes.data, E) == 0
        out.setdefault(step, np.zeros((L, E), dtype=np.uint32))[layer] = v
    steps = db.execute("SELECT s.step, s.phase, s.tokens FROM steps s JOIN runs r "
                       "ON r.run = s.run WHERE r.name = ? ORDER BY 1", (run,)).fetchall()
    db.close()
    return out, steps


class RecorderTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.db = os.path.join(self.dir.name, "t.db")

    def tearDown(self):
        self.dir.cleanup()

    def rec(self, name, **kw):
        kw.setdefault("ranks", 2)
        kw.setdefault("slots", 5)
        return moetrace.Recorder(self.db, name, layers=L, experts=E, topk=2, **kw)

    def test_numpy_and_lists_roundtrip(self):
        rng = np.random.default_rng(1)
        want = {}
        with self.rec("np", block=True, ring_steps=4, batch_steps=2) as r:
            for s in range(40):
                c = rng.integers(0, 1000, size=(L, E))
                form = s % 4
                if form == 0:
                    arg = c.astype(np.uint32)
                elif form == 1:
                    arg = c  # int64, converted
                elif form == 2:
                    arg = np.asfortranarray(c.astype(np.uint32))  # non-contiguous in C order
                else:
                    arg = c.tolist()  # plain nested lists
                self.assertTrue(r.step(s, arg, "decode" if s % 2 else "prefill", tokens=s))
                want[s] = c
            st = r.stats()
        self.assertEqual(r.stats()["recorded"], 40)
        self.assertEqual(st["ring_steps"], 4)
        self.assertGreater(st["mem_bound"], 4 * L * E * 4)
        got, steps = read_counts(self.db, "np")
        self.assertEqual(sorted(got), list(range(40)))
        for s in want:
            np.testing.assert_array_equal(got[s], want[s])
        self.assertEqual(steps[3], (3, 2, 3))
        self.assertEqual(steps[4], (4, 1, 4))

    def test_topk_ids(self):
        ids0 = np.array([[0, 1], [1, 7], [-1, 0]], dtype=np.int64)
        with self.rec("topk") as r:
            r.step_topk(5, 0, ids0)
            r.step_topk(5, 2, [[3, 3]])
            r.step_end(5, "decode", 3)
            r.step_topk(6, 1, np.array([[2, 4]], dtype=np.int32))
        got, steps = read_counts(self.db, "topk")
        want = np.zeros((L, E), dtype=np.uint32)
        want[0, 0], want[0, 1], want[0, 7], want[2, 3] = 2, 2, 1, 2
        np.testing.assert_array_equal(got[5], want)
        self.assertEqual(steps[0], (5, 2, 3))
        self.assertEqual(got[6][1].tolist(), [0, 0, 1, 0, 1, 0, 0, 0])

    def test_placement(self):
        p = np.array([[(i + l) % E if i < E else 0 for i in range(10)] for l in range(L)])
        with self.rec("place") as r:
            r.step(0, np.zeros((L, E), dtype=np.uint32))
            r.placement(7, p.reshape(L, 2, 5))
            with self.assertRaises(moetrace.MoetraceError) as cm:
                r.placement(8, p[:, :9])
            self.assertEqual(cm.exception.code, -4)
        db = sqlite3.connect(self.db)
        rows = db.execute("SELECT step, layer, phy2log FROM deployed ORDER BY layer").fetchall()
        self.assertEqual(len(rows), L)
        for step, layer, blob in rows:
            self.assertEqual(step, 7)
            self.assertEqual(list(struct.unpack("<10i", blob)), p[layer].tolist())

    def test_shard_slot_counts(self):
        # 2 ranks x 5 slots: experts 0..7, then replicas of 0 and 1
        p = np.array([[i if i < E else i - E for i in range(10)] for _ in range(L)])
        slots = np.arange(1, L * 10 + 1, dtype=np.uint32).reshape(L, 10)
        want = np.zeros((L, E), dtype=np.uint32)
        for l in range(L):
            for i in range(5, 10):
                want[l, p[l, i]] += slots[l, i]
        with self.rec("rank1", shard_rank=1) as r:
            with self.assertRaises(moetrace.MoetraceError) as cm:
                r.step_slots(0, slots[:, 5:])
            self.assertEqual(cm.exception.code, -8)  # no placement yet
            r.placement(0, p)
            with self.assertRaises(moetrace.MoetraceError):
                r.step_slots(0, slots)  # all slots given to a one-rank shard
            r.step_slots(0, slots[:, 5:], "decode", 3)
        got, steps = read_counts(self.db, "rank1")
        np.testing.assert_array_equal(got[0], want)
        db = sqlite3.connect(self.db)
        src = db.execute("SELECT source FROM runs WHERE name = 'rank1'").fetchone()[0]
        self.assertTrue(src.startswith("shard rank=1"))

    def test_errors(self):
        r = self.rec("err")
        with self.assertRaises(moetrace.MoetraceError) as cm:
            r.step(0, np.zeros(L * E - 3, dtype=np.uint32))
        self.assertEqual(cm.exception.code, -4)
        self.assertIn("21 counts given", str(cm.exception))
        # a shape other than layers x experts, a transposed one too, which
        # holds as many values: refused, not read row-major as other counts
        for shape in ((L, E - 1), (E, L), (2, L, E)):
            with self.assertRaises(moetrace.MoetraceError) as cm:
                r.step(0, np.zeros(shape, dtype=np.uint32))
            self.assertEqual(cm.exception.code, -4)
            self.assertIn("shape %s, the run is %d layers x %d experts"
                          % ("x".join(map(str, shape)), L, E), str(cm.exception))
        self.assertEqual(r.stats()["recorded"] + r.stats()["dropped"], 0)
        with self.assertRaises(ValueError):
            r.step(0, -np.ones((L, E), dtype=np.int64))
        with self.assertRaises(ValueError):
            r.step(0, np.zeros((L, E)))  # floats are not counts
        with self.assertRaises(ValueError):
            r.step(0, np.zeros((L, E), dtype=np.uint32), phase="warmup")
        r.step(3, np.zeros((L, E), dtype=np.uint32))
        with self.assertRaises(moetrace.MoetraceError) as cm:
            r.step(2, np.zeros((L, E), dtype=np.uint32))
        self.assertEqual(cm.exception.code, -8)
        with self.assertRaises(moetrace.MoetraceError) as cm:
            r.step_topk(4, 0, [[0, E]])
        self.assertEqual(cm.exception.code, -7)
        r.close()
        r.close()  # a second close is a no-op
        self.assertEqual(r.stats()["recorded"], 1)
        with self.assertRaises(moetrace.MoetraceError) as cm:
            r.step(9, np.zeros((L, E), dtype=np.uint32))
        self.assertEqual(cm.exception.code, -8)
        # an existing run name is refused unless appending
        with self.assertRaises(moetrace.MoetraceError) as cm:
            self.rec("err")
        self.assertIn("already exists", str(cm.exception))
        with self.rec("err", append=True) as r2:
            r2.step(4, np.zeros((L, E), dtype=np.uint32))
        with self.assertRaises(moetrace.MoetraceError):
            moetrace.Recorder(self.db, "bad", layers=0, experts=E)

    def test_values_that_do_not_fit_are_refused(self):
        """Every value is refused with a ValueError naming the argument
        rather than truncated by a conversion (2**32+5 stored as 5, 1.7 as
        1, step 2**64+10 as 10, id 2**32+1 as expert 1), and nothing of a
        refused call reaches the database."""
        big = 2**32 + 5
        ok = np.ones((L, E), dtype=np.uint32)
        cases = [
            ("counts", lambda r: r.step(0, np.full((L, E), big, dtype=np.uint64))),
            ("counts", lambda r: r.step(0, np.full((L, E), big, dtype=np.int64))),
            ("counts", lambda r: r.step(0, [[big] * E] * L)),
            ("counts", lambda r: r.step(0, [[1.7] * E] * L)),
            ("counts", lambda r: r.step(0, "1" * (L * E))),
            ("counts", lambda r: r.step(0, b"\x01" * (L * E))),
            ("counts", lambda r: r.step(0, [["1"] * E] * L)),
            ("step", lambda r: r.step(2**64 + 10, ok)),
            ("step", lambda r: r.step(1.5, ok)),
            ("step", lambda r: r.step("3", ok)),
            ("tokens", lambda r: r.step(0, ok, tokens=2**64 + 1)),
            ("tokens", lambda r: r.step(0, ok, tokens=2.5)),
            ("phase", lambda r: r.step(0, ok, phase=2**40 + 1)),
            ("topk_ids", lambda r: r.step_topk(0, 0, np.array([[2**32 + 1, 0]], dtype=np.int64))),
            ("topk_ids", lambda r: r.step_topk(0, 0, [[2**32 + 1, 0]])),
            ("topk_ids", lambda r: r.step_topk(0, 0, [[1.0, 0]])),
            ("layer", lambda r: r.step_topk(0, 2**32, [[1, 0]])),
            ("step", lambda r: r.step_topk(2**63, 0, [[1, 0]])),
            ("slot_counts", lambda r: r.step_slots(0, np.full((L, 10), big, dtype=np.int64))),
            ("phy2log", lambda r: r.placement(0, np.full((L, 10), 2**32 + 1, dtype=np.int64))),
            ("from_step", lambda r: r.placement(2**64, np.zeros((L, 10), dtype=np.int32))),
        ]
        with self.rec("fit") as r:
            for what, call in cases:
                with self.assertRaises(ValueError, msg=what) as cm:
                    call(r)
                self.assertIn(what, str(cm.exception))
            r.step(7, ok)
        got, steps = read_counts(self.db, "fit")
        self.assertEqual(sorted(got), [7])
        self.assertEqual(steps, [(7, 0, 0)])
        db = sqlite3.connect(self.db)
        self.assertEqual(db.execute("SELECT count(*) FROM deployed").fetchone()[0], 0)
        for kw in ({"layers": 2**32 + 3}, {"experts": 8.5}, {"topk": 2**32 + 2}):
            args = dict(layers=L, experts=E)
            args.update(kw)
            with self.assertRaises(ValueError) as cm:
                moetrace.Recorder(self.db, "ctor", **args)
            self.assertIn(list(kw)[0], str(cm.exception))

    def test_torch_counts_that_do_not_fit(self):
        try:
            import torch
        except ImportError:
            self.skipTest("torch not installed")
        with self.rec("tfit") as r:
            for t in (torch.full((L, E), 2**32 + 5, dtype=torch.int64),
                      torch.full((L, E), -1, dtype=torch.int32),
                      torch.full((L, E), 1.7)):
                with self.assertRaisesRegex(ValueError, "counts"):
                    r.step(0, t)
            with self.assertRaisesRegex(ValueError, "topk_ids"):
                r.step_topk(0, 0, torch.tensor([[2**32 + 1, 0]]))

    def test_vllm_recipe_model_states(self):
        """docs/collector.md's vLLM recipe: each EP rank's expert_load_pass
        covers every physical slot (the tokens that rank dispatched);
        step_slots on a plain recorder per rank, then merge --sum, gives the
        logical heat of all tokens."""
        moe = os.environ.get("MOETRACE") or os.path.join(TOP, "moetrace")
        if not os.access(moe, os.X_OK):
            self.skipTest("no moetrace binary")
        import subprocess
        ranks, slots = 2, 5
        p2l = np.array([[(i + l) % E if i < E else (i * 3 + l) % E for i in range(10)]
                        for l in range(L)], dtype=np.int32)
        rng = np.random.default_rng(4)
        want = {}
        files = []
        for r in range(ranks):
            path = os.path.join(self.dir.name, "rank%d.db" % r)
            files.append(path)
            with moetrace.Recorder(path, "vllm", layers=L, experts=E, ranks=ranks,
                                   slots=slots) as rec:
                rec.placement(0, p2l)
                for step in range(3):
                    load_pass = rng.integers(0, 50, size=(L, ranks * slots)).astype(np.int32)
                    rec.step_slots(step, load_pass)
                    w = want.setdefault(step, np.zeros((L, E), dtype=np.uint32))
                    for l in range(L):
                        np.add.at(w[l], p2l[l], load_pass[l])
        out = os.path.join(self.dir.name, "all.db")
        p = subprocess.run([moe, "merge", "--sum", "--name", "all", out] + files,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        got, _ = read_counts(out, "all")
        self.assertEqual(sorted(got), [0, 1, 2])
        for step in got:
            np.testing.assert_array_equal(got[step], want[step])


if __name__ == "__main__":
    unittest.main(verbosity=2)
