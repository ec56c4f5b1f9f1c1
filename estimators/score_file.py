"""A file of score records reused as a cache: the JSON lines ``archscore score --out FILE`` writes.

The library and the command line read it before scoring (a line counts for its space and protocol hash,
per canonical key, as the service's cache counts) and append what they had to score, so a predictor
fitted or evaluated again scores nothing twice. Lines of other spaces or protocols are kept and ignored.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path


class ScoreFile:
    def __init__(self, path: str | os.PathLike[str], space: str, protocol_hash: str):
        self.path, self.space, self.protocol_hash = Path(path), space, protocol_hash
        self._scores: dict[str, dict[str, float | None]] = {}
        if self.path.exists():
            for number, line in enumerate(self.path.read_text().splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{self.path}: line {number} is not JSON ({exc.msg})") from None
                if record.get("space") == space and record.get("protocol_hash") == protocol_hash:
                    self._scores.setdefault(record["canonical_key"], {}).update(record.get("scores") or {})

    def get(self, key: str, names: Sequence[str]) -> dict[str, float | None]:
        """The scores among ``names`` held for the class ``key`` (a record's ``canonical_key``): those the
        file lacks are left out, to be scored."""
        held = self._scores.get(key, {})
        return {n: held[n] for n in names if n in held}

    def add(self, records: Sequence[Mapping]) -> None:
        """Append score records (``archscore.score``'s, as dicts) and hold their scores."""
        if not records:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            for record in records:
                f.write(json.dumps({"space": self.space, "protocol_hash": self.protocol_hash, **record}) + "\n")
                self._scores.setdefault(record["canonical_key"], {}).update(record["scores"])
