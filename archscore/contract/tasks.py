"""The Celery tasks the API sends and the workers run: each task's name, queue, task id and payload,
declared once as a payload model.

Payloads travel as keyword arguments in JSON (never pickle); a worker validates them back into the
same model, so a field added here is seen by both sides.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

SCORING_QUEUE = "celery"  # Celery's default queue: `archscore worker` consumes it unless told otherwise
TRAINING_QUEUE = "training"  # supernet training and averaging: hours long, never in front of scoring
QUEUE_ROLES = {SCORING_QUEUE: "scoring worker", TRAINING_QUEUE: "training worker"}


class TaskPayload(BaseModel):
    """A task's keyword arguments; subclasses name the task and its queue."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_name: ClassVar[str]
    queue: ClassVar[str]

    job_id: str

    def task_id(self) -> str:
        """The Celery task id: known without asking anyone, so a cancel can revoke it."""
        return self.job_id

    def kwargs(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class ScoreChunk(TaskPayload):
    """Score ``archs`` (string forms: the representatives of isomorphism classes unless the protocol is
    per_member) with ``estimators`` under ``protocol`` (the library protocol as a dict)."""

    task_name: ClassVar[str] = "archscore.score_chunk"
    queue: ClassVar[str] = SCORING_QUEUE

    chunk_index: int
    space: str
    protocol: dict[str, Any]
    estimators: list[str]
    archs: list[str]

    def task_id(self) -> str:
        return chunk_task_id(self.job_id, self.chunk_index)


class TrainSupernet(TaskPayload):
    """Train (or with ``resume`` continue) the checkpoint ``name`` with ``config``, the library's
    training config as a dict."""

    task_name: ClassVar[str] = "archscore.train_supernet"
    queue: ClassVar[str] = TRAINING_QUEUE

    name: str
    config: dict[str, Any]
    resume: bool


class AverageSupernets(TaskPayload):
    """Average the checkpoints ``sources`` (folders relative to the supernet directory) into ``name``."""

    task_name: ClassVar[str] = "archscore.average_supernets"
    queue: ClassVar[str] = TRAINING_QUEUE

    name: str
    sources: list[str]


TASKS: tuple[type[TaskPayload], ...] = (ScoreChunk, TrainSupernet, AverageSupernets)


def chunk_task_id(job_id: str, chunk_index: int) -> str:
    return f"{job_id}.{chunk_index}"


def task_routes() -> dict[str, dict[str, str]]:
    """Celery's routing table: each task to its queue."""
    return {task.task_name: {"queue": task.queue} for task in TASKS}
