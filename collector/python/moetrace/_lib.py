"""Loads libmoetrace with ctypes and declares the functions of moetrace.h.

Search order: $MOETRACE_LIB (a path to the shared library), then
libmoetrace.so next to this package, then at the root of a moetrace source
tree holding this package (collector/python/moetrace -> ../../..), then the
system's library path (libmoetrace.so.0 / libmoetrace.so).
"""
import ctypes
import ctypes.util
import os

_lib = None


class MoetraceError(Exception):
    """A libmoetrace call failed: .code is the negative MOETRACE_E* code."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


# enum moetrace_code
OK, EIO, EDB, EUSAGE, ENOMEM, ERANGE, ESTATE, EFULL = 0, -1, -3, -4, -6, -7, -8, -9
PHASES = {"unknown": 0, "prefill": 1, "decode": 2}


class RunDesc(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("model", ctypes.c_char_p),
        ("layers", ctypes.c_int),
        ("experts", ctypes.c_int),
        ("topk", ctypes.c_int),
        ("ranks", ctypes.c_int),
        ("slots", ctypes.c_int),
        ("ranks_per_node", ctypes.c_int),
        ("first_layer", ctypes.c_int),
        ("source", ctypes.c_char_p),
    ]


class RecorderOpts(ctypes.Structure):
    _fields_ = [
        ("ring_steps", ctypes.c_int),
        ("batch_steps", ctypes.c_int),
        ("policy", ctypes.c_int),
        ("flush_ms", ctypes.c_int),
        ("cache_kib", ctypes.c_int),
        ("append", ctypes.c_int),
        ("shard", ctypes.c_int),
        ("shard_rank", ctypes.c_int),
    ]


class RecorderStats(ctypes.Structure):
    _fields_ = [
        ("recorded", ctypes.c_int64),
        ("dropped", ctypes.c_int64),
        ("failed", ctypes.c_int64),
        ("queued", ctypes.c_int64),
        ("high_water", ctypes.c_int64),
        ("batches", ctypes.c_int64),
        ("bytes", ctypes.c_int64),
        ("placements", ctypes.c_int64),
        ("mem_bound", ctypes.c_int64),
        ("ring_steps", ctypes.c_int64),
        ("last_step", ctypes.c_int64),
        ("last_error", ctypes.c_int),
    ]


class MetricsOpts(ctypes.Structure):
    _fields_ = [
        ("algo", ctypes.c_char_p),
        ("window", ctypes.c_int),
        ("per_expert", ctypes.c_int),
        ("rebalance_every", ctypes.c_int64),
        ("ranks", ctypes.c_int),
        ("slots", ctypes.c_int),
    ]


class SinkOpts(ctypes.Structure):
    _fields_ = ([("deployment", ctypes.c_char_p), ("backlog", ctypes.c_int64)]
                + [(f, ctypes.c_int) for f in ("batch", "wait_ms", "retry_max_ms",
                                               "rollup_only")])


class SinkStats(ctypes.Structure):
    _fields_ = ([(f, ctypes.c_int64) for f in ("shipped", "skipped", "retries", "lag",
                                               "last_shipped")]
                + [(f, ctypes.c_int) for f in ("last_error", "gave_up")]
                + [("message", ctypes.c_char * 512)])


def _candidates():
    env = os.environ.get("MOETRACE_LIB")
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, "libmoetrace.so")
    yield os.path.join(here, "..", "..", "..", "libmoetrace.so")
    for name in ("libmoetrace.so.0", "libmoetrace.so"):
        yield name
    found = ctypes.util.find_library("moetrace")
    if found:
        yield found


_p, _i, _i64, _sz = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_size_t
_SIGNATURES = {
    "moetrace_recorder_open": (_i, [ctypes.c_char_p, ctypes.POINTER(RunDesc),
                                   ctypes.POINTER(RecorderOpts), ctypes.POINTER(_p)]),
    "moetrace_recorder_step": (_i, [_p, _i64, _p, _i, _i64]),
    "moetrace_recorder_step_n": (_i, [_p, _i64, _p, _sz, _i, _i64]),
    "moetrace_recorder_step_topk": (_i, [_p, _i64, _i, _p, _i64, _i]),
    "moetrace_recorder_step_slots": (_i, [_p, _i64, _p, _sz, _i, _i64]),
    "moetrace_recorder_step_end": (_i, [_p, _i64, _i, _i64]),
    "moetrace_recorder_placement": (_i, [_p, _i64, _p]),
    "moetrace_recorder_flush": (_i, [_p]),
    "moetrace_recorder_stats": (_i, [_p, ctypes.POINTER(RecorderStats)]),
    "moetrace_recorder_close": (_i, [_p]),
    "moetrace_recorder_free": (None, [_p]),
    "moetrace_errmsg": (ctypes.c_char_p, [_p]),
    "moetrace_recorder_serve_metrics": (_i, [_p, ctypes.c_char_p, ctypes.POINTER(MetricsOpts),
                                            ctypes.POINTER(_i)]),
    "moetrace_recorder_ship": (_i, [_p, ctypes.c_char_p, ctypes.POINTER(SinkOpts)]),
    "moetrace_recorder_sink_stats": (_i, [_p, ctypes.POINTER(SinkStats)]),
    "moetrace_recorder_mem_bound": (_i64, [ctypes.POINTER(RunDesc),
                                          ctypes.POINTER(RecorderOpts)]),
}


def _declare(lib):
    for name, (res, args) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args


def load():
    """Returns the loaded library (once per process); raises OSError with
    the places tried if none has the recorder API."""
    global _lib
    if _lib is not None:
        return _lib
    tried = []
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
            continue
        missing = [n for n in _SIGNATURES if not hasattr(lib, n)]
        if missing:
            tried.append("%s (lacks %s: rebuild with make)" % (path, ", ".join(missing)))
            continue
        _declare(lib)
        _lib = lib
        return lib
    raise OSError("cannot load libmoetrace; set MOETRACE_LIB to the library's path. Tried: "
                  + "; ".join(tried))
