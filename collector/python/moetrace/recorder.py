"""Recorder: the Python face of moetrace_recorder_* (collector/moetrace.h).

Arrays may be numpy arrays, torch tensors (CPU or CUDA), anything with the
buffer protocol, or nested lists.  Neither numpy nor torch is imported
here: an object is treated as one only if it is one.
"""
import ctypes
import operator
import sys

from . import _lib
from ._lib import MoetraceError

_u32 = ctypes.c_uint32
_i32 = ctypes.c_int32
# what each C parameter holds: ctypes itself truncates silently
_LIMITS = {"u32": (0, 2**32 - 1), "i32": (-2**31, 2**31 - 1), "i64": (-2**63, 2**63 - 1),
           "int": (-2**31, 2**31 - 1)}


def _is_torch(x):
    return type(x).__module__.startswith("torch") and hasattr(x, "is_cuda")


def _is_numpy(x):
    # looked up on the type: the instance attribute builds a dict per call
    t = type(x)
    return t.__module__ == "numpy" and hasattr(t, "__array_interface__")


def _check_shape(counts, layers, experts, what):
    """An array with a shape must be flat or end in (layers, experts), any
    leading axes of length 1: a transposed (experts, layers) array holds
    as many values and would record other counts."""
    shape = getattr(counts, "shape", None)
    if shape is None or len(shape) <= 1:
        return
    shape = tuple(int(d) for d in shape)
    if shape[-2:] != (layers, experts) or any(d != 1 for d in shape[:-2]):
        raise MoetraceError(_lib.EUSAGE, "%s: shape %s, the run is %d layers x %d experts "
                            "(give an array of that shape, or a flat one)"
                            % (what, "x".join(str(d) for d in shape), layers, experts))


def _int(v, what, kind="i64"):
    """v as a Python int if it is an integer (int, numpy or torch integer
    scalar; not a float, bool or string) that fits the C type `kind`."""
    if isinstance(v, (bool, str, bytes)) or v is None:
        raise ValueError("%s: %r is not an integer" % (what, v))
    try:
        i = operator.index(v)
    except TypeError:
        raise ValueError("%s: %r is not an integer" % (what, v)) from None
    lo, hi = _LIMITS[kind]
    if i < lo or i > hi:
        raise ValueError("%s: %d is out of range (%d..%d)" % (what, i, lo, hi))
    return i


def _flatten(x, out, what, kind):
    if isinstance(x, (list, tuple)):
        for v in x:
            _flatten(v, out, what, kind)
    else:
        out.append(_int(x, "%s: value %d" % (what, len(out)), kind))


def _phase(phase):
    if phase is None:
        return 0
    if isinstance(phase, str):
        try:
            return _lib.PHASES[phase]
        except KeyError:
            raise ValueError("phase must be one of %s, not %r" % (sorted(_lib.PHASES), phase))
    return _int(phase, "phase", "int")


