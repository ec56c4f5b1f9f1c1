"""Everything archscore keeps in Redis: the score cache, jobs, ranking statistics, uploaded truth.

Keys (all under ``archscore:v1:``):
  score:{space}:{protocol}:{estimator}@{version}   hash canonical key -> {"value", "reason", "per_batch", "device"}
  members:{space}:{protocol}                        hash architecture string -> canonical key (scored so far)
  gen:{space}:{protocol}                            counter, bumped whenever new scores land
  protocol:{space}:{protocol}                       JSON of the protocol
  protocols:{space}                                 sorted set protocol hash -> last use (unix time); entries
                                                    unused for ARCHSCORE_CACHE_TTL_SECONDS are dropped at each
                                                    write, and the newest PROTOCOLS_KEPT are kept
  rankings:{space}:{protocol}:{truth}               JSON of the criteria, with the generation it was computed at
  job:{id}                                          JSON of the job; job:{id}:done set of finished chunks;
                                                    job:{id}:errors hash canonical key -> error
  truth:{space}:{name}                              hash truth key -> value (uploaded tables; SearchSpace.truth_key)
  truth-tables                                      hash "{space}/{name}" -> rows: every uploaded table (the bounds)
  model:{sha256}                                    an uploaded ONNX model (the onnx space), base64 of its bytes
  models                                            hash sha256 -> JSON description: every uploaded model (the bound)
  rate:{owner}:{minute}                             counter of a key's requests in one minute (61 s TTL)
  active:{owner}                                    sorted set job id -> creation: a key's jobs that may be unfinished
  job:{id}:training                                 JSON status of a supernet training job (written by the worker)
  supernet-lock:{name}                              id of the training job that owns a checkpoint name
  job:{id}:cancelled                                set by DELETE /v1/jobs/{id}; workers skip or stop the job
  job:{id}:started                                  time a worker first began one of the job's chunks (the job
                                                    reads running from then on); lives ARCHSCORE_JOB_TTL_SECONDS
  job:{id}:attempts:{chunk}                         counter of a chunk's deliveries (a chunk whose workers keep
                                                    dying is given up); lives ARCHSCORE_JOB_TTL_SECONDS
  study:{id}                                        JSON of a study: its request, its scoring jobs, its result
  study:{id}:figures                                hash figure name -> PNG, base64
  predictor:{owner}:{name}                          JSON of a few-shot predictor: its request, the scoring job of
                                                    its training set, then its fitted model (PredictorRecord)
  predictors:{owner}                                hash name -> creation time: a key's predictors (the bound)
  recent:jobs, recent:studies                       sorted sets id -> creation time, the newest 200 kept
                                                    (the dashboard's lists; entries may outlive their job)
  metrics:chunks:{estimators}                       hash of counters: the chunks of one estimator set (sorted,
                                                    comma-joined) as the workers ran them: count, sum (seconds),
                                                    failures, le:{bound} (cumulative histogram buckets)
  metrics:chunk-sets                                sorted set estimator set -> time its last chunk ended
  training:active                                   sorted set training job id -> time of its last progress report

Lifetimes (Redis runs with a maxmemory and the volatile-lru policy: only keys with a TTL are evicted):
  - cache entries (score, members, gen, protocol, rankings) expire ARCHSCORE_CACHE_TTL_SECONDS after their
    last use; every request that reads or writes one renews its TTL;
  - the protocol index (protocols:{space}) has no TTL, so that eviction, whose LRU clock cannot tell keys
    used within the same second apart, never drops the list of protocols while their scores remain; it is
    bounded instead (see above), and a listing drops the entries whose protocol has expired or been evicted;
  - a job's keys (job:{id}*) have no TTL while the job is unfinished, so neither expiry nor eviction can
    drop work in flight; the job gets ARCHSCORE_JOB_TTL_SECONDS once its last chunk is done or it is
    cancelled, ARCHSCORE_CACHED_JOB_TTL_SECONDS when the cache answered it wholly;
  - the workers' aggregates for /metrics (metrics:*) live METRICS_TTL_SECONDS after their last update, so an
    estimator set no longer used drops out; training:active lives ARCHSCORE_JOB_TTL_SECONDS after its last
    write, and readers skip its entries whose training has ended or stopped reporting;
  - a study's keys live ARCHSCORE_JOB_TTL_SECONDS from its creation, renewed by every read, and from when
    its result is computed or it is cancelled;
  - uploaded truth tables never expire, so their number and rows are bounded (ARCHSCORE_MAX_TRUTH_TABLES,
    ARCHSCORE_MAX_TRUTH_ROWS_TOTAL) and DELETE /v1/truth/{space}/{name} removes one; Celery's queues and
    kombu's unacknowledged set carry no TTL;
  - uploaded ONNX models never expire either: their number and size are bounded (ARCHSCORE_MAX_MODELS,
    ARCHSCORE_MAX_MODEL_BYTES) and DELETE /v1/models/{sha256} removes one;
  - predictors never expire: a key keeps at most ARCHSCORE_MAX_PREDICTORS (a few hundred kB each) and
    DELETE /v1/predictors/{name} removes one.

Torch-free, used by the API (redis.asyncio) and the workers (sync client) alike: the functions here
build keys and encode and decode the records (archscore.contract.records); callers run the commands.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from archscore.contract.records import (
    ChunkStats,
    Job,
    PredictorRecord,
    ScoreCell,
    ScoreJob,
    StudyRecord,
    TrainingJob,
    TrainingStatus,
)
from archscore.estimators.catalog import ESTIMATORS

PREFIX = "archscore:v1"


def score_key(space: str, protocol_hash: str, estimator: str) -> str:
    """Where one estimator's scores under one protocol are cached; its version (the catalog's) is part
    of the key, so a new version of an estimator never reads the old one's scores."""
    return f"{PREFIX}:score:{space}:{protocol_hash}:{estimator}@{ESTIMATORS[estimator].version}"


