"""The dashboard's parts besides the JSON API: its static page (service/static: the page, its script and
the vendored Chart.js; no build step, no outside resources) and the studies run by `archscore study` on
this host. Its responses forbid framing, sniffing and any other origin."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from archscore.estimators.analysis import records

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
VENDORED = {"chart.umd.min.js"}  # the only files served from static/vendor: no path comes from the request
CLI_STUDIES = 20


def static_text(name: str) -> str:
    return (resources.files("archscore.service") / "static" / name).read_text(encoding="utf-8")


def cli_study_runs(data_dir: str) -> list[dict]:
    """The newest studies recorded by the command line in the data folder (archscore.estimators.analysis
    .records), with links to their figures."""
    root = records.records_dir(data_dir)
    runs = []
    for record_id in records.record_ids(root)[:CLI_STUDIES]:
        body = records.read_record(record_id, root)
        if body is None:
            continue
        inputs = body.get("inputs") or {}
        runs.append(
            {
                "id": record_id,
                "study": body.get("study"),
                "space": inputs.get("space"),
                "truth": inputs.get("truth"),
                "n": inputs.get("n"),
                "created": (body.get("record") or {}).get("created"),
                "figures": {
                    name: f"/v1/dashboard/cli-studies/{record_id}/figures/{name}.png"
                    for name in body.get("figures") or []
                    if records.FIGURE_NAME.match(name)
                },
            }
        )
    return runs


def cli_study_figure(data_dir: str, record_id: str, name: str) -> Path | None:
    return records.figure_path(record_id, name, records.records_dir(data_dir))
