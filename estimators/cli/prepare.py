"""What `score`, `evaluate` and `study` share: the space, the estimators, the protocol, the architectures,
the output file, and scoring them with a progress bar."""

from __future__ import annotations

import sys
from pathlib import Path

from archscore.estimators.cli.console import UsageError, progress
from archscore.estimators.cli.options import OptionValues
from archscore.estimators.protocol import OneShotSettings, Protocol
from archscore.estimators.spaces import DEFAULT_SPACE, EncodingError, get_space
from archscore.estimators.spaces.base import SUPERNET, Arch, SearchSpace, decode_text_encoding
from archscore.estimators.zero_shot.manifest import resolve_estimators


def prepare(
    space: str,
    estimators: str,
    output: Path | None,
    jobs: int,
    protocol: OptionValues,
    weights: str | None = None,
    oneshot: OptionValues | None = None,
    supernet: str | None = None,
) -> tuple[SearchSpace, list[str], Protocol]:
    """Validate what `score`, `evaluate` and `study` share: space, estimators, protocol, output, jobs. With
    ``oneshot`` (the one-shot evaluation's options), one-shot estimators are taken too, from the
    checkpoint ``supernet`` (default: the newest complete one)."""
    sp = space_named(space)
    names = estimator_names(estimators, oneshot is not None)
    settings = oneshot_settings(sp, names, oneshot, supernet)
    built = protocol.build(
        Protocol, {"weights": "--weights", "oneshot": "--supernet"}, weights=_weights(sp, weights), oneshot=settings
    )
    _check_output(output)
    if jobs < 0:
        raise UsageError("--jobs must be 0 (automatic) or more")
    return sp, names, built


def oneshot_settings(
    space: SearchSpace, names: list[str], oneshot: OptionValues | None, supernet: str | None
) -> OneShotSettings | None:
    """``protocol.oneshot`` for ``names``: None without a one-shot estimator among them, else the one-shot
    evaluation's options (``oneshot``) on the checkpoint ``supernet`` names (default: the newest complete one)."""
    from archscore.estimators.catalog import is_one_shot
    from archscore.estimators.protocol import OneShotEvaluation

    if not any(is_one_shot(n) for n in names):
        return None
    if oneshot is None:  # estimator_names takes one-shot estimators only with oneshot
        raise UsageError("one-shot estimators need the one-shot evaluation's options")
    evaluation = oneshot.build(OneShotEvaluation)
    return OneShotSettings(supernet=_checkpoint_sha256(space, supernet, "--supernet"), **evaluation.model_dump())


def space_named(name: str) -> SearchSpace:
    try:
        return get_space(name)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None


def estimator_names(text: str, one_shot: bool = False) -> list[str]:
    """Zero-shot and population estimator names (and one-shot ones where the command takes them): the
    zero-shot ones in the order given, then the population ones, then the one-shot ones."""
    from archscore.estimators.catalog import is_one_shot, is_population

    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError("--estimators: give estimator names separated by commas, or 'all'")
    zero_shot = [n for n in names if not is_population(n) and not (one_shot and is_one_shot(n))]
    try:
        resolved = resolve_estimators(zero_shot) if zero_shot else []
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    _load_plugins(resolved)
    populations = [n for n in dict.fromkeys(names) if is_population(n)]
    return resolved + populations + [n for n in dict.fromkeys(names) if one_shot and is_one_shot(n)]


def _load_plugins(names: list[str]) -> None:
    """Import the plugins among ``names`` here, so that a broken one is a usage error before any scoring."""
    from archscore.estimators.catalog import ZERO_SHOT

    if any(ZERO_SHOT[n].module for n in names):
        from archscore.estimators.plugins import PluginError
        from archscore.estimators.zero_shot.plugin_loader import load_plugins

        try:
            load_plugins(names)
        except PluginError as exc:
            raise UsageError(str(exc)) from None


def _weights(space: SearchSpace, ref: str | None) -> str | None:
    """The sha256 of the checkpoint --weights names (in the service's supernet folder)."""
    if ref is not None and not space.supernet_transfers_weights:
        raise UsageError(
            f"--weights: search space {space.name} has no supernet whose weights its standalone networks can take"
        )
    return None if ref is None else _checkpoint_sha256(space, ref, "--weights")


