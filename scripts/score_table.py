"""Score samples of a space with every zero-shot estimator (and params, flops) in parallel processes and
write one JSON line per architecture: the table behind the studies' rank-quality figures, computed where a
GPU is at hand.

    python scripts/score_table.py --space nb201 --sample 1000:0 --sample 1000:7 --device cuda \
        --processes 12 --deadline 300 --out scores.jsonl

Each ``--sample N:SEED`` is the sample ``archscore evaluate --sample N --seed SEED`` scores, and
``--sample published:N:SEED`` the one ``evaluate --from-published`` scores; the lines say which samples hold the
architecture. Samples are scored in the order given, a chunk at a time, and lines are
written as chunks finish, so a run stopped at ``--deadline`` seconds keeps every finished chunk. Population
estimators are left out: they are ranks within a population, computed from their members afterwards.

    python scripts/score_table.py --report scores.jsonl --space nb201 --truth cifar10_test [--sample 1000:0]

prints the ranking-quality table (Markdown) of every estimator in the file, and of every population estimator
whose members it holds, aggregated over the architectures reported (those of one ``--sample``, or all) that
hold them all. ``--also FILE`` (repeatable) adds to each line the scores that other tables hold for its
architecture, so runs of different estimators on the same architectures report together.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time

_FAILING: dict[str, str] = {}  # estimator -> the error it raised in this process: skipped from then on


def _score(archs, space, device, protocol, names) -> list[dict]:
    import archscore

    records = archscore.score(archs, space=space, estimators=names, protocol=protocol, device=device)
    return [
        {"arch": r.arch, "canonical_key": r.canonical_key, "scores": r.scores, "reasons": r.reasons} for r in records
    ]


def _score_chunk(job: tuple[list[str], str, str, dict, list[str]]) -> list[dict]:
    """The chunk's lines; an estimator that raises is scored apart, and from then on left out with its
    error as the reason, so one failing estimator never costs the others' values."""
    archs, space, device, protocol, names = job
    import torch

    torch.set_num_threads(1)
    working = [n for n in names if n not in _FAILING]
    try:
        lines = _score(archs, space, device, protocol, working)
    except Exception:
        lines = None
        for name in working:
            try:
                part = _score(archs, space, device, protocol, [name])
            except Exception as exc:
                _FAILING[name] = f"{type(exc).__name__}: {exc}"[:300]
                continue
            if lines is None:
                lines = part
            else:
                for line, extra in zip(lines, part):
                    line["scores"].update(extra["scores"])
                    line["reasons"].update(extra["reasons"])
        if lines is None:
            lines = [{"arch": a, "canonical_key": None, "scores": {}, "reasons": {}} for a in archs]
    for line in lines:
        for name, error in _FAILING.items():
            line["scores"][name] = None
            line["reasons"][name] = f"failed: {error}"
    return lines


def _samples(space_name: str, specs: list[str]) -> list[tuple[str, list[str]]]:
    """Architectures (as strings) in the order first met, each with the samples that hold it."""
    import archscore

    space = archscore.get_space(space_name)
    held: dict[str, list[str]] = {}
    for spec in specs:
        if spec.startswith("published:"):  # as evaluate --from-published --sample N --seed SEED draws them
            from archscore.estimators.evaluation import published_sample

            n, seed = (int(x) for x in spec.split(":")[1:])
            archs = published_sample(space_name, n, seed)
        else:
            n, seed = (int(x) for x in spec.split(":"))
            archs = space.sample(n, seed)
        for arch in archs:
            held.setdefault(space.to_string(arch), []).append(spec)
    return list(held.items())