def members_key(space: str, protocol_hash: str) -> str:
    return f"{PREFIX}:members:{space}:{protocol_hash}"


def generation_key(space: str, protocol_hash: str) -> str:
    return f"{PREFIX}:gen:{space}:{protocol_hash}"


def protocol_key(space: str, protocol_hash: str) -> str:
    return f"{PREFIX}:protocol:{space}:{protocol_hash}"


def protocols_key(space: str) -> str:
    return f"{PREFIX}:protocols:{space}"


def rankings_key(space: str, protocol_hash: str, truth: str) -> str:
    return f"{PREFIX}:rankings:{space}:{protocol_hash}:{truth}"


def job_key(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}"


def job_done_key(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}:done"


def job_errors_key(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}:errors"


def training_status_key(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}:training"


def job_cancelled_key(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}:cancelled"


def chunk_attempts_key(job_id: str, chunk_index: int) -> str:
    return f"{PREFIX}:job:{job_id}:attempts:{chunk_index}"


def job_started_key(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}:started"


def study_key(study_id: str) -> str:
    return f"{PREFIX}:study:{study_id}"


def study_figures_key(study_id: str) -> str:
    return f"{PREFIX}:study:{study_id}:figures"


RECENT_KEPT = 200
PROTOCOLS_KEPT = 10_000  # per space: the protocol index's bound (a few hundred kB)


def recent_key(kind: str) -> str:
    """``jobs`` or ``studies``."""
    return f"{PREFIX}:recent:{kind}"


def supernet_lock_key(name: str) -> str:
    return f"{PREFIX}:supernet-lock:{name}"


def predictor_key(owner: str, name: str) -> str:
    return f"{PREFIX}:predictor:{owner}:{name}"


def predictors_key(owner: str) -> str:
    return f"{PREFIX}:predictors:{owner}"


def truth_key(space: str, name: str) -> str:
    return f"{PREFIX}:truth:{space}:{name}"


def rate_key(owner: str, minute: int) -> str:
    return f"{PREFIX}:rate:{owner}:{minute}"


