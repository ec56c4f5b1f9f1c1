"""The HTTP API: the app factory. Never imports torch: validation and canonicalisation use the torch-free
library parts. The routes live in archscore.service.routes, one module per resource."""

from __future__ import annotations

from fastapi import FastAPI

from archscore.service.errors import install_error_handlers
from archscore.service.middleware import LimitsAndMetrics
from archscore.service.routes import dashboard, health, jobs, rankings, scores, spaces, studies, supernets, truth
from archscore.service.scoring.cache import PATH, CachedScoresFastPath


def create_app() -> FastAPI:
    app = FastAPI(
        title="archscore",
        version="0.1.0",
        description="Score neural architectures with efficient performance estimators and measure how well "
        "they rank (Kendall tau, Spearman, Pearson, P@topK, BR@K, WR@K).",
    )
    install_error_handlers(app)
    for module in (scores, jobs, supernets, rankings, spaces, truth, studies):
        app.include_router(module.router)
    app.include_router(dashboard.router)
    app.include_router(rankings.dashboard_data)
    app.include_router(dashboard.data)
    app.include_router(health.router)
    scores_route = next(r for r in scores.router.routes if getattr(r, "path", None) == PATH)
    app.add_middleware(CachedScoresFastPath, route=scores_route)
    app.add_middleware(LimitsAndMetrics)  # added last: outermost, so limits and metrics cover the fast path
    return app


app = create_app()