def _cell(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def _records(
    path: str, sample: str | None, space: str | None = None, published: bool | None = None, also: list[str] = ()
) -> tuple[list[dict], list[str]]:
    """The lines of ``path`` (those of ``sample`` when given; with ``published`` True or False, those whose
    architecture ``space`` has, or has not, published scores for) with the scores ``also``'s tables hold for
    their architecture, each population estimator added to the lines that hold all its members (ranked
    among those lines), and every estimator's name."""
    from archscore.estimators.catalog import POPULATION
    from archscore.estimators.population import population_scores

    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    for other in also:
        with open(other) as f:
            held = {r["arch"]: r["scores"] for r in map(json.loads, filter(str.strip, f))}
        for record in records:
            extra = held.get(record["arch"], {})
            record["scores"] = {**record["scores"], **{k: v for k, v in extra.items() if k not in record["scores"]}}
    if sample is not None:
        records = [r for r in records if sample in r["samples"]]
    if published is not None:
        import archscore

        sp = archscore.get_space(space or "")
        held = {sp.to_string(a) for a in sp.published_archs()}
        records = [r for r in records if (r["arch"] in held) == published]
    rows = [r["scores"] for r in records]
    names = list(dict.fromkeys(n for r in rows for n in r))
    for name, info in POPULATION.items():
        holding = [row for row in rows if set(info.members) <= set(row)]
        if holding:
            for row, value in zip(holding, population_scores(info, holding)):
                row[name] = value
            names.append(name)
    return records, names


def complexity_bias(
    path: str, space: str, truth_column: str, sample: str | None, bins: int, also: list[str] = ()
) -> str:
    """The Markdown table of the complexity-bias study (archscore.estimators.analysis.complexity_bias) on the
    lines of ``path``: each estimator's Kendall tau over all of them and its mean inside bins of equal size by
    FLOPs and by params. The bins are one partition of the lines, so an estimator that only some of them hold
    (another run's, through ``also``) is left out and named below the table."""
    from archscore.estimators.analysis import StudyContext, get_study
    from archscore.estimators.protocol import Protocol
    from archscore.estimators.spaces import get_space
    from archscore.estimators.truth import resolve_truth

    records, names = _records(path, sample, also=also)
    sp, truth = get_space(space), resolve_truth(space, truth_column)
    kept = [r for r in records if truth.get(sp.parse(r["arch"])) is not None]
    partial = [n for n in names if any(n not in r["scores"] for r in kept)]
    names = [n for n in names if n not in partial]
    scores = {n: [r["scores"][n] for r in kept] for n in names}
    ctx = StudyContext(
        sp,
        [sp.parse(r["arch"]) for r in kept],
        [truth.get(sp.parse(r["arch"])) for r in kept],
        names,
        Protocol(),
        lambda protocol: scores,
        {"bins": bins},
    )
    result = get_study("complexity_bias").run(ctx)
    lines = [
        f"Complexity bias: {len(kept)} {space} architectures of `{path}`{f' (sample {sample})' if sample else ''} "
        f"against {truth_column}, {bins} bins of equal size",
        "",
        "| estimator | Kendall τ, all | mean τ in FLOPs bins | mean τ in params bins |",
        "|---|---|---|---|",
    ]
    by = result["by"]
    for name in names:
        lines.append(
            f"| {name} | {_cell(result['global'][name])} | {_cell(by['flops']['mean_in_bin_tau'][name])} | "
            f"{_cell(by['params']['mean_in_bin_tau'][name])} |"
        )
    if partial:
        lines += ["", f"Left out, scored on only some of these lines: {', '.join(partial)}."]
    return "\n".join(lines)


def report(
    path: str,
    space: str,
    truth_column: str,
    sample: str | None,
    published: bool | None = None,
    also: list[str] = (),
) -> str:
    """The Markdown ranking-quality table of the lines of ``path`` (as :func:`_records` selects them)."""
    from archscore.estimators.evaluation import rank_records
    from archscore.estimators.truth import resolve_truth

    records, names = _records(path, sample, space, published, also)
    criteria = rank_records(records, space, names, resolve_truth(space, truth_column))
    lines = [
        f"{len(records)} {space} architectures of `{path}`{f' (sample {sample})' if sample else ''}"
        f"{'' if published is None else ' with' if published else ' without'}"
        f"{'' if published is None else ' published scores'} against {truth_column}",
        "",
        "| estimator | n scored | Kendall τ | Spearman | P@top5% | BR@1% | nDCG |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        c = criteria[name]
        lines.append(
            f"| {name} | {c['n_scored']} | {_cell(c['kendall_tau'])} | {_cell(c['spearman'])} | "
            f"{_cell(c['p_at_top'].get('0.05'))} | {_cell(c['br_at'].get('0.01'))} | {_cell(c['ndcg'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from archscore.estimators.spaces import DEFAULT_SPACE

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default=DEFAULT_SPACE)
    parser.add_argument("--sample", action="append", metavar="[published:]N:SEED")
    parser.add_argument("--report", metavar="FILE", help="print the ranking-quality table of a written table")
    parser.add_argument("--truth", default=None, help="ground-truth column of --report (default: the space's first)")
    parser.add_argument(
        "--also", action="append", default=[], metavar="FILE", help="with --report: add these tables' scores"
    )
    parser.add_argument(
        "--complexity-bias", type=int, metavar="BINS", help="with --report: the complexity-bias table instead"
    )
    within = parser.add_mutually_exclusive_group()
    within.add_argument(
        "--published-only",
        dest="published",
        action="store_const",
        const=True,
        help="with --report: only the architectures the space has published scores for",
    )
    within.add_argument(
        "--unpublished-only",
        dest="published",
        action="store_const",
        const=False,
        help="with --report: only the architectures the space has no published scores for",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--init-seed", type=int, default=None, help="the protocol's seed (default: its own)")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--chunk", type=int, default=8, help="architectures per task")
    parser.add_argument("--deadline", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("-e", "--estimators", help="comma-separated names (default: every zero-shot one)")
    parser.add_argument("--skip", metavar="FILE", help="leave out the architectures a written table holds")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    if args.report:
        if args.sample and len(args.sample) > 1:
            parser.error("--report takes at most one --sample")
        import archscore

        truth = args.truth or archscore.get_space(args.space).ground_truth_columns[0]
        sample = args.sample[0] if args.sample else None
        if args.complexity_bias:
            print(complexity_bias(args.report, args.space, truth, sample, args.complexity_bias, args.also))
        else:
            print(report(args.report, args.space, truth, sample, args.published, args.also))
        return 0
    if not args.sample or not args.out:
        parser.error("scoring needs --sample and --out")

    from archscore.estimators.catalog import PLUGINS, ZERO_SHOT

    names = [*(n for n in ZERO_SHOT if n not in PLUGINS), "params", "flops"]
    if args.estimators:
        names = args.estimators.split(",")
    protocol = {"batch_size": args.batch_size}
    if args.init_seed is not None:
        protocol["seed"] = args.init_seed
    archs = _samples(args.space, args.sample)
    if args.skip:
        with open(args.skip) as f:
            done = {json.loads(line)["arch"] for line in f if line.strip()}
        archs = [(a, held) for a, held in archs if a not in done]
    samples_of = dict(archs)
    order = [a for a, _ in archs]
    jobs = [
        (order[i : i + args.chunk], args.space, args.device, protocol, names) for i in range(0, len(order), args.chunk)
    ]
    started = time.monotonic()
    done = 0
    context = multiprocessing.get_context("spawn")
    with open(args.out, "w") as out, context.Pool(args.processes) as pool:
        pending = pool.imap_unordered(_score_chunk, jobs)
        for _ in jobs:
            remaining = None if args.deadline is None else args.deadline - (time.monotonic() - started)
            if remaining is not None and remaining <= 0:
                break
            try:
                lines = pending.next(timeout=remaining)
            except multiprocessing.TimeoutError:
                break
            for line in lines:
                line["samples"] = samples_of.get(line["arch"], [])
                out.write(json.dumps(line) + "\n")
            out.flush()
            done += len(lines)
            print(f"{done}/{len(order)} in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        pool.terminate()
    print(f"scored {done} of {len(order)} architectures in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
