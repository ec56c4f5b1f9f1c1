"""GET /metrics: this process's own metrics (HTTP, the score cache) and what the deployment around it says
at scrape time: the queues' depth, the live workers, the workers' chunk durations and failures per
estimator set, the supernet trainings' progress.

The workers are processes of their own, so they count in Redis (archscore.workers.metrics, keys in
archscore.contract.store) and each scrape reads those counters with the API's async client, then renders
them through a Collector built over that one reading: the event loop never waits on a blocking call, and
every API process (or replica) shows the same totals. When Redis does not answer, the families read
from it are left out and ``archscore_redis_up`` is 0."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from redis.asyncio import Redis
from redis.exceptions import RedisError

from archscore.contract import store
from archscore.contract.records import ChunkStats, TrainingJob
from archscore.contract.tasks import QUEUE_ROLES
from archscore.service.readiness import workers_by_queue
from archscore.service.supernets import render_training_job


@dataclass(frozen=True)
class Training:
    job_id: str
    name: str
    epoch: int  # the epoch in progress, from 1; 0 before its first step
    epochs: int  # planned


@dataclass
class Reading:
    """One scrape's look at Redis and the workers."""

    redis_up: bool = False
    queues: dict[str, int] = field(default_factory=dict)
    workers: dict[str, int] | None = None  # None: the census did not answer
    chunks: dict[str, ChunkStats] = field(default_factory=dict)
    trainings: list[Training] = field(default_factory=list)


class ReadingCollector(Collector):
    """A reading as Prometheus metric families."""

    def __init__(self, reading: Reading) -> None:
        self.reading = reading

    def collect(self) -> Iterator[Metric]:
        reading = self.reading
        yield GaugeMetricFamily("archscore_redis_up", "1 when Redis answered this scrape", value=int(reading.redis_up))
        if not reading.redis_up:
            return
        depth = GaugeMetricFamily(
            "archscore_queue_depth", "tasks waiting in a Celery queue, not yet taken by a worker", labels=["queue"]
        )
        for queue, count in reading.queues.items():
            depth.add_metric([queue], count)
        yield depth
        if reading.workers is not None:
            workers = GaugeMetricFamily("archscore_workers", "live workers consuming a queue", labels=["queue"])
            for queue, count in reading.workers.items():
                workers.add_metric([queue], count)
            yield workers
        seconds = HistogramMetricFamily(
            "archscore_chunk_seconds",
            "seconds a worker spent on a scoring chunk, per estimator set (sorted, comma-joined)",
            labels=["estimators"],
        )
        failures = CounterMetricFamily(
            "archscore_chunk_failures",
            "scoring chunks that ended with an error for one of their architectures (an estimator raised, "
            "the chunk failed whole, or it was given up after its workers kept dying), per estimator set",
            labels=["estimators"],
        )
        for name, stats in sorted(reading.chunks.items()):
            buckets = [(floatToGoString(bound), count) for bound, count in stats.buckets]
            seconds.add_metric([name], [*buckets, ("+Inf", stats.count)], stats.seconds)
            failures.add_metric([name], stats.failures)
        yield seconds
        yield failures
        epoch = GaugeMetricFamily(
            "archscore_training_epoch",
            "epoch in progress of a running supernet training (from 1; 0 before its first step)",
            labels=["job_id", "name"],
        )
        epochs = GaugeMetricFamily(
            "archscore_training_epochs", "epochs a running supernet training is to reach", labels=["job_id", "name"]
        )
        for training in reading.trainings:
            epoch.add_metric([training.job_id, training.name], training.epoch)
            epochs.add_metric([training.job_id, training.name], training.epochs)
        yield epoch
        yield epochs


async def read(redis: Redis, celery) -> Reading:
    reading = Reading()
    try:
        pipe = redis.pipeline(transaction=False)
        for queue in QUEUE_ROLES:
            pipe.llen(queue)
        reading.queues = dict(zip(QUEUE_ROLES, await pipe.execute()))
        reading.chunks = await _chunks(redis)
        reading.trainings = await _trainings(redis)
    except (RedisError, OSError):
        return reading
    reading.redis_up = True
    try:
        reading.workers = dict(await workers_by_queue(celery))
    except Exception:  # the broadcast failed: the census is left out of this scrape
        pass
    return reading


async def _chunks(redis: Redis) -> dict[str, ChunkStats]:
    names = await redis.zrange(store.chunk_sets_key(), 0, -1)
    pipe = redis.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(store.chunk_stats_key(name))
    return {name: store.decode_chunk_stats(fields) for name, fields in zip(names, await pipe.execute()) if fields}


async def _trainings(redis: Redis) -> list[Training]:
    """The supernet trainings a worker reports as running (one that stopped reporting reads failed)."""
    found = []
    for job_id in await redis.zrange(store.training_active_key(), 0, -1):
        job = store.decode_job(await redis.get(store.job_key(job_id)))
        if isinstance(job, TrainingJob) and job.kind == "supernet_training":
            body = await render_training_job(redis, job)
            if body["status"] == "running":
                progress = body["progress"]
                found.append(Training(job_id, job.name, int(progress.get("epoch", 0)), int(progress["epochs"])))
    return found


async def exposition(redis: Redis, celery) -> bytes:
    """The text of GET /metrics."""
    return generate_latest(REGISTRY) + generate_latest(ReadingCollector(await read(redis, celery)))