def active_jobs_key(owner: str) -> str:
    return f"{PREFIX}:active:{owner}"


def truth_tables_key() -> str:
    return f"{PREFIX}:truth-tables"


def truth_table_id(space: str, name: str) -> str:
    return f"{space}/{name}"


def model_key(sha256: str) -> str:
    """An uploaded ONNX model: base64 of its bytes (the clients decode replies as text)."""
    return f"{PREFIX}:model:{sha256}"


def models_key() -> str:
    return f"{PREFIX}:models"


METRICS_TTL_SECONDS = 7 * 24 * 3600
# upper bounds (seconds) of the chunk duration histogram's buckets; +Inf is the count
CHUNK_SECONDS_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


def estimator_set(estimators: list[str]) -> str:
    """The label of a chunk's estimators: sorted and comma-joined (a request's order does not matter)."""
    return ",".join(sorted(estimators))


def chunk_stats_key(estimators: str) -> str:
    """The chunk counters of one estimator set (``estimator_set``)."""
    return f"{PREFIX}:metrics:chunks:{estimators}"


def chunk_sets_key() -> str:
    return f"{PREFIX}:metrics:chunk-sets"


def chunk_increments(seconds: float | None, failed: bool) -> dict[str, int]:
    """The counters one chunk adds to its set's hash (HINCRBY each; ``sum`` takes ``seconds`` by
    HINCRBYFLOAT): count and every bucket ``seconds`` falls in (cumulative, as Prometheus reads buckets),
    and a failure when ``failed``. A chunk that did not run (given up) adds only its failure."""
    counts = {"failures": 1} if failed else {}
    if seconds is not None:
        counts["count"] = 1
        counts.update({f"le:{bound:g}": 1 for bound in CHUNK_SECONDS_BUCKETS if seconds <= bound})
    return counts


def decode_chunk_stats(fields: dict[str, str]) -> ChunkStats:
    """The counters of one estimator set's hash (buckets absent from it are 0)."""
    return ChunkStats(
        count=int(fields.get("count", 0)),
        seconds=float(fields.get("sum", 0.0)),
        failures=int(fields.get("failures", 0)),
        buckets=[(bound, int(fields.get(f"le:{bound:g}", 0))) for bound in CHUNK_SECONDS_BUCKETS],
    )


def training_active_key() -> str:
    return f"{PREFIX}:training:active"


def job_keys(job_id: str) -> list[str]:
    """The keys that live and die with a job."""
    return [
        job_key(job_id),
        job_done_key(job_id),
        job_errors_key(job_id),
        job_cancelled_key(job_id),
        job_started_key(job_id),
        training_status_key(job_id),
    ]


def encode(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def decode(raw: str | bytes | None) -> Any:
    return None if raw is None else json.loads(raw)


def encode_record(record: BaseModel) -> str:
    return record.model_dump_json()


def decode_job(raw: str | bytes | None) -> Job | None:
    """A stored job: a scoring job (older records carry no ``kind``) or a training one."""
    if raw is None:
        return None
    data = json.loads(raw)
    if data.get("kind", "scores") == "scores":
        return ScoreJob.model_validate(data)
    return TrainingJob.model_validate(data)


def decode_training_status(raw: str | bytes | None) -> TrainingStatus | None:
    return None if raw is None else TrainingStatus.model_validate_json(raw)


def decode_study(raw: str | bytes | None) -> StudyRecord | None:
    return None if raw is None else StudyRecord.model_validate_json(raw)


def decode_predictor(raw: str | bytes | None) -> PredictorRecord | None:
    return None if raw is None else PredictorRecord.model_validate_json(raw)


def decode_cell(raw: str | bytes | None) -> ScoreCell | None:
    return None if raw is None else ScoreCell.model_validate_json(raw)


# Delete a key only while it holds the given value: a checkpoint name's lock that has passed to another
# job stays (ARGV[1]: the job id that took it).
RELEASE_LOCK = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
