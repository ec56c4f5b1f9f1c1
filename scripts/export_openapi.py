"""Write the API's OpenAPI schema to openapi.json (committed; tests/test_openapi.py checks it is current).

python scripts/export_openapi.py            # regenerate openapi.json
python scripts/export_openapi.py --check    # exit 1 when openapi.json is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "openapi.json"


def render() -> str:
    """The schema of ``archscore.service.app.app`` as stable text: sorted keys, indent 2, trailing newline."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from archscore.service.app import app

    return json.dumps(app.openapi(), sort_keys=True, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT, help="default: openapi.json at the repository root")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when the file differs")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
        if current != text:
            print(f"{args.output} is out of date: run `python scripts/export_openapi.py`", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
