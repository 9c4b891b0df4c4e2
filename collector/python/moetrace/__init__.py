"""moetrace: record MoE expert heat from Python into a moetrace trace.

    import moetrace
    with moetrace.Recorder("trace.db", "run1", layers=58, experts=256, topk=8) as rec:
        for step in range(n):
            rec.step(step, counts)            # layers x experts: numpy, torch, lists
        # or: moetrace.attach(model, rec) to record a torch MoE model's routing

A thin ctypes layer over libmoetrace (collector/moetrace.h); the standard
library is all it needs.  numpy arrays and torch tensors are accepted when
given.  docs/collector.md is the guide.
"""
from ._lib import MoetraceError, load
from .recorder import Recorder

__all__ = ["Recorder", "MoetraceError", "attach", "find_routers", "load"]


def attach(model, recorder, pattern=None, topk=None, first_step=0):
    """See moetrace.torch_hook.attach (imported on first use: needs torch)."""
    from .torch_hook import attach as _attach
    return _attach(model, recorder, pattern=pattern, topk=topk, first_step=first_step)


def find_routers(model, pattern=None):
    """See moetrace.torch_hook.find_routers."""
    from .torch_hook import find_routers as _find
    return _find(model, pattern)
