#!/bin/sh
# Recorder: engine-thread cost of moetrace_recorder_step() for 58 x 256
# against a plain memcpy, sustained steps/s with the writer keeping up, and
# the Python Recorder.step overhead per call.
set -eu
. "$(dirname "$0")/lib.sh"
bin="$MOETRACE_BENCH_BIN/bench_recorder"
echo "## Recorder: the embedded collector"
echo
[ -x "$bin" ] || { echo "skipped: $bin not built (make bench-build)"; exit 0; }
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
kv() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }

# cost: 3 runs of 2000 steps paced at 500 Hz (the writer keeps up, so every
# timed call is an accepted step); report the run with the median p50
for i in 1 2 3; do "$bin" cost "$d" 2000 500 >"$d/cost$i"; done
best=$(for i in 1 2 3; do echo "$(kv "$d/cost$i" step_p50_us) $i"; done | sort -g | sed -n 2p | cut -d' ' -f2)
c="$d/cost$best"
for i in 1 2 3; do "$bin" sustained "$d" 6000 >"$d/sus$i"; done
best=$(for i in 1 2 3; do echo "$(kv "$d/sus$i" steps_per_s) $i"; done | sort -g | sed -n 2p | cut -d' ' -f2)
s="$d/sus$best"

echo "DeepSeek-V3 shape (58 layers x 256 experts, 59 KiB of counts per step), default options"
echo "(ring 256 steps, batch 64), counts from the synthetic generator. Medians of 3 runs."
echo
echo "| engine-thread cost per step | p50 | p99 |"
echo "|---|---|---|"
echo "| \`moetrace_recorder_step()\` | $(kv "$c" step_p50_us) us | $(kv "$c" step_p99_us) us |"
echo "| plain \`memcpy\` of the counts into a ring-sized buffer | $(kv "$c" memcpy_p50_us) us | $(kv "$c" memcpy_p99_us) us |"
echo "| ratio (budget <= 1.1x) | $(kv "$c" ratio_p50)x | $(kv "$c" ratio_p99)x |"
echo
echo "($(kv "$c" calls) calls at $(kv "$c" rate) Hz, $(kv "$c" dropped) dropped; each call and its memcpy"
echo "timed back to back with a monotonic clock.)"
echo
echo "| sustained recording (blocking policy) | value |"
echo "|---|---|"
echo "| steps/s committed, wall clock (budget >= 4,000) | $(kv "$s" steps_per_s) |"
echo "| steps per CPU-second of the process (engine thread + writer: one core's worth) | $(kv "$s" steps_per_cpu_s) |"
echo "| 1-minute load average during the run ($(nproc) cores) | $(kv "$s" load) |"
echo "| steps, seconds | $(kv "$s" steps), $(kv "$s" seconds) s |"
echo "| transactions | $(kv "$s" batches) |"
echo "| queue high-water / ring | $(kv "$s" high_water) / $(kv "$s" ring_steps) |"
echo "| database bytes per cell | $(kv "$s" bytes_per_cell) |"
echo "| memory bound (stated by the recorder) | $(awk -v b="$(kv "$s" mem_bound)" 'BEGIN{printf "%.1f MiB", b/1048576}') |"
echo

# Python: Recorder.step on a numpy uint32 array against numpy's own copy
py=python3
python3 -c 'import numpy' 2>/dev/null || { [ -x /usr/bin/python3 ] && py=/usr/bin/python3; }
lib="$MOETRACE_TOP/libmoetrace.so"
if ! $py -c 'import numpy' 2>/dev/null || [ ! -f "$lib" ]; then
	echo "Python: skipped (needs python3-numpy and $lib)"
	exit 0
fi
MOETRACE_LIB="$lib" PYTHONPATH="$MOETRACE_TOP/collector/python" $py - "$d" <<'PY'
import os, sys, time
import numpy as np
import moetrace
d = sys.argv[1]
L, E, n, rate = 58, 256, 2000, 500.0
rng = np.random.default_rng(1)
counts = [rng.integers(0, 300, size=(L, E)).astype(np.uint32) for _ in range(16)]
dst = np.empty((L, E), dtype=np.uint32)
ts, tc = [], []
with moetrace.Recorder(os.path.join(d, "py.db"), "py", layers=L, experts=E, topk=8) as rec:
    t0 = time.perf_counter()
    for i in range(n):
        while time.perf_counter() < t0 + i / rate:
            pass
        c = counts[i % 16]
        a = time.perf_counter(); np.copyto(dst, c)
        b = time.perf_counter(); ok = rec.step(i, c, "decode", 64)
        e = time.perf_counter()
        tc.append(b - a)
        if ok:
            ts.append(e - b)
    st = rec.stats()
ts.sort(); tc.sort()
p = lambda v, q: v[int(len(v) * q)] * 1e6
print("| Python per call (58 x 256 numpy uint32) | p50 | p99 |")
print("|---|---|---|")
print("| `Recorder.step()` | %.1f us | %.1f us |" % (p(ts, .5), p(ts, .99)))
print("| `numpy.copyto` of the same counts | %.1f us | %.1f us |" % (p(tc, .5), p(tc, .99)))
print("| overhead over the copy (ctypes call, checks) | %.1f us | |" % (p(ts, .5) - p(tc, .5)))
print()
print("(%d calls at %.0f Hz, %d dropped.)" % (n, rate, st["dropped"]))
PY