def _checkpoint_sha256(space: SearchSpace, ref: str | None, option: str) -> str:
    """The sha256 of the checkpoint ``ref`` names in the service's supernet folder (None: the newest
    complete one), a supernet of ``space``."""
    from archscore.estimators.one_shot.registry import CheckpointError, default_supernet_dir, resolve

    if not space.has(SUPERNET):
        raise UsageError(f"{option}: search space {space.name} has no supernet")
    try:
        checkpoint = resolve(default_supernet_dir(), ref, space.name)
    except CheckpointError as exc:
        raise UsageError(f"{option}: {exc}") from None
    if (checkpoint["space"] or DEFAULT_SPACE) != space.name:
        raise UsageError(
            f"{option}: {checkpoint['name']!r} is a supernet of {checkpoint['space']}, not of {space.name}"
        )
    return checkpoint["sha256"]


def supernet_at_hand(space: SearchSpace) -> bool:
    """Whether ``--supernet`` may be left out for ``space`` (registry.unnamed_supernet)."""
    from archscore.estimators.one_shot.registry import default_supernet_dir, unnamed_supernet

    return unnamed_supernet(default_supernet_dir(), space.name) is not None


def _check_output(path: Path | None) -> None:
    """Fail before any scoring when the output cannot be written."""
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"{path}: is a folder, not a file")
    if not path.parent.is_dir():
        raise UsageError(f"{path}: folder {path.parent} does not exist")


def _read_archs(space: SearchSpace, source: Path | None) -> list[Arch]:
    """One encoding per line (blank lines and lines starting with # skipped), from a file or stdin."""
    name = str(source) if source and str(source) != "-" else "stdin"
    if source and str(source) != "-":
        if not source.exists():
            raise UsageError(f"{source}: no such file")
        if not source.is_file():
            raise UsageError(f"{source}: not a file")
        try:
            lines = source.read_text().splitlines()
        except (UnicodeDecodeError, OSError) as exc:
            raise UsageError(f"{source}: cannot be read as text ({exc.__class__.__name__})") from None
    else:
        lines = sys.stdin.read().splitlines()
    archs = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            archs.append(space.parse_local(decode_text_encoding(line)))
        except EncodingError as exc:
            raise UsageError(f"{name} line {number}: {exc}") from None
    if not archs:
        raise UsageError(f"{name}: no architectures given")
    return archs


def select_archs(
    space: SearchSpace,
    source: Path | None,
    sample: int | None,
    seed: int,
    deiso: bool,
    enumerate_all: bool,
    from_published: bool,
) -> list[Arch]:
    chosen = sum(x for x in (source is not None, sample is not None, enumerate_all))
    if chosen > 1:
        raise UsageError("give only one of --file, --sample and --enumerate")
    if enumerate_all:
        return list(space.enumerate())
    if sample is not None:
        if sample < 1:
            raise UsageError("--sample must be at least 1")
        if from_published:
            from archscore.estimators.evaluation import published_cells, published_sample

            pool = published_cells(space.name)
            if not pool:
                raise UsageError(f"no published scores for space {space.name}")
            if sample > len(pool):
                raise UsageError(f"--sample {sample} exceeds the {len(pool)} cells with published scores")
            return published_sample(space.name, sample, seed)
        try:
            return space.sample(sample, seed, deisomorphic=deiso)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return _read_archs(space, source)


def run_scoring(archs, space, names, protocol, jobs, device):
    from archscore.estimators.scoring import default_jobs, score_many

    jobs = jobs or default_jobs(len(archs))
    with progress() as bar:
        task = bar.add_task("scoring", total=len(archs))
        return score_many(
            archs,
            space.name,
            names,
            protocol,
            jobs,
            lambda done, total: bar.update(task, completed=done),
            supernet_dir=supernet_dir(protocol),
            device=device,
        )


def supernet_dir(protocol: Protocol) -> Path | None:
    from archscore.estimators.one_shot.registry import default_supernet_dir

    return default_supernet_dir() if protocol.weights or protocol.oneshot else None


def check_data(protocol: Protocol) -> None:
    from archscore.estimators.datasets import DatasetError, load_dataset

    try:
        images = load_dataset(protocol.dataset, "train", protocol.data_root)
    except DatasetError as exc:
        raise UsageError(str(exc)) from None
    needed = protocol.batch_size * protocol.num_batches
    if needed > len(images):
        raise UsageError(f"--batch-size x --num-batches = {needed} exceeds the {len(images)} training images available")
