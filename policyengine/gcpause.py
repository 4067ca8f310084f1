"""The cyclic garbage collector held off while a policy is parsed and compiled.

A load allocates hundreds of thousands of objects that all stay alive (tokens, AST
nodes, compiled routes): each automatic collection walks the young ones in vain, and
the full collections walk the whole growing heap, so with the collector on, loading
10,000 routes took about twice as long (bench/compile.py). Reference counting still
frees whatever is dropped; only cycles wait until the collector runs again, and the
server collects and freezes once after swapping in a new engine
(server/reload.py, keep_out_of_collections).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic collection inside the block; the collector is re-enabled after it,
    error or not, unless it was already off (nested pauses, or a caller who turned it
    off leaves it off)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
