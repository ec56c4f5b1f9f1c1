"""The HTTP API: the app factory. Never imports torch: validation and canonicalisation use the torch-free
library parts. The routes live in archscore.service.routes, one module per resource."""

from __future__ import annotations

import gc
import inspect

from fastapi import FastAPI

from archscore.contract.settings import get_settings
from archscore.service.errors import install_error_handlers
from archscore.service.middleware import LimitsAndMetrics
from archscore.service.routes import (
    dashboard,
    health,
    jobs,
    models,
    predictors,
    rankings,
    scores,
    spaces,
    studies,
    supernets,
    truth,
)
from archscore.service.scoring.cache import PATH, CachedScoresFastPath


def _telemetry_option() -> dict:
    """``FastAPI(telemetry=...)`` turning FastAPI's OpenTelemetry off unless the settings ask for it (on
    FastAPI versions that have it)."""
    if get_settings().fastapi_telemetry or "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


def create_app() -> FastAPI:
    app = FastAPI(
        **_telemetry_option(),
        title="archscore",
        version="0.1.0",
        description="Score neural architectures with efficient performance estimators and measure how well "
        "they rank (Kendall tau, Spearman, Pearson, P@topK, BR@K, WR@K).",
    )
    install_error_handlers(app)
    for module in (scores, jobs, supernets, rankings, spaces, truth, studies, models, predictors):
        app.include_router(module.router)
    app.include_router(dashboard.router)
    app.include_router(rankings.dashboard_data)
    app.include_router(dashboard.data)
    app.include_router(health.router)
    scores_route = next(r for r in scores.router.routes if getattr(r, "path", None) == PATH)
    app.add_middleware(CachedScoresFastPath, route=scores_route)
    app.add_middleware(LimitsAndMetrics)  # added last: outermost, so limits and metrics cover the fast path
    endpoint = get_settings().otlp_endpoint
    if endpoint:  # imported only then: without tracing, nothing of OpenTelemetry's SDK is loaded
        from archscore.service.tracing import instrument

        instrument(app, endpoint)
    return app


app = create_app()

# What is imported by now (FastAPI, pydantic's validators, the library) lives as long as the process: it is
# moved out of the collector's reach, which otherwise walks all of it on every full collection, a sixth of a
# cached answer's CPU at saturation (benchmarks/cached_path.py).
gc.collect()
gc.freeze()
