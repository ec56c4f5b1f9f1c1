"""The committed openapi.json is the app's current schema, and the schema documents what clients need."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "openapi.json"
REGENERATE = "run `python scripts/export_openapi.py` and commit openapi.json"


def _exporter():
    spec = importlib.util.spec_from_file_location("export_openapi", ROOT / "scripts" / "export_openapi.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def current() -> str:
    return _exporter().render()


@pytest.fixture(scope="module")
def schema(current) -> dict:
    return json.loads(current)


def test_committed_schema_is_current(current):
    assert COMMITTED.exists(), f"openapi.json is missing: {REGENERATE}"
    committed = COMMITTED.read_text(encoding="utf-8")
    if committed != current:
        old, new = json.loads(committed), json.loads(current)
        changed = sorted(
            {p for p in old.get("paths", {}) | new.get("paths", {}) if old["paths"].get(p) != new["paths"].get(p)}
            | {
                f"#/components/schemas/{s}"
                for s in old.get("components", {}).get("schemas", {}) | new.get("components", {}).get("schemas", {})
                if old["components"]["schemas"].get(s) != new["components"]["schemas"].get(s)
            }
        )
        pytest.fail(f"openapi.json differs from the app's schema (changed: {', '.join(changed) or 'metadata'}): {REGENERATE}")


def test_export_is_stable_text(current):
    assert current.endswith("}\n") and not current.endswith("\n\n")
    assert current == json.dumps(json.loads(current), sort_keys=True, indent=2) + "\n"


def test_export_check_mode(tmp_path, current, capsys):
    exporter = _exporter()
    target = tmp_path / "openapi.json"
    assert exporter.main(["--output", str(target), "--check"]) == 1
    assert "python scripts/export_openapi.py" in capsys.readouterr().err
    assert exporter.main(["--output", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == current
    assert exporter.main(["--output", str(target), "--check"]) == 0


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        parts = node["$ref"].removeprefix("#/").split("/")
        node = schema
        for part in parts:
            node = node[part]
    return node


def test_post_scores_documents_example_and_statuses(schema):
    post = schema["paths"]["/v1/scores"]["post"]
    body = post["requestBody"]["content"]["application/json"]
    request = _resolve(schema, body["schema"])
    examples = (
        list(request.get("examples") or [])
        + ([request["example"]] if "example" in request else [])
        + ([body["example"]] if "example" in body else [])
        + [e.get("value") for e in (body.get("examples") or {}).values()]
    )
    assert examples, "POST /v1/scores needs a request example"
    example = examples[0]
    assert example["archs"] and example["estimators"]
    assert set(example) <= set(request["properties"])

    responses = post["responses"]
    for status in ("200", "202", "422"):
        assert status in responses, f"POST /v1/scores does not document {status}"
    for status in ("200", "202"):
        job = _resolve(schema, responses[status]["content"]["application/json"]["schema"])
        assert {"job_id", "status", "progress", "results"} <= set(job["properties"])
    error = _resolve(schema, responses["422"]["content"]["application/json"]["schema"])
    assert "error" in error["properties"]
    assert any(p["name"] == "wait" and p["in"] == "query" for p in post["parameters"])


def test_every_client_route_is_documented(schema):
    """The routes service/client.py and examples/client.mjs call exist with these methods."""
    paths = schema["paths"]
    expected = {
        "/v1/scores": "post",
        "/v1/jobs/{job_id}": "get",
        "/v1/rankings/{space}": "get",
        "/v1/estimators": "get",
        "/v1/spaces": "get",
        "/v1/spaces/{space}/canonical": "get",
        "/v1/truth/{space}/{name}": "put",
        "/healthz": "get",
        "/readyz": "get",
    }
    for path, method in expected.items():
        assert method in paths.get(path, {}), f"{method.upper()} {path} is not in the schema"
    job_params = {p["name"] for p in paths["/v1/jobs/{job_id}"]["get"]["parameters"]}
    assert "wait" in job_params
    ranking_params = {p["name"] for p in paths["/v1/rankings/{space}"]["get"]["parameters"]}
    assert {"truth", "protocol_hash"} <= ranking_params


def test_score_examples_cover_every_space_and_parse(schema):
    """Each space has a POST /v1/scores example whose encodings the space accepts."""
    from archscore.estimators.spaces import get_space, list_spaces

    request = _resolve(schema, schema["paths"]["/v1/scores"]["post"]["requestBody"]["content"]["application/json"]["schema"])
    by_space = {e["space"]: e for e in request["examples"]}
    assert set(by_space) == set(list_spaces())
    for name, example in by_space.items():
        space = get_space(name)
        assert [space.parse(a) for a in example["archs"]]
        # spaces without built-in ground truth (NDS: users upload it) show a request without one
        assert example.get("truth") in (space.ground_truth_columns or (None,))


def test_readme_score_requests_are_valid_for_their_space():
    """The JSON bodies of the README's POST /v1/scores examples parse as requests whose every
    encoding the named space accepts (what `curl` sends to `make run`)."""
    import re

    from archscore.estimators.spaces import get_space
    from archscore.service.schemas import ScoreRequest

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    bodies = re.findall(r"curl -s -X POST '[^']*/v1/scores[^']*'[^\n]*-d '(\{.*?\})'", readme, flags=re.S)
    spaces = set()
    for text in bodies:
        request = ScoreRequest.model_validate_json(text)
        space = get_space(request.space)
        assert all(space.parse(a) is not None for a in request.archs)
        spaces.add(space.name)
    assert {"nb201", "nb101", "nb301"} <= spaces


def test_metrics_are_text_and_estimator_names_an_enum(schema):
    from archscore.estimators.catalog import ESTIMATORS

    content = schema["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(content) == ["text/plain"]
    request = _resolve(schema, schema["paths"]["/v1/scores"]["post"]["requestBody"]["content"]["application/json"]["schema"])
    assert request["properties"]["estimators"]["items"]["enum"] == list(ESTIMATORS)
