"""The recorder library's /metrics endpoint (moetrace_recorder_serve_metrics
through the Python Recorder): what it serves equals what was recorded (steps,
tokens of every EP rank of every layer under the static layout), the
recorder's own counters, promtool accepts it, bad arguments fail with the
library's codes, and close() stops it."""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

TOP = os.environ.get("MOETRACE_TOP") or os.path.join(os.path.dirname(__file__), "..", "..")
sys.path.insert(0, os.path.join(TOP, "collector", "python"))
if not os.environ.get("MOETRACE_LIB") and os.path.exists(os.path.join(TOP, "libmoetrace.so")):
    os.environ["MOETRACE_LIB"] = os.path.join(TOP, "libmoetrace.so")
import moetrace  # noqa: E402

try:
    moetrace.load()
except OSError as e:
    print("libmoetrace.so with the recorder not found (run make, or set MOETRACE_LIB): %s" % e)
    sys.exit(77)

L, E, R, S = 4, 16, 4, 4


def counts_of(step):
    """A deterministic, uneven step: expert e of layer l gets a few tokens."""
    return [[(step * 7 + l * 3 + e * e) % 23 + (40 if e == (step + l) % E else 0)
             for e in range(E)] for l in range(L)]


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=30) as r:
        return r.read().decode()


def samples(text):
    """{'name{labels}': float} of an exposition."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, val = line.rpartition(" ")
            out[key] = float(val)
    return out


class MetricsEndpoint(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.path = os.path.join(self.dir, "t.db")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def test_serves_what_was_recorded(self):
        rec = moetrace.Recorder(self.path, "lib", layers=L, experts=E, topk=2, ranks=R,
                                slots=S, block=True)
        try:
            port = rec.serve_metrics("127.0.0.1:0", rebalance_every=10)
            self.assertGreater(port, 0)
            n = 60
            for t in range(n):
                rec.step(t, counts_of(t), phase="decode", tokens=64)
            rec.flush()
            text = scrape(port)
            m = samples(text)
            self.assertEqual(m["moetrace_steps_total"], n)
            self.assertEqual(m["moetrace_last_step"], n - 1)
            self.assertEqual(m["moetrace_recorder_steps_recorded_total"], n)
            self.assertEqual(m["moetrace_recorder_steps_dropped_total"], 0)
            self.assertEqual(m["moetrace_recorder_steps_failed_total"], 0)
            self.assertEqual(m["moetrace_recorder_last_step"], n - 1)
            self.assertEqual(m["moetrace_recorder_ring_steps"], rec.stats()["ring_steps"])
            # the static layout: rank r holds experts r*S .. r*S+S-1
            for l in range(L):
                for r in range(R):
                    want_tok = sum(counts_of(t)[l][e] for t in range(n)
                                   for e in range(r * S, (r + 1) * S))
                    got = m['moetrace_ep_rank_tokens_total{layer="%d",ep_rank="%d"}' % (l, r)]
                    self.assertEqual(got, want_tok, "layer %d rank %d" % (l, r))
            # the following replay catches up within seconds (at most ~60 s on a
            # loaded machine: tests run in parallel)
            for _ in range(600):
                m = samples(scrape(port))
                if m["moetrace_rebalance_replay_steps"] == n:
                    break
                time.sleep(0.1)
            self.assertEqual(m["moetrace_rebalance_replay_steps"], n)
            self.assertEqual(m["moetrace_rebalance_up"], 1)
            self.assertGreater(m['moetrace_rebalance_events_total{algo="keel"}'], 0)
            if shutil.which("promtool"):
                p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                self.assertEqual(p.returncode, 0, p.stdout.decode())
            with self.assertRaises(moetrace.MoetraceError) as cm:
                rec.serve_metrics("127.0.0.1:0")
            self.assertEqual(cm.exception.code, -8)  # MOETRACE_ESTATE: already serving
        finally:
            rec.close()
        # close() frees the recorder and stops its endpoint
        with self.assertRaises((urllib.error.URLError, ConnectionError)):
            scrape(port)

    def test_bad_arguments(self):
        with moetrace.Recorder(self.path, "bad", layers=L, experts=E, ranks=R,
                               slots=S) as rec:
            for listen, kw in (("nowhere", {}), ("127.0.0.1:0", {"algo": "nope"}),
                               ("127.0.0.1:0", {"window": 2})):
                with self.assertRaises(moetrace.MoetraceError) as cm:
                    rec.serve_metrics(listen, **kw)
                self.assertEqual(cm.exception.code, -4, listen)  # MOETRACE_EUSAGE
            # still usable: a good call after the bad ones serves
            port = rec.serve_metrics("127.0.0.1:0")
            self.assertIn("moetrace_recorder_steps_recorded_total 0", scrape(port))

    def test_run_without_layout(self):
        """A run that records no EP layout needs one given to serve metrics."""
        with moetrace.Recorder(self.path, "nolayout", layers=L, experts=E) as rec:
            with self.assertRaises(moetrace.MoetraceError) as cm:
                rec.serve_metrics("127.0.0.1:0")
            self.assertEqual(cm.exception.code, -4)
            self.assertIn("no EP layout", str(cm.exception))
            port = rec.serve_metrics("127.0.0.1:0", ranks=2, slots=8)
            for t in range(5):
                rec.step(t, counts_of(t))
            rec.flush()
            m = samples(scrape(port))
            self.assertEqual(m["moetrace_steps_total"], 5)
            for l in range(L):
                want_tok = sum(counts_of(t)[l][e] for t in range(5) for e in range(8))
                got = m['moetrace_ep_rank_tokens_total{layer="%d",ep_rank="0"}' % l]
                self.assertEqual(got, want_tok, "layer %d rank 0" % l)


if __name__ == "__main__":
    unittest.main()