class _Array:
    """A C view of an array argument: .ptr (address), .n (values), and a
    reference that keeps the memory alive during the call.  kind is "u32"
    (counts) or "i32" (ids); every value must fit it: a conversion never
    wraps or truncates."""

    __slots__ = ("ptr", "n", "keep")

    def __init__(self, x, kind, what):
        lo, hi = _LIMITS[kind]
        if isinstance(x, (str, bytes, bytearray)):
            raise ValueError("%s: a %s is not an array of integers" % (what, type(x).__name__))
        if _is_torch(x):
            import torch
            if x.is_cuda:
                raise ValueError("%s: CUDA tensors go through Recorder.step() only" % what)
            if x.dtype.is_floating_point or x.dtype.is_complex:
                raise ValueError("%s: integer tensor expected, not %s" % (what, x.dtype))
            if x.dtype != torch.int32 or not x.is_contiguous():
                if x.numel() and x.dtype != torch.bool:
                    mn, mx = int(x.min()), int(x.max())
                    if mn < lo or mx > hi:
                        raise ValueError("%s: %d does not fit in %s" %
                                         (what, mn if mn < lo else mx, kind))
                x = x.to(torch.int32).contiguous()
            elif kind == "u32" and x.numel() and int(x.min()) < 0:
                raise ValueError("%s: %d does not fit in u32 (negative counts)" %
                                 (what, int(x.min())))
            self.ptr, self.n, self.keep = x.data_ptr(), x.numel(), x
        elif _is_numpy(x):
            import numpy as np
            dt = np.uint32 if kind == "u32" else np.int32
            if x.dtype.kind not in "iub":
                raise ValueError("%s: integer array expected, not %s" % (what, x.dtype))
            if x.dtype != dt or not x.flags.c_contiguous:
                if x.size and x.dtype.kind != "b":
                    mn, mx = int(x.min()), int(x.max())
                    if mn < lo or mx > hi:
                        raise ValueError("%s: %d does not fit in %s%s" %
                                         (what, mn if mn < lo else mx, kind,
                                          " (negative counts)" if mn < 0 <= lo else ""))
                x = np.ascontiguousarray(x, dtype=dt)
            self.ptr, self.n, self.keep = x.ctypes.data, x.size, x
        else:
            flat = []
            try:
                seq = x if isinstance(x, (list, tuple)) else list(x)
            except TypeError:
                raise ValueError("%s: %r is not an array of integers" % (what, x)) from None
            _flatten(seq, flat, what, kind)
            buf = ((_u32 if kind == "u32" else _i32) * len(flat))(*flat)
            self.ptr, self.n, self.keep = ctypes.addressof(buf), len(flat), buf


class _CudaStaging:
    """Moves L x E counts from the GPU without stalling the stream: a
    non-blocking copy into pinned host memory, recorded once its CUDA event
    has completed (polled at the next calls, waited for at flush/close)."""

    def __init__(self, shape, depth=4):
        self.shape, self.depth = shape, depth
        self.free, self.busy = [], []  # busy: (event, buf, step, phase, tokens)

    def submit(self, t, step, phase, tokens):
        import torch
        if not self.free and len(self.busy) < self.depth:
            # int64: the values are checked on the host once copied, never wrapped
            self.free.append(torch.empty(self.shape, dtype=torch.int64, pin_memory=True))
        if not self.free:  # every buffer in flight: wait for the oldest
            return False
        buf = self.free.pop()
        buf.copy_(t.reshape(self.shape), non_blocking=True)
        ev = torch.cuda.Event()
        ev.record()
        self.busy.append((ev, buf, step, phase, tokens))
        return True

    def ready(self, wait=False):
        """Yields (buf, step, phase, tokens) of finished copies in order."""
        while self.busy and (wait or self.busy[0][0].query()):
            ev, buf, step, phase, tokens = self.busy.pop(0)
            ev.synchronize()
            yield buf, step, phase, tokens
            self.free.append(buf)


