"""MkDocs hooks: the reference pages are generated from the code at build time, so they cannot drift,
and the figures kept under benchmarks/results/ are published beside the pages that show them.

A page holds ``<!-- reference: NAME -->`` where a generated section goes: ``cli`` (every command and
option of the typer app), ``http`` (every route of openapi.json), ``settings`` (every ARCHSCORE_ setting
of the Settings class), ``python`` (the library's public face), ``estimators`` (the catalog), ``spaces``
(every registered search space as ``describe()`` gives it), ``figures`` (every study figure under
benchmarks/results/studies that the page does not already show), ``redis_keys`` (every Redis key and its
lifetime, from archscore/contract/store.py), ``tasks`` (the API/worker task contract). Nothing here
reaches the network."""

from __future__ import annotations

import inspect
import json
import re
import sys
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"<!-- reference: (\w+) -->")
FIGURES = ("*.png", "*.svg", "*.pdf")


def on_files(files, config):
    """benchmarks/results/** figures as site files at the same path (pages link ../../benchmarks/...)."""
    for pattern in FIGURES:
        for path in sorted((ROOT / "benchmarks" / "results").rglob(pattern)):
            files.append(
                File(path.relative_to(ROOT).as_posix(), str(ROOT), config["site_dir"], config["use_directory_urls"])
            )
    return files


def on_page_markdown(markdown, page, config, files):
    def generate(match: re.Match) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise ValueError(f"{page.file.src_uri}: unknown reference marker {name!r}; known: {', '.join(GENERATORS)}")
        generator = GENERATORS[name]
        return generator(markdown) if name in TAKES_PAGE else generator()

    return MARKER.sub(generate, markdown)


def _cell(text) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def cli_reference() -> str:
    import typer

    from archscore.service.cli import app

    out = []

    def walk(command, path: str) -> None:  # typer's click command objects (typer vendors click)
        if hasattr(command, "commands"):
            if path != "archscore" and command.help:
                out.append(f"### `{path}` (group)\n\n{_cell(command.help)}\n")
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
                rows.append(
                    f"| `{param.name.upper()}` (argument) | {_cell(kind(param))} | | "
                    f"{_cell(getattr(param, 'help', '') or '')} |"
                )
                continue
            if getattr(param, "is_flag", False):
                default = "on" if param.default else "off"
            else:
                default = "" if param.default is None else param.default
            rows.append(
                f"| `{' / '.join(param.opts + param.secondary_opts)}` | {_cell(kind(param))} | "
                f"{_cell(default)} | {_cell(getattr(param, 'help', '') or '')} |"
            )
        if rows:
            out.append("| option | type | default | meaning |\n|---|---|---|---|\n" + "\n".join(rows) + "\n")

    walk(typer.main.get_command(app), "archscore")
    return "\n".join(out)


