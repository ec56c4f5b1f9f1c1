"""The HTTP routes, one module per resource. Each route parses its request, calls one function of the
layer below (archscore.service.scoring, .jobs, .rankings, .truth_tables, .supernets, .studies,
.readiness) and shapes the response; none talks to Redis itself."""

from fastapi import APIRouter, Depends

from archscore.service.deps import require_api_key
from archscore.service.errors import ERRORS


def v1_router(**kwargs) -> APIRouter:
    """A router of /v1 routes: API key required, the shared error answers documented."""
    return APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)], responses=ERRORS, **kwargs)
