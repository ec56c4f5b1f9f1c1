"""Every route of the API once, as a description of the HTTP call and how to read its answer; the sync
and the async client send the same descriptions (``_call`` returns a value or an awaitable)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from archscore_client.models import Job, Rankings, Study

SERVER_DEFAULT: Any = object()  # leave the field out: the server's default (space nb201; truth its first column)


def _json(response: httpx.Response) -> Any:
    return response.json()


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: dict[str, Any] | None = None
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] | None = None
    wait: float = 0.0  # a long-poll: the request may take this much longer
    parse: Callable[[httpx.Response], Any] = _json
    answers: tuple[int, ...] = ()  # error statuses that are answers, not errors (readyz's 503)


def _q(value: str) -> str:
    return quote(str(value), safe="")


def score_body(
    archs: Iterable[Any], estimators: Iterable[str], space: str | None, protocol: Mapping | None, truth: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"archs": list(archs), "estimators": list(estimators)}
    if space is not None:
        body["space"] = space
    if protocol is not None:
        body["protocol"] = dict(protocol)
    if truth is not SERVER_DEFAULT:
        body["truth"] = truth
    return body


class Routes:
    """The API's routes. Subclasses define ``_call(Call)``."""

    def _call(self, call: Call) -> Any:
        raise NotImplementedError

    # -- scoring ------------------------------------------------------------------------------------
    def submit(
        self,
        archs: Iterable[Any],
        estimators: Iterable[str],
        space: str | None = None,
        protocol: Mapping[str, Any] | None = None,
        truth: Any = SERVER_DEFAULT,
        wait: float = 0.0,
    ):
        """POST /v1/scores: the job as submitted, or done when it finishes within ``wait`` seconds (at
        most the server's bound)."""
        params = {"wait": wait} if wait > 0 else None
        return self._call(
            Call(
                "POST",
                "/v1/scores",
                params,
                score_body(archs, estimators, space, protocol, truth),
                wait=wait,
                parse=lambda r: Job.from_json(r.json()),
            )
        )

    def job(self, job_id: str, wait: float = 0.0):
        """GET /v1/jobs/{id}: status, progress and (when done) results; ``wait`` long-polls."""
        return self._call(
            Call(
                "GET",
                f"/v1/jobs/{_q(job_id)}",
                {"wait": wait} if wait > 0 else None,
                wait=wait,
                parse=lambda r: Job.from_json(r.json()),
            )
        )

    def jobs(self, limit: int = 20):
        """GET /v1/jobs: the most recent jobs of this key, newest first."""
        return self._call(Call("GET", "/v1/jobs", {"limit": limit}))

    def cancel(self, job_id: str):
        """DELETE /v1/jobs/{id}: cancel a queued or running job (409 when it has finished)."""
        return self._call(Call("DELETE", f"/v1/jobs/{_q(job_id)}", parse=lambda r: Job.from_json(r.json())))

    def rankings(
        self, space: str, truth: str | None = None, protocol_hash: str | None = None, offset: int = 0, limit: int = 20
    ):
        """GET /v1/rankings/{space}: the criteria of every estimator per protocol."""
        params = {"truth": truth, "protocol_hash": protocol_hash, "offset": offset or None, "limit": limit}
        return self._call(
            Call(
                "GET",
                f"/v1/rankings/{_q(space)}",
                {k: v for k, v in params.items() if v is not None},
                parse=lambda r: Rankings.from_json(r.json()),
            )
        )

    def points(self, space: str, estimator: str, **params: Any):
        """GET /v1/rankings/{space}/points: each scored architecture's score and ground truth (the dashboard's)."""
        return self._call(Call("GET", f"/v1/rankings/{_q(space)}/points", {"estimator": estimator, **params}))

    # -- what exists ----------------------------------------------------------------------------------
    def estimators(self):
        """GET /v1/estimators: each estimator's name, direction, version and where it runs."""
        return self._call(Call("GET", "/v1/estimators"))

    def spaces(self):
        """GET /v1/spaces: the search spaces, their encodings, size and ground-truth columns."""
        return self._call(Call("GET", "/v1/spaces"))

    def canonical(self, space: str, arch: Any):
        """GET /v1/spaces/{space}/canonical: validate one encoding; its string form and canonical key."""
        text = arch if isinstance(arch, str) else json.dumps(arch)
        return self._call(Call("GET", f"/v1/spaces/{_q(space)}/canonical", {"arch": text}))

    # -- ground truth -------------------------------------------------------------------------------
    def upload_truth(self, space: str, name: str, table: str | Mapping[str, float] | list, column: str | None = None):
        """PUT /v1/truth/{space}/{name}: CSV text (``arch,value``), JSON text, a mapping, or NDS records."""
        content = table if isinstance(table, str) else json.dumps(table)
        return self._call(
            Call(
                "PUT",
                f"/v1/truth/{_q(space)}/{_q(name)}",
                {"column": column} if column else None,
                content=content.encode("utf-8"),
                headers={"Content-Type": "text/plain; charset=utf-8"},
            )
        )

    def delete_truth(self, space: str, name: str):
        """DELETE /v1/truth/{space}/{name}: remove an uploaded table (its rankings go with it)."""
        return self._call(Call("DELETE", f"/v1/truth/{_q(space)}/{_q(name)}"))

    # -- ONNX models (the onnx space) ---------------------------------------------------------------
    def upload_model(self, model: bytes):
        """POST /v1/models: an ONNX model's bytes; answers its sha256 (the onnx space's encoding), its
        operators and input shape."""
        return self._call(
            Call("POST", "/v1/models", content=model, headers={"Content-Type": "application/octet-stream"})
        )

    def model(self, sha256: str):
        """GET /v1/models/{sha256}: an uploaded model's sha256, size, operators and input shape."""
        return self._call(Call("GET", f"/v1/models/{_q(sha256)}"))

    def delete_model(self, sha256: str):
        """DELETE /v1/models/{sha256}: remove an uploaded model."""
        return self._call(Call("DELETE", f"/v1/models/{_q(sha256)}"))

    # -- studies ------------------------------------------------------------------------------------
    def studies(self):
        """GET /v1/studies: the studies and what each measures."""
        return self._call(Call("GET", "/v1/studies"))

    def study_runs(self, limit: int = 20):
        """GET /v1/studies/runs: the most recent studies of this key, newest first, with their figures."""
        return self._call(Call("GET", "/v1/studies/runs", {"limit": limit}))

    def start_study(
        self,
        study: str,
        archs: Iterable[Any],
        estimators: Iterable[str],
        space: str | None = None,
        protocol: Mapping[str, Any] | None = None,
        truth: Any = SERVER_DEFAULT,
        options: Mapping[str, Any] | None = None,
    ):
        """POST /v1/studies: start study ``study`` (GET /v1/studies) on ``archs``; follow it with ``study()``."""
        body = score_body(archs, estimators, space, protocol, truth) | {"study": study}
        if options is not None:
            body["options"] = dict(options)
        return self._call(Call("POST", "/v1/studies", json=body, parse=lambda r: Study.from_json(r.json())))

    def study(self, study_id: str, wait: float = 0.0):
        """GET /v1/studies/{id}: progress, then its numbers and figures; ``wait`` long-polls."""
        return self._call(
            Call(
                "GET",
                f"/v1/studies/{_q(study_id)}",
                {"wait": wait} if wait > 0 else None,
                wait=wait,
                parse=lambda r: Study.from_json(r.json()),
            )
        )

    def cancel_study(self, study_id: str):
        """DELETE /v1/studies/{id}: cancel a study and its scoring jobs (409 once it has finished)."""
        return self._call(Call("DELETE", f"/v1/studies/{_q(study_id)}", parse=lambda r: Study.from_json(r.json())))

    def figure(self, study_id: str, name: str):
        """A finished study's figure as PNG bytes."""
        return self._call(Call("GET", f"/v1/studies/{_q(study_id)}/figures/{_q(name)}.png", parse=lambda r: r.content))

    # -- few-shot predictors ------------------------------------------------------------------------
    def fit_predictor(self, name: str, **request: Any):
        """POST /v1/predictors: fit predictor ``name`` (train and seed, or archs; space, truth, estimators,
        encoding, prior, protocol); score requests then name it ``predictor:NAME``."""
        return self._call(Call("POST", "/v1/predictors", json={"name": name, **request}))

    def predictor(self, name: str, wait: float = 0.0):
        """GET /v1/predictors/{name}: the training set's scoring progress, then the fit; ``wait`` long-polls."""
        params = {"wait": wait} if wait > 0 else None
        return self._call(Call("GET", f"/v1/predictors/{_q(name)}", params, wait=wait))

    def predictors(self):
        """GET /v1/predictors: this key's predictors."""
        return self._call(Call("GET", "/v1/predictors"))

    def predictor_model(self, name: str):
        """GET /v1/predictors/{name}/model: the fitted predictor's file (``archscore predictor eval`` reads it)."""
        return self._call(Call("GET", f"/v1/predictors/{_q(name)}/model"))

    def delete_predictor(self, name: str):
        """DELETE /v1/predictors/{name}: remove a predictor (its unfinished training job is cancelled)."""
        return self._call(Call("DELETE", f"/v1/predictors/{_q(name)}"))

    # -- supernets ----------------------------------------------------------------------------------
    def start_training(self, name: str, **options: Any):
        """POST /v1/supernets: train checkpoint ``name`` (sampler, epochs, network, resume ...)."""
        return self._call(
            Call("POST", "/v1/supernets", json={"name": name, **options}, parse=lambda r: Job.from_json(r.json()))
        )

    def start_average(self, name: str, checkpoints: Iterable[str] = (), snapshots_of: str | None = None):
        """POST /v1/supernets/average: average named checkpoints (and/or one's snapshots) into ``name``."""
        body: dict[str, Any] = {"name": name, "checkpoints": list(checkpoints)}
        if snapshots_of is not None:
            body["snapshots_of"] = snapshots_of
        return self._call(Call("POST", "/v1/supernets/average", json=body, parse=lambda r: Job.from_json(r.json())))

    def supernets(self):
        """GET /v1/supernets: checkpoints for one-shot scoring, newest first."""
        return self._call(Call("GET", "/v1/supernets"))

    def supernet_file(self, sha256: str, file: str = "weights.pt"):
        """GET /v1/supernets/{sha256}/files/{file}: ``manifest.json`` or ``weights.pt`` of the checkpoint
        with exactly this sha256, as bytes (load weights with ``torch.load(..., weights_only=True)``)."""
        return self._call(Call("GET", f"/v1/supernets/{_q(sha256)}/files/{_q(file)}", parse=lambda r: r.content))

    # -- health -------------------------------------------------------------------------------------
    def health(self):
        """GET /healthz: the API process is up."""
        return self._call(Call("GET", "/healthz"))

    def ready(self):
        """GET /readyz: {"ready", "missing", ...}; not ready is an answer here, not an error."""
        return self._call(Call("GET", "/readyz", answers=(503,)))

    def metrics(self):
        """GET /metrics: the Prometheus text exposition, as text."""
        return self._call(Call("GET", "/metrics", parse=lambda r: r.text))
