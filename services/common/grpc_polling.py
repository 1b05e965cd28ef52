"""How gRPC core waits for socket I/O in a service process; chosen before ``grpc`` is imported.

By default gRPC core (1.6x and later) hands socket I/O to its EventEngine: an EventEngine
thread wakes on each socket event and passes it to the completion queue, where grpc.aio's
polling thread wakes and passes it to the event loop. That is three thread wake-ups per event
and, for one unary call, about 13 voluntary context switches in a process that is both client and
server (6 with the engine off). A wake-up costs tens of microseconds of CPU on a VM, more
than the work it hands over. With EventEngine off for clients and listeners
(``GRPC_EXPERIMENTS=-event_engine_client,-event_engine_listener``) the thread waiting on the
completion queue polls the sockets itself (gRPC's epoll poller), one hop fewer per event.

The choice must be in the environment when gRPC core starts, which is when ``grpc`` is first
imported; every service's ``__main__`` calls :func:`choose` before importing anything else.
It is the service setting ``FLEET_GRPC_EVENT_ENGINE`` (default true: gRPC's own default; false
turns EventEngine off; declared with the other settings in ``services.common.settings`` for
``--help``); an explicit ``GRPC_EXPERIMENTS`` in the environment is left as it is. Opt-in while
its effect on the whole fleet is within this VM's noise (docs/performance.md).
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

from pydantic import TypeAdapter, ValidationError

ENV = "FLEET_GRPC_EVENT_ENGINE"
EXPERIMENTS = "-event_engine_client,-event_engine_listener"
_BOOL = TypeAdapter(bool)  # the settings' own parsing of booleans, so both read the value alike

chosen = "not chosen"  # what choose() did in this process, for the start-up log


def choose(environ: MutableMapping[str, str] | None = None) -> str:
    """Set ``GRPC_EXPERIMENTS`` from ``FLEET_GRPC_EVENT_ENGINE`` unless gRPC is already imported
    or the variable is set; returns (and remembers in ``chosen``) what happened."""
    global chosen
    environ = os.environ if environ is None else environ
    value = environ.get(ENV, "true")
    try:
        event_engine = _BOOL.validate_python(value)
    except ValidationError:  # the settings refuse it at start-up, naming the variable
        event_engine = None
    if event_engine is None:
        chosen = f"invalid {ENV}={value!r} (true or false); gRPC's default"
    elif "grpc" in sys.modules:
        chosen = "gRPC's default (grpc was imported before the choice)"
    elif environ.get("GRPC_EXPERIMENTS"):
        chosen = f"GRPC_EXPERIMENTS={environ['GRPC_EXPERIMENTS']} (set in the environment)"
    elif event_engine:
        chosen = "EventEngine (gRPC's default)"
    else:
        environ["GRPC_EXPERIMENTS"] = EXPERIMENTS
        chosen = f"epoll poller on the completion queue's thread (GRPC_EXPERIMENTS={EXPERIMENTS})"
    return chosen
