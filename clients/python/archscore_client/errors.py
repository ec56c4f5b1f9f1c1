"""The client's errors: the API's error shape as an exception."""

from __future__ import annotations

from typing import Any

import httpx


class ArchscoreError(Exception):
    """An error answer of the API, or no answer at all (``status`` None)."""

    def __init__(self, status: int | None, message: str, details: list[dict[str, str]] | None = None, body: Any = None):
        self.status = status
        self.message = message
        self.details = list(details or [])
        self.body = body
        super().__init__(str(self))

    def __str__(self) -> str:
        head = f"HTTP {self.status}: {self.message}" if self.status is not None else self.message
        if self.details:
            head += " (" + "; ".join(f"{d.get('field')}: {d.get('reason')}" for d in self.details) + ")"
        return head

    def reasons(self, field: str) -> list[str]:
        """The reasons given for one field, e.g. ``error.reasons("archs[0]")``."""
        return [d.get("reason", "") for d in self.details if d.get("field") == field]

    @classmethod
    def from_response(cls, response: httpx.Response) -> ArchscoreError:
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and "message" in error:
            details = [d for d in error.get("details") or [] if isinstance(d, dict)]
            return cls(int(error.get("status", response.status_code)), str(error["message"]), details, body)
        return cls(response.status_code, response.text.strip()[:500] or response.reason_phrase, [], body)


class JobTimeout(ArchscoreError):
    """The job was not done by the client's deadline; ``job`` is its last state (follow it with ``job()``)."""

    def __init__(self, job: Any, waited: float):
        self.job = job
        progress = job.progress if hasattr(job, "progress") else {}
        where = (
            f"{progress.get('done', '?')}/{progress.get('total', '?')}"
            if "done" in progress
            else f"epoch {progress.get('epoch', 0)}/{progress.get('epochs', '?')}"
        )
        super().__init__(None, f"job {job.job_id} not done after {waited:.0f} s ({where})", body=job)
