"""Step 5: one result per requested architecture, in request order, from the cached scores, the API's
own params and flops, the job's errors and the ground truth; and the job's body around them."""

from __future__ import annotations

from collections.abc import Mapping

from redis.asyncio import Redis

from archscore.contract import store
from archscore.contract.records import ScoreCell, ScoreJob
from archscore.estimators.catalog import POPULATION, PREDICTOR_PREFIX
from archscore.estimators.population import population_scores
from archscore.estimators.predictor import PredictorModel
from archscore.estimators.spaces import get_space
from archscore.estimators.spaces.base import SearchSpace
from archscore.service.analytic import analytic_names, analytic_values, num_classes
from archscore.service.jobs import job_progress, job_status
from archscore.service.scoring.plan import score_keys
from archscore.service.truth_tables import shown_name, truth_values

Cells = dict[str, dict[str, ScoreCell | None]]  # estimator -> cache key -> cell


def assemble_results(
    space: SearchSpace,
    job: ScoreJob,
    cells: Cells,
    errors: dict[str, str | None],
    truth: dict[str, float],
    predictors: Mapping[str, PredictorModel | None],
) -> list[dict]:
    """One result per requested architecture; the population estimators among the job's estimators rank
    the request's distinct architectures (archscore.estimators.population), and its predictors
    (``predictors``: each one's fitted model, None where it has been deleted) predict from the members."""
    analytic = analytic_names(space, job.estimators, job.predictors)
    rows, reasons = [], []
    for i, (arch, key) in enumerate(zip(job.archs, job.canonical)):
        row = {n: by_class.get(key) for n, by_class in cells.items()}
        scores: dict[str, float | None] = {n: cell.value if cell else None for n, cell in row.items()}
        if analytic:
            scores.update(
                job.costs[i]
                if job.costs
                # a job stored before costs were recorded
                else analytic_values(space, space.parse(arch), analytic, num_classes(job.protocol))
            )
        rows.append(scores)
        reasons.append({n: cell.reason for n, cell in row.items() if cell and cell.reason})
    _add_populations(job, rows)
    for name, model in predictors.items():
        _add_predictions(space, job, name, model, rows, reasons)
    return [
        {
            "index": i,
            "arch": arch,
            "canonical_key": key,
            "scores": {n: rows[i][n] for n in job.estimators},
            "reasons": {n: reason for n, reason in reasons[i].items() if n in job.estimators},
            "devices": {
                n: cell.device
                for n, by_class in cells.items()
                if n in job.estimators and (cell := by_class.get(key)) and cell.device
            },
            "ground_truth": truth.get(truth_key),
            "error": errors.get(key),
        }
        for i, (arch, key, truth_key) in enumerate(zip(job.archs, job.canonical, job.truth_keys))
    ]


def _add_populations(job: ScoreJob, rows: list[dict]) -> None:
    """The population estimators' values, over the job's distinct classes (the first row of each)."""
    first = {key: i for i, key in reversed(list(enumerate(job.canonical)))}
    classes = sorted(first.values())
    for name in job.estimators:
        if name not in POPULATION:
            continue
        info = POPULATION[name]
        values = dict(zip(classes, population_scores(info, [rows[i] for i in classes])))
        for row, key in zip(rows, job.canonical):
            row[name] = values[first[key]]


def _add_predictions(
    space: SearchSpace, job: ScoreJob, name: str, model: PredictorModel | None, rows: list[dict], reasons: list[dict]
) -> None:
    """The predictor ``name``'s value of each row, from the row's member scores."""
    if model is None:
        for row, why in zip(rows, reasons):
            row[name] = None
            why[name] = f"{name} has been deleted"
        return
    values = model.predict(space, [space.parse(arch) for arch in job.archs], rows)
    for row, value in zip(rows, values):
        row[name] = value


async def predictor_models(redis: Redis, job: ScoreJob) -> dict[str, PredictorModel | None]:
    """The fitted model of each predictor the job names (its owner's); None where it is gone."""
    out: dict[str, PredictorModel | None] = {}
    for name in job.predictors:
        record = store.decode_predictor(
            await redis.get(store.predictor_key(job.owner, name.removeprefix(PREDICTOR_PREFIX)))
        )
        out[name] = PredictorModel.model_validate(record.model) if record and record.model else None
    return out


async def job_results(redis: Redis, job: ScoreJob, cancelled: bool = False) -> list[dict]:
    """The results of a stored job, read from the cache and the job's errors."""
    space = get_space(job.space)
    unique = list(dict.fromkeys(job.canonical))
    analytic = analytic_names(space, job.estimators, job.predictors)
    keys = score_keys(space.name, job.protocol_hash, job.estimators, analytic, job.predictors)
    pipe = redis.pipeline()
    for key in keys.values():
        pipe.hmget(key, unique)
    pipe.hmget(store.job_errors_key(job.job_id), unique)
    *rows, errors = await pipe.execute()
    cells = {n: dict(zip(unique, map(store.decode_cell, row))) for n, row in zip(keys, rows)}
    if cancelled:
        errors = [
            e or ("cancelled before it was scored" if any(cells[n][c] is None for n in cells) else None)
            for c, e in zip(unique, errors)
        ]
    truth = await truth_values(redis, space, job.truth, job.truth_keys) if job.truth else {}
    models = await predictor_models(redis, job) if job.predictors else {}
    return assemble_results(space, job, cells, dict(zip(unique, errors)), truth, models)


def job_body(
    job: ScoreJob, status: str, progress: tuple[int, int], results: list | None, rankings: dict | None
) -> dict:
    return {
        "job_id": job.job_id,
        "kind": "scores",
        "status": status,
        "progress": {"done": progress[0], "total": progress[1]},
        "space": job.space,
        "estimators": job.estimators,
        "protocol": job.protocol,
        "protocol_hash": job.protocol_hash,
        "truth": shown_name(job.truth),
        "cached": job.cached,
        "results": results,
        "rankings": rankings,
    }


async def render_job(redis: Redis, job: ScoreJob, rankings: dict | None) -> dict:
    done, total = await job_progress(redis, job)
    status = await job_status(redis, job, done, total)
    results = None
    if status in ("done", "cancelled"):
        results = await job_results(redis, job, cancelled=status == "cancelled")
    return job_body(job, status, (done, total), results, rankings)
