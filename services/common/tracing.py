"""Distributed tracing with OpenTelemetry: off unless the standard ``OTEL_*`` environment asks for it.

Tracing turns on when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``, ``console``) or an
OTLP endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``);
``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` keep it off. Everything else is the
SDK's own reading of the standard variables: ``OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`` (``grpc``
or ``http/protobuf``, the default), headers, timeouts, ``OTEL_SERVICE_NAME`` /
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER[_ARG]``, ``OTEL_BSP_*``, ``OTEL_PROPAGATORS``
(W3C ``traceparent`` by default).

While off, nothing of OpenTelemetry is imported and callers pay one attribute check:
``if tracing.ACTIVE:`` guards every use on the request path, and ``span()`` returns a shared
no-op context manager.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

log = logging.getLogger("fleet.tracing")

ACTIVE = False  # set once by configure(); read on the request path
_tracer: Any = None
_provider: Any = None
_NOOP = contextlib.nullcontext()
_otel: Any = None  # the OpenTelemetry modules the request path uses, bound by configure()
_provider_installed: Any = None


def requested(env: Mapping[str, str]) -> list[str]:
    """The span exporters the environment asks for (empty: tracing stays off)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    if not names:
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        names = ["otlp"] if endpoint else []
    return [n for n in names if n != "none"]


def _exporter(name: str, env: Mapping[str, str]) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter  # noqa: PLC0415

        return ConsoleSpanExporter()
    if name != "otlp":
        raise ValueError(f"OTEL_TRACES_EXPORTER={name!r} is not supported; use otlp, console or none")
    protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf").strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter  # noqa: PLC0415
    elif protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415
    else:
        raise ValueError(f"OTLP protocol {protocol!r} is not supported; use grpc or http/protobuf")
    return OTLPSpanExporter()


def configure(service: str, env: Mapping[str, str] | None = None, exporter: Any = None) -> bool:
    """Start tracing for this process if ``env`` (default: the environment) asks for it, or with
    ``exporter`` (tests: an in-memory one, exported synchronously). Returns whether it is on."""
    global ACTIVE, _tracer, _provider, _otel, _provider_installed  # noqa: PLW0603 - process-wide, set once
    env = os.environ if env is None else env
    names = [] if exporter is not None else requested(env)
    if exporter is None and not names:
        return False
    try:
        from opentelemetry import context, propagate, trace  # noqa: PLC0415
        from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor  # noqa: PLC0415

        named = env.get("OTEL_SERVICE_NAME") or "service.name=" in env.get("OTEL_RESOURCE_ATTRIBUTES", "")
        provider = TracerProvider(resource=Resource.create({} if named else {"service.name": f"fleet-{service}"}))
        if exporter is not None:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        for name in names:
            provider.add_span_processor(BatchSpanProcessor(_exporter(name, env)))
    except ImportError as exc:
        log.warning("tracing requested but OpenTelemetry is not installed (pip install 'inference-fleet[server]'): "
                    "%s; tracing stays off", exc)
        return False
    except ValueError as exc:
        log.warning("tracing stays off: %s", exc)
        return False
    if _provider_installed is None:  # the global provider can be set once per process (libraries use it)
        trace.set_tracer_provider(provider)
        _provider_installed = provider
    _provider, _tracer = provider, provider.get_tracer("inference-fleet")
    _otel = _Otel(context, propagate, trace)
    ACTIVE = True
    log.info("tracing on", extra={"exporters": names or ["in-process"]})
    return True


def shutdown() -> None:
    """Export what is buffered and stop (at service shutdown)."""
    global ACTIVE, _tracer, _provider  # noqa: PLW0603
    if _provider is not None:
        _provider.shutdown()
    ACTIVE, _tracer, _provider = False, None, None  # _otel stays bound: a span ending late still works


class _Otel:
    def __init__(self, context: Any, propagate: Any, trace: Any) -> None:
        self.context, self.propagate, self.trace = context, propagate, trace
        self.server, self.client, self.internal = trace.SpanKind.SERVER, trace.SpanKind.CLIENT, trace.SpanKind.INTERNAL
        self.error = trace.StatusCode.ERROR


# ---- request path (call only when ACTIVE) ----------------------------------------------------------
def _carrier(metadata: object) -> dict[str, str]:
    return {k: v for k, v in metadata or () if k in ("traceparent", "tracestate", "baggage")}  # type: ignore[misc]


def start_server_span(name: str, metadata: object, attributes: dict[str, Any]) -> tuple[Any, object]:
    """A SERVER span continuing the caller's ``traceparent``, made current; returns (span, token)."""
    parent = _otel.propagate.extract(_carrier(metadata))
    span = _tracer.start_span(name, context=parent, kind=_otel.server, attributes=attributes)
    return span, _otel.context.attach(_otel.trace.set_span_in_context(span, parent))


def end_span(span: Any, token: object, code_name: str, error: str | None) -> None:
    """End a span made current by ``start_*_span`` with its gRPC status."""
    span.set_attribute("rpc.grpc.status_code", code_name)
    if error is not None:
        span.set_status(_otel.trace.Status(_otel.error, error))
    span.end()
    _otel.context.detach(token)


def start_client_span(name: str, attributes: dict[str, Any]) -> tuple[Any, object]:
    span = _tracer.start_span(name, kind=_otel.client, attributes=attributes)
    return span, _otel.context.attach(_otel.trace.set_span_in_context(span))


def headers() -> tuple[tuple[str, str], ...]:
    """``traceparent`` (and ``tracestate``) of the current span, for outgoing call metadata."""
    carrier: dict[str, str] = {}
    _otel.propagate.inject(carrier)
    return tuple(carrier.items())


@contextlib.contextmanager
def _span(name: str, attributes: dict[str, Any]) -> Iterator[Any]:
    with _tracer.start_as_current_span(name, kind=_otel.internal, attributes=attributes) as span:
        yield span


def span(name: str, **attributes: Any) -> contextlib.AbstractContextManager[Any]:
    """``with tracing.span("resolve", model_id=...) as s:`` a child span; a shared no-op while off."""
    return _span(name, attributes) if ACTIVE else _NOOP


def record_span(name: str, start_perf: float, end_perf: float, **attributes: Any) -> None:
    """A finished child span of the current one, from ``time.perf_counter()`` stamps taken earlier
    (stages timed in worker threads are recorded afterwards, on the event loop)."""
    if not ACTIVE:
        return
    offset = time.time_ns() - time.perf_counter_ns()
    span = _tracer.start_span(name, kind=_otel.internal, attributes=attributes,
                              start_time=int(start_perf * 1e9) + offset)
    span.end(end_time=int(end_perf * 1e9) + offset)


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) in hex of the current span, for log records; None without one."""
    if not ACTIVE:
        return None
    ctx = _otel.trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"
