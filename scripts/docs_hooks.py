"""MkDocs hooks: the reference pages are generated from the code at build time, so they cannot drift,
and the figures kept under benchmarks/results/ are published beside the pages that show them.

A page holds ``<!-- reference: NAME -->`` where a generated section goes: ``cli`` (every command and
option of the typer app), ``http`` (every route of openapi.json), ``settings`` (every ARCHSCORE_ setting
of the Settings class), ``python`` (the library's public face), ``estimators`` (the catalog)."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"<!-- reference: (\w+) -->")
FIGURES = ("*.png", "*.svg", "*.pdf")


def on_files(files, config):
    """benchmarks/results/** figures as site files at the same path (pages link ../../benchmarks/...)."""
    for pattern in FIGURES:
        for path in sorted((ROOT / "benchmarks" / "results").rglob(pattern)):
            files.append(File(path.relative_to(ROOT).as_posix(), str(ROOT), config["site_dir"],
                              config["use_directory_urls"]))
    return files


def on_page_markdown(markdown, page, config, files):
    return MARKER.sub(lambda m: GENERATORS[m.group(1)](), markdown)


def _cell(text) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def cli_reference() -> str:
    import typer

    from archscore.service.cli import app

    out = []

    def walk(command, path: str) -> None:  # typer's click command objects (typer vendors click)
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, f"{path} {name}")
            return
        out.append(f"### `{path}`\n\n{_cell(command.help or '')}\n")
        def kind(param) -> str:
            annotation = param.type_descriptor.annotation
            return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")

        rows = []
        for param in command.params:
            if param.name in ("install_completion", "show_completion", "help"):
                continue
            if param.param_type_name == "argument":
                rows.append(f"| `{param.name.upper()}` (argument) | {_cell(kind(param))} | | "
                            f"{_cell(getattr(param, 'help', '') or '')} |")
                continue
            default = "" if param.default is None or getattr(param, "is_flag", False) and not param.default else param.default
            rows.append(f"| `{' / '.join(param.opts + param.secondary_opts)}` | {_cell(kind(param))} | "
                        f"{_cell(default)} | {_cell(getattr(param, 'help', '') or '')} |")
        if rows:
            out.append("| option | type | default | meaning |\n|---|---|---|---|\n" + "\n".join(rows) + "\n")

    walk(typer.main.get_command(app), "archscore")
    return "\n".join(out)


def http_reference() -> str:
    document = json.loads((ROOT / "openapi.json").read_text())
    out = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            out.append(f"### `{method.upper()} {path}`\n\n**{_cell(operation.get('summary', ''))}.** "
                       f"{_cell(operation.get('description', ''))}\n")
            params = operation.get("parameters", [])
            if params:
                out.append("| parameter | in | required | meaning |\n|---|---|---|---|\n" + "\n".join(
                    f"| `{p['name']}` | {p['in']} | {'yes' if p.get('required') else 'no'} | "
                    f"{_cell(p.get('description', p.get('schema', {}).get('description', '')))} |" for p in params) + "\n")
            body = operation.get("requestBody", {}).get("content", {})
            if body:
                kinds = ", ".join(f"`{k}`" for k in body)
                refs = [v.get("schema", {}).get("$ref", "") for v in body.values()]
                model = next((r.rsplit("/", 1)[-1] for r in refs if r), None)
                out.append(f"Body: {kinds}" + (f" (`{model}`)" if model else "") + ".\n")
            codes = ", ".join(f"`{code}` {_cell(r.get('description', ''))}" for code, r in operation["responses"].items())
            out.append(f"Responses: {codes}.\n")
    return "\n".join(out)


def settings_reference() -> str:
    from archscore.service.settings import Settings

    rows = []
    for name, field in Settings.model_fields.items():
        kind = getattr(field.annotation, "__name__", None) or str(field.annotation).replace("typing.", "")
        default = field.get_default(call_default_factory=True)
        rows.append(f"| `ARCHSCORE_{name.upper()}` | {_cell(kind)} | `{_cell(json.dumps(default))}` | "
                    f"{_cell(field.description or '')} |")
    return "| setting | type | default | meaning |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"


def python_reference() -> str:
    import archscore

    out = []
    for name in ("score", "evaluate", "get_space", "list_spaces", "list_estimators"):
        fn = getattr(archscore, name)
        out.append(f"### `archscore.{name}{inspect.signature(fn)}`\n\n{inspect.getdoc(fn) or ''}\n")
    for name in ("ArchScore", "Protocol", "SearchSpace", "EstimatorInfo", "EncodingError", "DeviceError"):
        cls = getattr(archscore, name)
        out.append(f"### `archscore.{name}`\n\n{inspect.getdoc(cls) or ''}\n")
        fields = getattr(cls, "model_fields", None)
        if fields:
            out.append("| field | default | meaning |\n|---|---|---|\n" + "\n".join(
                f"| `{f}` | `{_cell(info.get_default(call_default_factory=True))}` | {_cell(info.description or '')} |"
                for f, info in fields.items()) + "\n")
    return "\n".join(out)


def estimators_reference() -> str:
    from archscore.estimators.catalog import ESTIMATORS

    rows = [f"| `{e.name}` | {e.kind.replace('_', '-')} | {'yes' if e.needs_data else 'no'} | {e.version} | "
            f"{_cell(e.unit or '')} | {_cell(e.description)} |" for e in ESTIMATORS.values()]
    return ("| name | kind | needs data | version | unit | definition |\n|---|---|---|---|---|---|\n"
            + "\n".join(rows) + "\n")


GENERATORS = {"cli": cli_reference, "http": http_reference, "settings": settings_reference,
              "python": python_reference, "estimators": estimators_reference}
