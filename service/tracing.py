"""The API's traces, when ARCHSCORE_OTLP_ENDPOINT names a collector: the setup both sides share
(archscore.contract.tracing: the exporter, Celery and Redis) and FastAPI's instrumentation, a span per
request that the task messages it sends carry on to the workers. Imported only then (archscore.service.app).
The orchestrator's and the monitoring's calls (/healthz, /readyz, /metrics) are not traced."""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from archscore.contract.tracing import API, start_tracing

NOT_TRACED = "/healthz$,/readyz$,/metrics$"  # regular expressions searched in each request's URL


def instrument(app: FastAPI, endpoint: str) -> None:
    provider = start_tracing(API, endpoint)
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls=NOT_TRACED)
