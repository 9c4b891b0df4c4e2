"""moetrace.sglang_dump: SGLang expert-distribution dumps (tests/data/sglang,
written by tests/data/make_samples.py in torch's zip format) imported
through `moetrace import`; the cells must be the samples' HEAT, written out
here by hand.  The torch reader is exercised too when torch is installed."""
import io
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import unittest
import zipfile

TOP = os.environ.get("MOETRACE_TOP") or os.path.join(os.path.dirname(__file__), "..", "..")
sys.path.insert(0, os.path.join(TOP, "collector", "python"))
DATA = os.path.join(TOP, "tests", "data", "sglang")
MOETRACE = os.environ.get("MOETRACE") or os.path.join(TOP, "moetrace")
if not os.access(MOETRACE, os.X_OK):
    print("no moetrace binary (run make, or set MOETRACE)")
    sys.exit(77)

from moetrace import sglang_dump  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

# tests/data/make_samples.py HEAT: [step][moe layer][expert]
HEAT = [[[3, 0, 1, 4], [2, 2, 2, 2]], [[2, 3, 0, 3], [1, 3, 3, 1]]]


def run(*args):
    env = dict(os.environ, PYTHONPATH=os.path.join(TOP, "collector", "python"),
               MOETRACE=MOETRACE)
    p = subprocess.run([sys.executable, "-m", "moetrace.sglang_dump"] + list(args), env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    return p.returncode, p.stdout, p.stderr


def run_torch(*args):
    """run() for the torch reader, in this interpreter, which has imported
    torch already: a new one would import it again (two seconds of CPU)."""
    import contextlib
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = sglang_dump.main(list(args) + ["--moetrace", MOETRACE])
        except SystemExit as e:
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def cells(db, name):
    """{(step, layer): [tokens per expert]} through the expert_heat view."""
    out = subprocess.run([MOETRACE, "sql", "--format", "json", db,
                          "SELECT e.step, e.layer, e.expert, e.tokens FROM expert_heat e JOIN "
                          "runs r USING (run) WHERE r.name = '%s' ORDER BY 1, 2, 3" % name],
                         stdout=subprocess.PIPE, check=True, universal_newlines=True).stdout
    got = {}
    for row in json.loads(out):
        got.setdefault((row["step"], row["layer"]), []).append(row["tokens"])
    return got


def want(steps):
    return {(s, l): HEAT[i][l] for i, s in enumerate(steps) for l in range(2)}


class SglangDump(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.db = os.path.join(self.tmp.name, "t.db")

    def tearDown(self):
        self.tmp.cleanup()

    def test_stat(self):
        rc, out, err = run(os.path.join(DATA, "stat.pt"), "--into", self.db, "--no-torch")
        self.assertEqual(rc, 0, err)
        self.assertEqual(cells(self.db, "stat"), want([0, 1]))
        c = sqlite3.connect(self.db)
        # model layer 0 is dense (all zero): dropped, recorded as the first MoE layer's id
        self.assertEqual(c.execute("SELECT layers, experts, first_layer FROM runs").fetchone(),
                         (2, 4, 1))

    def test_per_pass_ranks_summed_and_map_deployed(self):
        dumps = [os.path.join(DATA, "per_pass_rank%d.pt" % r) for r in (0, 1)]
        rc, out, err = run(*dumps, "--into", self.db, "--run", "pp", "--no-torch")
        self.assertEqual(rc, 0, err)
        self.assertEqual(cells(self.db, "pp"), want([10, 11]))
        c = sqlite3.connect(self.db)
        self.assertEqual(c.execute("SELECT ranks, slots FROM runs").fetchone(), (2, 3))
        blobs = [bytes(b) for (b,) in c.execute("SELECT phy2log FROM deployed ORDER BY layer")]
        rows = [[int.from_bytes(b[i:i + 4], "little") for i in range(0, len(b), 4)]
                for b in blobs]
        self.assertEqual(rows, [[0, 1, 3, 2, 3, 0], [1, 2, 0, 3, 1, 2]])
        # one rank alone: only its share (the larger halves are rank 1's)
        rc, out, err = run(dumps[0], "--into", self.db, "--run", "r0", "--no-torch")
        self.assertEqual(rc, 0, err)
        got = cells(self.db, "r0")
        self.assertEqual(got[(10, 0)], [c // 2 for c in HEAT[0][0]])

    def test_jsonl_only(self):
        out_path = os.path.join(self.tmp.name, "h.jsonl")
        rc, out, err = run(os.path.join(DATA, "stat.pt"), "--jsonl", out_path, "--keep-dense",
                           "--no-torch")
        self.assertEqual(rc, 0, err)
        with open(out_path) as f:
            lines = [json.loads(x) for x in f]
        self.assertEqual(lines[0]["layers"], 3)
        self.assertEqual(lines[1]["counts"], [[0, 0, 0, 0]] + HEAT[0])

    def test_bad_input(self):
        def bad(path, msg, *more):
            rc, out, err = run(path, *more, "--into", self.db, "--no-torch")
            self.assertEqual(rc, 2, err)
            self.assertIn(msg, err)
            self.assertFalse(os.path.exists(self.db))
        p = os.path.join(self.tmp.name, "notzip.pt")
        with open(p, "w") as f:
            f.write("hello")
        bad(p, "notzip.pt: not a torch zip archive")
        p = os.path.join(self.tmp.name, "nopkl.pt")
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("archive/version", "3")
        bad(p, "nopkl.pt: no data.pkl in the archive")
        # a pickle that would run code is refused, not executed
        p = os.path.join(self.tmp.name, "evil.pt")
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("archive/data.pkl", b"cos\nsystem\n(S'true'\ntR.")
        bad(p, "refers to os.system")
        if torch is not None:  # nor run by torch.load, default or --torch
            mark = os.path.join(self.tmp.name, "ran")
            with zipfile.ZipFile(p, "w") as z:
                z.writestr("archive/data.pkl", ("cos\nsystem\n(S'touch %s'\ntR." % mark).encode())
            for mode in ([], ["--torch"]):
                rc, out, err = run_torch(p, "--into", self.db, *mode)
                self.assertEqual(rc, 2, err)
                self.assertIn("evil.pt", err)
                self.assertEqual(len(err.splitlines()), 1, err)
                self.assertFalse(os.path.exists(mark))
                self.assertFalse(os.path.exists(self.db))
        p = os.path.join(self.tmp.name, "other.pt")
        buf = io.BytesIO()
        import pickle
        pickle.dump({"weights": 1}, buf, protocol=2)
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("archive/data.pkl", buf.getvalue())
        bad(p, "neither a 'stat' dump (logical_count) nor a 'per_pass' dump")
        bad(os.path.join(DATA, "stat.pt"), "cannot be mixed",
            os.path.join(DATA, "per_pass_rank0.pt"))
        # zip fields that make zipfile raise other than BadZipFile: a flipped "version
        # needed" (NotImplementedError) and compression method, in the central directory
        with open(os.path.join(DATA, "stat.pt"), "rb") as f:
            orig = f.read()
        cd = orig.index(b"PK\x01\x02")
        for off, val, msg in ((6, b"\x54\x00", "zip file version"),
                              (10, b"\x63\x00", "stat_10.pt: ")):
            p = os.path.join(self.tmp.name, "stat_%d.pt" % off)
            with open(p, "wb") as f:
                f.write(orig[:cd + off] + val + orig[cd + off + 2:])
            bad(p, msg)
        bad(os.path.join(self.tmp.name, "missing.pt"), "cannot open")
        # a member flagged as a directory: torch's reader would read the storage as empty
        cd = orig.index(b"PK\x01\x02", orig.index(b"archive/data/0", cd) - 46)
        p = os.path.join(self.tmp.name, "dirflag.pt")
        with open(p, "wb") as f:
            f.write(orig[:cd + 38] + b"\x10" + orig[cd + 39:])
        bad(p, "is a directory or repeated")
        if torch is not None:
            rc, out, err = run_torch(p, "--into", self.db, "--torch")
            self.assertEqual(rc, 2, err)
            self.assertIn("is a directory or repeated", err)

    def test_bit_flipped_dumps(self):
        """Every single-bit flip of the samples (every 7th byte, both
        readers) either leaves the data as it was or exits 2 with one line
        naming the file: no traceback, no other exit status, no changed
        count imported (the zip CRCs are checked even when torch reads)."""
        import contextlib
        modes = [["--no-torch"]] + ([["--torch"]] if torch is not None else [])
        tried = refused = 0
        for src in ("stat.pt", "per_pass_rank0.pt"):
            with open(os.path.join(DATA, src), "rb") as f:
                orig = f.read()
            ref = os.path.join(self.tmp.name, "ref.jsonl")
            self.assertEqual(sglang_dump.main([os.path.join(DATA, src), "--jsonl", ref,
                                               "--no-torch"]), 0)
            with open(ref) as f:
                want_text = f.read()
            p = os.path.join(self.tmp.name, "flip.pt")
            out = os.path.join(self.tmp.name, "flip.jsonl")
            for pos in range(0, len(orig), 7):
                b = bytearray(orig)
                b[pos] ^= 1 << (pos % 8)
                with open(p, "wb") as f:
                    f.write(b)
                for mode in modes:
                    if os.path.exists(out):
                        os.remove(out)
                    err, sink = io.StringIO(), io.StringIO()
                    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(sink):
                        rc = sglang_dump.main([p, "--jsonl", out] + mode)
                    tried += 1
                    where = "%s byte %d %s" % (src, pos, mode)
                    if rc == 0:
                        with open(out) as f:
                            self.assertEqual(f.read(), want_text, where)
                        continue
                    refused += 1
                    lines = err.getvalue().splitlines()
                    self.assertEqual(rc, 2, where)
                    self.assertEqual(len(lines), 1, where + ": " + err.getvalue())
                    self.assertIn(p, lines[0], where)
        self.assertGreater(refused, tried // 2)

    def test_bad_dump_into_db_names_the_dump(self):
        with open(os.path.join(DATA, "stat.pt"), "rb") as f:
            b = bytearray(f.read())
        b[len(b) // 2] ^= 0x10
        p = os.path.join(self.tmp.name, "flipped.pt")
        with open(p, "wb") as f:
            f.write(b)
        for mode in [["--no-torch"]] + ([["--torch"]] if torch is not None else []):
            rc, out, err = run(p, "--into", self.db, *mode)
            self.assertEqual(rc, 2, err)
            self.assertEqual(len(err.splitlines()), 1, err)
            self.assertIn("flipped.pt", err)
            self.assertNotIn("Traceback", err)
            self.assertFalse(os.path.exists(self.db))

    def test_source_names_the_dumps(self):
        dumps = [os.path.join(DATA, "per_pass_rank%d.pt" % r) for r in (0, 1)]
        rc, out, err = run(*dumps, "--into", self.db, "--run", "pp", "--no-torch")
        self.assertEqual(rc, 0, err)
        self.assertNotIn("moetrace-sglang.", out + err)
        c = sqlite3.connect(self.db)
        self.assertEqual(c.execute("SELECT source FROM runs WHERE name = 'pp'").fetchone()[0],
                         "import sglang " + " ".join(dumps))

    def test_replicated_ranks_counted_once(self):
        """Without DP attention every TP rank counts the same tokens:
        --replicated N keeps one rank's records and checks the others are
        equal; ranks that counted different tokens are refused."""
        r0 = os.path.join(DATA, "per_pass_rank0.pt")
        copy = os.path.join(self.tmp.name, "per_pass_rank0_copy.pt")
        with open(r0, "rb") as f, open(copy, "wb") as g:
            g.write(f.read())
        rc, out, err = run(r0, copy, "--into", self.db, "--run", "rep", "--replicated", "2",
                           "--no-torch")
        self.assertEqual(rc, 0, err)
        got = cells(self.db, "rep")
        self.assertEqual(got[(10, 0)], [c // 2 for c in HEAT[0][0]])
        rc, out, err = run(r0, copy, "--into", self.db, "--run", "twice", "--no-torch")
        self.assertEqual(rc, 0, err)
        self.assertEqual(cells(self.db, "twice")[(10, 0)], [c // 2 * 2 for c in HEAT[0][0]])
        rc, out, err = run(r0, os.path.join(DATA, "per_pass_rank1.pt"), "--into", self.db,
                           "--run", "bad", "--replicated", "2", "--no-torch")
        self.assertEqual(rc, 2, err)
        self.assertIn("differs", err)
        rc, out, err = run(r0, "--into", self.db, "--run", "bad", "--replicated", "2",
                           "--no-torch")
        self.assertEqual(rc, 2, err)
        self.assertIn("is in 1 of the --replicated 2", err)
        # a stat dump: every count must be a multiple of N (stat.pt's are not all even)
        rc, out, err = run(os.path.join(DATA, "stat.pt"), "--into", self.db, "--run", "bad",
                           "--replicated", "2", "--no-torch")
        self.assertEqual(rc, 2, err)
        self.assertIn("not a multiple of --replicated 2", err)

    @unittest.skipUnless(torch is not None, "torch is not installed")
    def test_torch_saved(self):
        p = os.path.join(self.tmp.name, "stat_torch.pt")
        lc = torch.zeros((2, 3, 4), dtype=torch.int32)
        lc[:, 1:, :] = torch.tensor(HEAT, dtype=torch.int32)
        torch.save({"rank": 0, "logical_count": lc}, p)
        rc, out, err = run(p, "--into", self.db, "--run", "t")
        self.assertEqual(rc, 0, err)
        self.assertEqual(cells(self.db, "t"), want([0, 1]))
        # the standard-library reader reads what torch wrote, and torch.load too
        rc, out, err = run(p, "--into", self.db, "--run", "t2", "--no-torch")
        self.assertEqual(rc, 0, err)
        self.assertEqual(cells(self.db, "t2"), want([0, 1]))
        rc, out, err = run_torch(p, "--into", self.db, "--run", "t3", "--torch")
        self.assertEqual(rc, 0, err)
        self.assertEqual(cells(self.db, "t3"), want([0, 1]))
        # a stat dump of 4 ranks that each counted every token
        torch.save({"rank": 0, "logical_count": lc * 4}, p)
        rc, out, err = run(p, "--into", self.db, "--run", "t4", "--replicated", "4")
        self.assertEqual(rc, 0, err)
        self.assertEqual(cells(self.db, "t4"), want([0, 1]))


if __name__ == "__main__":
    unittest.main()
