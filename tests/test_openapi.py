"""The committed openapi.json is the app's current schema, and the schema documents what clients need."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "openapi.json"
REGENERATE = "run `python scripts/export_openapi.py` and commit openapi.json"


def _exporter():
    return load_script("export_openapi")


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
        pytest.fail(
            f"openapi.json differs from the app's schema (changed: {', '.join(changed) or 'metadata'}): {REGENERATE}"
        )


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


def test_the_python_client_covers_every_route_of_the_document(schema):
    """Each route of the API (/metrics too) is a method of archscore_client, and the client calls nothing the
    document lacks."""
    import inspect
    import re

    from archscore_client.routes import Routes

    class Recorder(Routes):
        def _call(self, call):
            return call

    recorder, sent = Recorder(), set()
    for name, method in inspect.getmembers(Routes, inspect.isfunction):
        if name.startswith("_"):
            continue
        required = [
            p
            for p in inspect.signature(method).parameters.values()
            if p.name != "self" and p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD
        ]
        call = method(recorder, *["x" if p.name not in ("archs", "estimators") else ["x"] for p in required])
        sent.add((call.method.lower(), call.path))
    documented = {(m, path) for path, methods in schema["paths"].items() for m in methods}

    def matches(concrete, template):
        return concrete[0] == template[0] and re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template[1]), concrete[1])

    assert all(any(matches(c, t) for t in documented) for c in sent), sent
    assert all(any(matches(c, t) for c in sent) for t in documented), [
        t for t in documented if not any(matches(c, t) for c in sent)
    ]


def test_score_examples_cover_every_space_and_parse(schema):
    """Each space has a POST /v1/scores example whose encodings the space accepts."""
    from archscore.estimators.spaces import get_space, list_spaces

    request = _resolve(
        schema, schema["paths"]["/v1/scores"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    )
    by_space = {e["space"]: e for e in request["examples"]}
    assert set(by_space) == set(list_spaces())
    for name, example in by_space.items():
        space = get_space(name)
        assert [space.parse(a) for a in example["archs"]]
        # spaces without built-in ground truth (NDS: users upload it) show a request without one
        assert example.get("truth") in (space.ground_truth_columns or (None,))


def test_documented_score_requests_are_valid_for_their_space():
    """The JSON bodies of the POST /v1/scores examples of the README and the docs parse as requests whose
    every encoding the named space accepts (what `curl` sends to `make run`)."""
    import re

    from archscore.estimators.spaces import get_space
    from archscore.service.schemas import ScoreRequest

    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    text = "\n".join(page.read_text(encoding="utf-8") for page in pages)
    # curl ... -X POST '.../v1/scores...' [continued lines] -d '{...}'
    bodies = re.findall(
        r"curl [^\n]*-X POST '[^']*/v1/scores[^']*'[^\n]*?(?:\\\n[^\n]*?)*?-d '(\{.*?\})'", text, flags=re.S
    )
    spaces = set()
    for text in bodies:
        request = ScoreRequest.model_validate_json(text)
        space = get_space(request.space)
        assert all(space.parse(a) is not None for a in request.archs)
        spaces.add(space.name)
    assert {"nb201", "nb101", "nb301", "nds_resnet"} <= spaces


def test_metrics_are_text_and_estimator_names_an_enum(schema):
    from archscore.estimators.catalog import BUILT_IN

    content = schema["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(content) == ["text/plain"]
    request = _resolve(
        schema, schema["paths"]["/v1/scores"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    )
    catalog, predictor = request["properties"]["estimators"]["items"]["anyOf"]
    assert catalog["enum"] == list(BUILT_IN)  # not this machine's plugins
    assert predictor["pattern"].startswith("^predictor:")  # or a fitted predictor
