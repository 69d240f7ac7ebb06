"""Python's cyclic garbage collector paused while a job is planned and compiled.

Tracing a job (its discovery, the optimizer's state, the step inside ``jax.jit``) and
lowering it allocate hundreds of thousands of Python objects that stay alive until the
program is compiled. The collector, triggered by allocation counts, scans them again and
again meanwhile without freeing anything: 0.3-0.4 s of CPU time (about 8%) of a 128-layer
MLP's first call on 2 cores, two full collections among them. :func:`paused` disables
it for the duration (collections resume afterwards; the peak memory of that first call
was the same within 2%).

Nested and concurrent uses (several threads compiling jobs) share one pause: the
collector is enabled again when the last of them ends, and only if it was enabled when
the first began.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

__all__ = ["paused"]

_lock = threading.Lock()
_state = {"depth": 0, "was_enabled": False}


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Runs the ``with`` block with the cyclic garbage collector disabled (see above)."""
    with _lock:
        if _state["depth"] == 0:
            _state["was_enabled"] = gc.isenabled()
            gc.disable()
        _state["depth"] += 1
    try:
        yield
    finally:
        with _lock:
            _state["depth"] -= 1
            if _state["depth"] == 0 and _state["was_enabled"]:
                gc.enable()
