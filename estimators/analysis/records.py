"""Copies of the studies run by `archscore study`, kept in the data folder so the dashboard can list
them beside the service's studies: ARCHSCORE_DATA_DIR/studies/<id>/ holds result.json and the figures
as PNG. The folder is read from the environment here (the library does not import the service; the
service's setting of the same name points at the same folder). Only the newest KEEP records are kept.

A record's id is made here and checked wherever one is read (RECORD_ID): a timestamp, the study's name
and a random suffix, so no id names a path outside the folder."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from pathlib import Path

KEEP = 50
RECORD_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[a-z0-9_]{1,40}-[0-9a-f]{8}$")
FIGURE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
MAX_RESULT_BYTES = 20_000_000  # a larger result.json is not listed


def records_dir(data_dir: str | Path | None = None) -> Path:
    """ARCHSCORE_DATA_DIR/studies (default data folder: .archscore, as the service's)."""
    base = data_dir if data_dir is not None else os.environ.get("ARCHSCORE_DATA_DIR") or ".archscore"
    return Path(base) / "studies"


def record_run(study, result: dict, figures_dir: Path, fmt: str, root: Path | None = None) -> str:
    """Keep a copy of a finished run (``result`` as run_study returned it, its figures written in
    ``figures_dir`` as ``fmt``): result.json and one PNG per figure (copied, or drawn again when the
    run wrote PDF or SVG). Returns the record's id."""
    from archscore.estimators.analysis.run import write_figures

    root = root or records_dir()
    root.mkdir(parents=True, exist_ok=True)
    record_id = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{study.name}-{secrets.token_hex(4)}"
    partial = root / f".partial-{record_id}"
    partial.mkdir()
    try:
        if fmt == "png":
            for name in result["figures"]:
                shutil.copyfile(figures_dir / f"{name}.png", partial / f"{name}.png")
        else:
            write_figures(study, result["result"], partial, "png")
        body = {**result, "record": {"id": record_id, "created": time.time(), "out": str(figures_dir.resolve())}}
        (partial / "result.json").write_text(json.dumps(body, indent=1, allow_nan=False))
        partial.rename(root / record_id)  # whole or not at all
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    prune(root)
    return record_id


def record_ids(root: Path | None = None) -> list[str]:
    """The ids of the records, newest first (only folders whose name is a record id)."""
    root = root or records_dir()
    try:
        names = [p.name for p in root.iterdir() if RECORD_ID.match(p.name) and p.is_dir() and not p.is_symlink()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(names, reverse=True)


def prune(root: Path, keep: int = KEEP) -> None:
    for old in record_ids(root)[keep:]:
        shutil.rmtree(root / old, ignore_errors=True)


def read_record(record_id: str, root: Path | None = None) -> dict | None:
    """A record's result.json, or None (no such record, an id that is not one, unreadable, too large)."""
    if not RECORD_ID.match(record_id):
        return None
    path = (root or records_dir()) / record_id / "result.json"
    try:
        if path.is_symlink() or path.stat().st_size > MAX_RESULT_BYTES:
            return None
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def figure_path(record_id: str, name: str, root: Path | None = None) -> Path | None:
    """The PNG of a record's figure, or None: both names are checked against their patterns and the
    figure must be one the record lists, a plain file inside the record's folder."""
    if not (RECORD_ID.match(record_id) and FIGURE_NAME.match(name)):
        return None
    record = read_record(record_id, root)
    if record is None or name not in (record.get("figures") or []):
        return None
    folder = (root or records_dir()) / record_id
    path = folder / f"{name}.png"
    if path.is_symlink() or not path.is_file() or path.resolve().parent != folder.resolve():
        return None
    return path