class Recorder:
    """Records MoE expert heat into a moetrace trace database.

    Recorder(path, name, layers, experts, topk=0, ranks=0, slots=0, ...)
    opens (or creates) the database and adds the run.  Call step() once per
    engine step with the layers x experts token counts, or step_topk() per
    layer with the router's top-k ids; placement() when the deployed
    placement changes; close() at the end (or use `with`).

    step() returns True if the step entered the ring, False if it was
    dropped because the ring was full (drop policy; block=True waits
    instead).  Errors raise MoetraceError.
    """

    def __init__(self, path, name, layers, experts, topk=0, ranks=0, slots=0,
                 ranks_per_node=0, model=None, first_layer=0, source=None,
                 ring_steps=0, batch_steps=0, block=False, flush_ms=0, append=False,
                 shard_rank=None):
        self._lib = _lib.load()
        ci = lambda v, what: _int(v, what, "int")  # noqa: E731  (C int fields)
        self.layers, self.experts = ci(layers, "layers"), ci(experts, "experts")
        self.ranks, self.slots = ci(ranks, "ranks"), ci(slots, "slots")
        self.topk = ci(topk, "topk")
        self._cells = self.layers * self.experts
        self._h = None
        self._staging = None
        self._final_sink = None
        enc = lambda s: s.encode() if isinstance(s, str) else s  # noqa: E731
        desc = _lib.RunDesc(enc(name), enc(model), self.layers, self.experts, self.topk,
                            self.ranks, self.slots, ci(ranks_per_node, "ranks_per_node"),
                            ci(first_layer, "first_layer"),
                            enc(source or "python %d.%d" % sys.version_info[:2]))
        self.shard_rank = shard_rank
        opts = _lib.RecorderOpts(ci(ring_steps, "ring_steps"), ci(batch_steps, "batch_steps"),
                                 1 if block else 0, ci(flush_ms, "flush_ms"), 0,
                                 1 if append else 0, 0 if shard_rank is None else 1,
                                 0 if shard_rank is None else ci(shard_rank, "shard_rank"))
        h = ctypes.c_void_p()
        rc = self._lib.moetrace_recorder_open(str(path).encode(), ctypes.byref(desc),
                                              ctypes.byref(opts), ctypes.byref(h))
        if rc:
            msg = self._lib.moetrace_errmsg(h).decode(errors="replace") if h else "out of memory"
            self._lib.moetrace_recorder_free(h)
            raise MoetraceError(rc, msg)
        self._h = h
        self._step_fn = self._lib.moetrace_recorder_step_n

    def _fail(self, rc):
        raise MoetraceError(rc, self._lib.moetrace_errmsg(self._h).decode(errors="replace"))

    def _check(self):
        if self._h is None:
            raise MoetraceError(_lib.ESTATE, "recorder is closed")

    def _settle(self):
        """Records the CUDA steps still in flight, so that what comes next
        follows them in step order."""
        if self._staging is not None and self._staging.busy:
            self._drain(wait=True)

    def _drain(self, wait=False):
        import torch
        for buf, step, phase, tokens in self._staging.ready(wait):
            mn, mx = int(buf.min()), int(buf.max())
            if mn < 0 or mx > 2**32 - 1:
                raise ValueError("step %d: counts: %d does not fit in u32"
                                 % (step, mn if mn < 0 else mx))
            c = buf.to(torch.int32)
            rc = self._step_fn(self._h, step, c.data_ptr(), self._cells, phase, tokens)
            if rc and rc != _lib.EFULL:
                self._fail(rc)

    def step(self, step, counts, phase=None, tokens=0):
        """Records one step: counts is layers x experts (that shape, any
        leading axes of length 1, or flat: layers * experts values,
        row-major by layer).  phase: None,
        "prefill", "decode" or 1/2.  CUDA tensors are copied without a
        stream sync and recorded when the copy completes."""
        self._check()
        step, tokens = _int(step, "step"), _int(tokens, "tokens")
        ph = _phase(phase)
        _check_shape(counts, self.layers, self.experts, "step %d: counts" % step)
        if _is_torch(counts) and counts.is_cuda:
            # as on the CPU path: the copy into the int64 staging buffer
            # would truncate 1.5 to 1 and store a count never given
            if counts.dtype.is_floating_point or counts.dtype.is_complex:
                raise ValueError("step %d: counts: integer tensor expected, not %s"
                                 % (step, counts.dtype))
            if counts.numel() != self._cells:
                raise MoetraceError(_lib.EUSAGE, "step %d: %d counts given, run has %d x %d"
                                    % (step, counts.numel(), self.layers, self.experts))
            if self._staging is None:
                self._staging = _CudaStaging((self.layers, self.experts))
            self._drain()
            if not self._staging.submit(counts, step, ph, tokens):
                self._drain(wait=True)
                self._staging.submit(counts, step, ph, tokens)
            return True
        self._settle()
        a = _Array(counts, "u32", "step %d: counts" % step)
        rc = self._step_fn(self._h, step, a.ptr, a.n, ph, tokens)
        if rc == 0:
            return True
        if rc == _lib.EFULL:
            return False
        self._fail(rc)

    def step_slots(self, step, slot_counts, phase=None, tokens=0):
        """Records one step from per-slot token counts (layers x slots of
        this rank for a shard recorder, else layers x ranks*slots), each
        slot credited to the expert the last placement() puts there."""
        self._check()
        step, tokens = _int(step, "step"), _int(tokens, "tokens")
        ph = _phase(phase)
        self._settle()
        if _is_torch(slot_counts) and slot_counts.is_cuda:
            slot_counts = slot_counts.to("cpu")
        a = _Array(slot_counts, "u32", "step %d: slot_counts" % step)
        per = self.slots if self.shard_rank is not None else self.ranks * self.slots
        if a.n != self.layers * per:
            raise MoetraceError(_lib.EUSAGE, "step %d: %d slot counts given, expected %d "
                                "layers x %d slots" % (step, a.n, self.layers, per))
        rc = self._lib.moetrace_recorder_step_slots(self._h, step, a.ptr, per, ph, tokens)
        if rc == 0:
            return True
        if rc == _lib.EFULL:
            return False
        self._fail(rc)

    def step_topk(self, step, layer, topk_ids):
        """Adds one layer's routing (ntokens x k expert ids; negative ids
        are padding) to step `step`; histogrammed in C."""
        self._check()
        step, layer = _int(step, "step"), _int(layer, "layer", "int")
        self._settle()
        k = 1
        shape = getattr(topk_ids, "shape", None)
        if shape is not None and len(shape) >= 2:
            k = int(shape[-1])
        elif shape is None and isinstance(topk_ids, (list, tuple)) and topk_ids and \
                isinstance(topk_ids[0], (list, tuple)):
            k = len(topk_ids[0])
        a = _Array(topk_ids, "i32", "step %d layer %d: topk_ids" % (step, layer))
        if k == 0 or a.n % k:
            raise MoetraceError(_lib.EUSAGE, "step %d layer %d: ragged top-k ids" % (step, layer))
        rc = self._lib.moetrace_recorder_step_topk(self._h, step, layer, a.ptr,
                                                   a.n // k, k)
        if rc:
            self._fail(rc)

    def step_end(self, step, phase=None, tokens=0):
        """Ends the top-k step `step` with its phase and batch tokens."""
        self._check()
        step, tokens = _int(step, "step"), _int(tokens, "tokens")
        ph = _phase(phase)
        self._settle()
        rc = self._lib.moetrace_recorder_step_end(self._h, step, ph, tokens)
        if rc == _lib.EFULL:
            return False
        if rc:
            self._fail(rc)
        return True

    def placement(self, from_step, phy2log):
        """Records the placement deployed from from_step on: layers x
        (ranks * slots) logical expert ids (or layers x ranks x slots)."""
        self._check()
        from_step = _int(from_step, "from_step")
        a = _Array(phy2log, "i32", "placement: phy2log")
        want = self.layers * self.ranks * self.slots
        if a.n != want:
            raise MoetraceError(_lib.EUSAGE, "placement: %d ids given, run has %d layers x "
                                "%d ranks x %d slots" % (a.n, self.layers, self.ranks,
                                                         self.slots))
        rc = self._lib.moetrace_recorder_placement(self._h, from_step, a.ptr)
        if rc:
            self._fail(rc)

    def flush(self):
        """Waits until every step given so far is in the database."""
        self._check()
        if self._staging is not None:
            self._drain(wait=True)
        rc = self._lib.moetrace_recorder_flush(self._h)
        if rc:
            self._fail(rc)

    def stats(self):
        """Counters as a dict: recorded, dropped, failed, queued,
        high_water, batches, bytes, placements, mem_bound, ring_steps,
        last_step, last_error."""
        if self._h is None:
            return dict(self._final)
        st = _lib.RecorderStats()
        self._lib.moetrace_recorder_stats(self._h, ctypes.byref(st))
        return {f: getattr(st, f) for f, _ in _lib.RecorderStats._fields_}

    def serve_metrics(self, listen="127.0.0.1:0", algo=None, window=0, per_expert=False,
                      rebalance_every=0, ranks=0, slots=0):
        """Serves GET /metrics (Prometheus text format: the metrics of
        `moetrace serve` and this recorder's counters) on listen,
        "HOST:PORT", from threads of the library, until close().  Port 0
        picks a free port; returns the port.  ranks and slots give the EP
        layout when the run records none.  docs/metrics.md lists the
        metrics."""
        self._check()
        opts = _lib.MetricsOpts(algo.encode() if algo else None, _int(window, "window", "int"),
                                1 if per_expert else 0, _int(rebalance_every, "rebalance_every"),
                                _int(ranks, "ranks", "int"), _int(slots, "slots", "int"))
        port = ctypes.c_int(0)
        rc = self._lib.moetrace_recorder_serve_metrics(self._h, str(listen).encode(),
                                                       ctypes.byref(opts), ctypes.byref(port))
        if rc:
            self._fail(rc)
        return port.value

    def ship(self, url, deployment=None, backlog=0, wait_ms=0, retry_max_ms=0, batch=0,
             rollup_only=False):
        """Ships the run live to ClickHouse, url being
        clickhouse://[USER[:PASSWORD]@]HOST:PORT/DATABASE[?deployment=NAME]:
        a thread of the library reads each committed batch back from the
        file and sends it, so step() costs what it did.  Call it before the
        first step.  While the server is away it retries; at most backlog
        steps (default 100000) wait, older ones are skipped and counted
        (`moetrace push` ships them later).  close() waits wait_ms
        (default 5000, -1: not at all) for what is left.  rollup_only=True
        ships only the sums of each complete window of steps per layer
        (the file keeps every step).  docs/fleet.md."""
        self._check()
        opts = _lib.SinkOpts(deployment.encode() if deployment else None,
                             _int(backlog, "backlog"), _int(batch, "batch", "int"),
                             _int(wait_ms, "wait_ms", "int"),
                             _int(retry_max_ms, "retry_max_ms", "int"),
                             1 if rollup_only else 0)
        rc = self._lib.moetrace_recorder_ship(self._h, str(url).encode(), ctypes.byref(opts))
        if rc:
            self._fail(rc)

    def sink_stats(self):
        """The sink's counters as a dict (shipped, skipped, retries, lag,
        last_shipped, last_error, gave_up, message), or None without a
        sink.  After close(), shipped + skipped is every step recorded."""
        if self._h is None:
            return dict(self._final_sink) if self._final_sink else None
        st = _lib.SinkStats()
        if self._lib.moetrace_recorder_sink_stats(self._h, ctypes.byref(st)):
            return None
        d = {f: getattr(st, f) for f, _ in _lib.SinkStats._fields_}
        d["message"] = st.message.decode(errors="replace")
        return d

    def close(self):
        """Flushes and closes (and stops serving metrics); a second close
        is a no-op."""
        if self._h is None:
            return
        try:
            if self._staging is not None:
                self._drain(wait=True)
        finally:
            rc = self._lib.moetrace_recorder_close(self._h)
            msg = self._lib.moetrace_errmsg(self._h).decode(errors="replace")
            self._final = self.stats()
            self._final_sink = self.sink_stats()
            self._lib.moetrace_recorder_free(self._h)
            self._h = None
        if rc:
            raise MoetraceError(rc, msg)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        h = getattr(self, "_h", None)
        if h is not None:
            try:
                self._lib.moetrace_recorder_free(h)
            except Exception:
                pass
