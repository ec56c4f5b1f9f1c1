"""OpenTelemetry traces, for a process whose settings name a collector (ARCHSCORE_OTLP_ENDPOINT): a tracer
provider exporting over OTLP/HTTP, and Celery and Redis instrumented. The API adds FastAPI's
instrumentation (archscore.service.tracing); the workers start this in each pool process
(archscore.workers.celery_app). The Celery instrumentation carries the trace context in each task
message's headers, so a request's trace continues in the worker that runs its chunks.

This module imports OpenTelemetry's tracing SDK, the exporter and the instrumentations: import it only when
tracing is on, so that without the setting neither side loads them and the cached path pays nothing.

Redis commands are traced inside a request's or a task's trace. Outside one (the broker's polling, the
heartbeat, a task's result stored after its span ended) each would be a trace of its own, several a
second: a span of kind CLIENT that starts a trace is not sampled.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

API = "archscore-api"  # service.name of the API's spans
WORKER = "archscore-worker"  # and of the workers'

_provider: TracerProvider | None = None


class NoBareClientSpans(Sampler):
    """Samples every trace except one that would start with a client call (a Redis command outside any
    request or task)."""

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        decision = Decision.DROP if kind == SpanKind.CLIENT else Decision.RECORD_AND_SAMPLE
        return SamplingResult(decision, attributes if decision == Decision.RECORD_AND_SAMPLE else None)

    def get_description(self) -> str:
        return "NoBareClientSpans"


def traces_url(endpoint: str) -> str:
    """Where spans go: the collector's OTLP/HTTP traces path (as OTEL_EXPORTER_OTLP_ENDPOINT is read)."""
    return endpoint.rstrip("/") + "/v1/traces"


def start_tracing(service: str, endpoint: str) -> TracerProvider:
    """Export this process's spans as ``service`` to the collector at ``endpoint``, and instrument Celery
    (task publishing and running) and Redis. Once per process; later calls return the same provider."""
    global _provider
    if _provider is None:
        provider = TracerProvider(
            resource=Resource.create({SERVICE_NAME: service}), sampler=ParentBased(root=NoBareClientSpans())
        )
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(endpoint))))
        trace.set_tracer_provider(provider)
        CeleryInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]  # its __init__
        RedisInstrumentor().instrument(tracer_provider=provider)
        _provider = provider
    return _provider


def stop_tracing() -> None:
    """Send the spans still buffered (a pool process about to exit)."""
    if _provider is not None:
        _provider.shutdown()
