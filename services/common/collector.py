"""Python's cyclic garbage collector for a long-running service: its start-up heap frozen, its young threshold.

A collection walks every object of the generations it collects, and a full one walks the whole heap: a
gateway's start-up heap (gRPC, protobuf descriptors, pydantic, the HTTP app: ~97,000 objects, ~50 ms a full
collection) is walked again by every full collection though none of it is ever garbage. ``tune`` runs once,
when start-up has finished (the service's main, never at import): it collects what start-up left, moves the
rest to the permanent generation (``gc.freeze``), and sets the young generation's threshold.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("fleet.collector")


def tune(young_threshold: int, freeze: bool) -> None:
    """``young_threshold``: net allocations of tracked objects between young collections (0: leave Python's);
    ``freeze``: the objects alive now are never walked again (they stay alive; see ``gc.freeze``)."""
    if young_threshold > 0:
        _, middle, old = gc.get_threshold()
        gc.set_threshold(young_threshold, middle, old)
    if freeze:
        gc.collect()
        gc.freeze()
    log.info("garbage collector: thresholds %s, %d objects frozen", gc.get_threshold(), gc.get_freeze_count())
