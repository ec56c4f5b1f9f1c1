"""HTTP client of the archscore service: ``Client`` (sync) and ``AsyncClient`` over every route."""

from archscore_client.aio import AsyncClient
from archscore_client.client import Client
from archscore_client.errors import ArchscoreError, JobTimeout
from archscore_client.models import ArchResult, ErrorDetail, Job, Rankings, Study
from archscore_client.routes import SERVER_DEFAULT

__all__ = [
    "SERVER_DEFAULT",
    "ArchResult",
    "ArchscoreError",
    "AsyncClient",
    "Client",
    "ErrorDetail",
    "Job",
    "JobTimeout",
    "Rankings",
    "Study",
]
__version__ = "0.1.0"