def _schema_type(schema: dict) -> str:
    """A short type for an OpenAPI schema: int, str, list[...], a model name, a | b."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " \\| ".join(_schema_type(s) for s in schema[key])
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list[{_schema_type(schema.get('items', {}))}]"
    return {
        "integer": "int",
        "string": "str",
        "number": "float",
        "boolean": "bool",
        "object": "object",
        "null": "null",
    }.get(kind, str(kind))


def _bounds(schema: dict) -> str:
    names = {
        "minimum": "≥",
        "maximum": "≤",
        "exclusiveMinimum": ">",
        "exclusiveMaximum": "<",
        "minLength": "length ≥",
        "maxLength": "length ≤",
        "minItems": "items ≥",
        "maxItems": "items ≤",
    }

    def number(v):
        return int(v) if isinstance(v, float) and v.is_integer() else v

    parts = [f"{sign} {number(schema[k])}" for k, sign in names.items() if k in schema]
    if "pattern" in schema:
        parts.append(f"pattern `{schema['pattern']}`")
    return ", ".join(parts)


def _default(schema: dict) -> str:
    return f"`{_cell(json.dumps(schema['default']))}`" if "default" in schema else ""


def http_reference() -> str:
    document = json.loads((ROOT / "openapi.json").read_text())
    out = ["## Routes\n"]
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            out.append(
                f"### `{method.upper()} {path}`\n\n**{_cell(operation.get('summary', ''))}.** "
                f"{_cell(operation.get('description', ''))}\n"
            )
            params = operation.get("parameters", [])
            if params:
                rows = []
                for p in params:
                    schema = p.get("schema", {})
                    meaning = p.get("description", schema.get("description", ""))
                    bounds = _bounds(schema)
                    rows.append(
                        f"| `{p['name']}` | {p['in']} | {_schema_type(schema)} | {_default(schema)} | "
                        f"{'yes' if p.get('required') else 'no'} | "
                        f"{_cell('; '.join(x for x in (meaning, bounds) if x))} |"
                    )
                out.append(
                    "| parameter | in | type | default | required | meaning |\n|---|---|---|---|---|---|\n"
                    + "\n".join(rows)
                    + "\n"
                )
            body = operation.get("requestBody", {}).get("content", {})
            if body:
                kinds = ", ".join(f"`{k}`" for k in body)
                models = [_schema_type(v["schema"]) for v in body.values() if "schema" in v]
                out.append(f"Body: {kinds}" + (f", {models[0]}" if models else "") + ".\n")
            codes = []
            for code, response in operation["responses"].items():
                models = [
                    _schema_type(v["schema"])
                    for v in response.get("content", {}).values()
                    if "schema" in v and ("$ref" in v["schema"] or v["schema"].get("type") == "array")
                ]
                codes.append(
                    f"- `{code}`: {_cell(response.get('description', ''))}"
                    + (f" ({models[0]})" if models and code.startswith("2") else "")
                )
            out.append("Responses:\n\n" + "\n".join(codes) + "\n")
    out.append("## Schemas\n")
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        out.append(f"### {name}\n\n{_cell(schema.get('description', ''))}\n")
        required = set(schema.get("required", []))
        rows = [
            f"| `{field}` | {_schema_type(prop)} | {_default(prop)} | {'yes' if field in required else 'no'} | "
            f"{_cell('; '.join(x for x in (prop.get('description', ''), _bounds(prop)) if x))} |"
            for field, prop in schema.get("properties", {}).items()
        ]
        if rows:
            out.append(
                "| field | type | default | required | meaning |\n|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
            )
    return "\n".join(out)


def settings_reference() -> str:
    from archscore.contract.settings import Settings

    rows = []
    for name, field in Settings.model_fields.items():
        kind = getattr(field.annotation, "__name__", None) or str(field.annotation).replace("typing.", "")
        default = field.get_default(call_default_factory=True)
        rows.append(
            f"| `ARCHSCORE_{name.upper()}` | {_cell(kind)} | `{_cell(json.dumps(default))}` | "
            f"{_cell(field.description or '')} |"
        )
    return "| setting | type | default | meaning |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"


def _type(annotation) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    return text or str(annotation).replace("typing.", "").replace("archscore.estimators.protocol.", "")


def _members(cls) -> list[str]:
    """Public methods and properties defined on the class itself, with signatures and docstrings."""
    out = []
    for name, member in vars(cls).items():
        if name.startswith("_") or name.startswith("model_"):
            continue
        if isinstance(member, property):
            out.append(f"- `{name}` (property): {_cell(inspect.getdoc(member) or '')}")
            continue
        function = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
        if not inspect.isfunction(function):
            continue
        signature = str(inspect.signature(function)).replace("(self, ", "(").replace("(self)", "()")
        signature = signature.replace("(cls, ", "(").replace("(cls)", "()")
        out.append(f"- `{name}{signature}`: {_cell(inspect.getdoc(function) or '')}")
    return out


def python_reference() -> str:
    import dataclasses

    import archscore

    out = []
    for name in ("score", "evaluate", "get_space", "list_spaces", "list_estimators"):
        fn = getattr(archscore, name)
        out.append(f"### `archscore.{name}{inspect.signature(fn)}`\n\n{inspect.getdoc(fn) or ''}\n")
    for name in ("ArchScore", "Protocol", "SearchSpace", "EstimatorInfo", "EncodingError", "DeviceError"):
        cls = getattr(archscore, name)
        doc = vars(cls).get("__doc__") or ""
        if not doc or doc.startswith(f"{cls.__name__}("):  # none of its own, or a dataclass's generated one
            doc = inspect.getdoc(sys.modules[cls.__module__]) or ""
        out.append(f"### `archscore.{name}`\n\n*Defined in `{cls.__module__}`.*\n\n{inspect.cleandoc(doc)}\n")
        fields = getattr(cls, "model_fields", None)
        if fields:  # pydantic: type, default, bounds, description
            rows = []
            for f, info in fields.items():
                bounds = ", ".join(
                    f"{k} {getattr(m, k)}"
                    for m in info.metadata
                    for k in ("ge", "le", "gt", "lt", "pattern")
                    if getattr(m, k, None) is not None
                )
                rows.append(
                    f"| `{f}` | `{_cell(_type(info.annotation))}` | "
                    f"`{_cell(info.get_default(call_default_factory=True))}` | {_cell(bounds)} | "
                    f"{_cell(info.description or '')} |"
                )
            out.append(
                "| field | type | default | bounds | meaning |\n|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
            )
        elif dataclasses.is_dataclass(cls):
            rows = []
            for f in dataclasses.fields(cls):
                default = (
                    ""
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                    else f"`{f.default_factory()!r}`"
                    if f.default is dataclasses.MISSING
                    else f"`{f.default!r}`"
                )
                rows.append(f"| `{f.name}` | `{_cell(_type(f.type))}` | {_cell(default)} |")
            out.append("| field | type | default |\n|---|---|---|\n" + "\n".join(rows) + "\n")
        members = _members(cls)
        if members:
            out.append("\n".join(members) + "\n")
    return "\n".join(out)


def estimators_reference() -> str:
    from archscore.estimators.catalog import BUILT_IN  # not the plugins this machine happens to have

    rows = [
        f"| `{e.name}` | {e.kind.replace('_', '-')} | {e.direction} | {'yes' if e.needs_data else 'no'} | "
        f"{e.version} | {_cell(e.unit or '–')} | {_cell(e.description)} |"
        for e in BUILT_IN.values()
    ]
    return (
        "| name | kind | better | needs data | version | unit | definition |\n|---|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )


def spaces_reference() -> str:
    from archscore.estimators.spaces import base, get_space, list_spaces

    out = []
    for name in list_spaces():
        info = get_space(name).describe()
        aliases = sorted(a for a, target in base._ALIASES.items() if target == name and a != name)
        size = "not enumerated" if info["size"] is None else f"{info['size']:,} architectures"
        out.append(
            f"### `{name}`\n\n{_cell(info['description'])}. Size: {size}."
            + (f" Also named: {', '.join(f'`{a}`' for a in aliases)}." if aliases else "")
            + "\n"
        )
        out.append(
            "| encoding | form |\n|---|---|\n"
            + "\n".join(f"| `{k}` | {_cell(v)} |" for k, v in info["encodings"].items())
            + "\n"
        )
        columns = ", ".join(f"`{c}`" for c in info["ground_truth_columns"]) or "none (upload a table)"
        out.append(
            f"Capabilities: {', '.join(f'`{c}`' for c in info['capabilities'])}. Built-in ground truth: {columns}.\n"
        )
        for key, values in info.get("value_sets", {}).items():
            out.append(f"- `{key}` per stage: {', '.join(str(v) for v in values)}")
        if info.get("value_sets"):
            out.append("")
        if info["supernet_network"]:
            out.append(
                f"Supernet: {_cell(info['supernet_rule'] or '')}. Reduced sharing partitions by "
                f"{_cell(info['partition_rule'] or '')}.\n"
            )
            out.append(
                "| supernet setting | default | range | meaning |\n|---|---|---|---|\n"
                + "\n".join(
                    f"| `{k}` | {f['default']} | {f['low']}..{f['high']} | {_cell(f['help'])} |"
                    for k, f in info["supernet_network"].items()
                )
                + "\n"
            )
    return "\n".join(out)


def figures_reference(markdown: str) -> str:
    """Every study figure the page does not show yet, grouped by the folder (the study) that holds it."""
    root = ROOT / "benchmarks" / "results" / "studies"
    out, folder = [], None
    for path in sorted(root.rglob("*.png")):
        link = "../" + path.relative_to(ROOT).as_posix()
        if link in markdown:
            continue
        study = path.parent.relative_to(root).as_posix()
        if study != folder:
            out.append(f"\n**`{study}`**\n")
            folder = study
        out.append(f"![{study}: {path.stem.replace('_', ' ')}]({link})\n")
    return "\n".join(out) if out else "Every figure is shown above.\n"


def redis_keys_reference() -> str:
    """Every Redis key and its lifetime, as archscore/contract/store.py declares them."""
    from archscore.contract import store

    text = inspect.getdoc(store) or ""
    keys = text[text.index("Keys") : text.index("Torch-free")].rstrip()
    return "```text\n" + keys + "\n```\n"


def tasks_reference() -> str:
    """Every Celery task the API sends and the workers run (archscore/contract/tasks.py)."""
    from archscore.contract.tasks import TASKS

    rows = []
    for task in TASKS:
        fields = ", ".join(f"`{name}`" for name in task.model_fields)
        rows.append(
            f"| `{task.task_name}` | `{task.queue}` | `{task.__name__}` | {fields} | "
            f"{_cell(inspect.getdoc(task) or '')} |"
        )
    return (
        "| task | queue | payload | keyword arguments | what it does |\n|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )


GENERATORS = {
    "cli": cli_reference,
    "http": http_reference,
    "settings": settings_reference,
    "python": python_reference,
    "estimators": estimators_reference,
    "spaces": spaces_reference,
    "figures": figures_reference,
    "redis_keys": redis_keys_reference,
    "tasks": tasks_reference,
}
TAKES_PAGE = {"figures"}
