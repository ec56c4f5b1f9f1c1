"""The archscore command line, as a user runs it: output formats, progress, exit status 2 on bad input."""

from __future__ import annotations

import csv
import io
import json

import pytest
from helpers.cli import run
from helpers.data import published_by_arch

from archscore.estimators.ranking import ranking_report
from archscore.estimators.spaces import get_space, list_spaces
from archscore.estimators.truth import load_builtin

NB201 = get_space("nb201")
CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def test_spaces_and_estimators_list_what_exists():
    spaces = json.loads(run("spaces", "--json").stdout)
    by_name = {s["name"]: s for s in spaces}
    assert [s["name"] for s in spaces] == list_spaces() and {"nb101", "nb201", "nb301"} <= set(by_name)
    assert by_name["nb201"]["size"] == 15625 and "cifar10_test" in by_name["nb201"]["ground_truth_columns"]
    assert by_name["nb101"]["ground_truth_columns"] == ["val_accuracy"] and "spec" in by_name["nb101"]["encodings"]
    names = [e["name"] for e in json.loads(run("estimators", "--json").stdout) if e["module"] is None]  # built in
    assert names == [
        "grad_norm",
        "snip",
        "grasp",
        "fisher",
        "jacob_cov",
        "synflow",
        "relu_logdet",
        "relu",
        "params",
        "flops",
        "layers",
        "zico",
        "meco",
        "swap",
        "swap_reg",
        "vkdnw",
        "vkdnw_single",
        "ntk_cond",
        "linear_regions",
        "gradsign",
        "zen",
        "epe_nas",
        "az_expressivity",
        "az_progressivity",
        "az_trainability",
        "oneshot_acc",
        "oneshot_loss",
        "te_nas",
        "az_nas",
        "vkdnw_agg",
        "ensemble:default",
        "ensemble:nb101",
        "ensemble:nb301",
    ]


def test_score_reads_any_encoding_from_stdin_and_writes_json_lines():
    stdin = f"{CELL}\n# a comment\n\n[0, 1, 2, 3, 4, 0]\n1234\n"
    result = run("score", "-e", "params,flops,relu", "--batch-size", "8", stdin=stdin)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [r["arch"] for r in lines] == [
        CELL,
        NB201.to_string(NB201.parse([0, 1, 2, 3, 4, 0])),
        NB201.to_string(NB201.parse(1234)),
    ]
    published = published_by_arch("nb201")["params"]
    assert lines[0]["scores"]["params"] == pytest.approx(published[NB201.parse(CELL)], abs=1e-9)
    assert lines[0]["canonical_key"] == NB201.canonical_key(NB201.parse(CELL))
    assert set(lines[0]["per_batch"]) == {"relu"}


@pytest.mark.slow
def test_score_sample_as_csv(tmp_path):
    out = tmp_path / "scores.csv"
    result = run("score", "--sample", "3", "--seed", "5", "-e", "params,synflow", "--format", "csv", "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["arch"] for r in rows] == [NB201.to_string(a) for a in NB201.sample(3, 5)]
    assert all(float(r["params"]) > 0 for r in rows)


@pytest.mark.parametrize(
    "args, stdin, needle",
    [
        (("score", "-e", "nope", "--sample", "2"), None, "unknown zero-shot estimator(s) nope"),
        (("score", "--space", "nb999", "--sample", "2"), None, "unknown search space"),
        (("score", "-e", "params"), "[0, 1, 2, 3, 9, 0]\n", "stdin line 1: edge 1->3"),
        (("score", "-e", "params"), "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|\n", "unknown op 'conv'"),
        (("score", "-e", "params", "--file", "/no/such/file"), None, "/no/such/file: no such file"),
        (("score", "--batch-size", "0", "--sample", "1"), None, "--batch-size"),
        (
            ("score", "--batch-size", "1024", "--batches", "8", "--sample", "1"),
            None,
            "exceeds the 4000 training images",
        ),
        (("score", "--data-root", "/no/such/dir", "--sample", "1"), None, "/no/such/dir"),
        (("score", "--format", "xml", "--sample", "1"), None, "--format must be jsonl or csv"),
        (("evaluate", "--truth", "nope", "--sample", "5"), None, "ground truth 'nope'"),
        (("evaluate", "--truth", "cifar10_test"), None, "choose the architectures"),
        (("evaluate", "--sample", "5", "--enumerate"), None, "give only one of"),
        (("evaluate", "--sample", "99999"), None, "exceeds"),
        (
            ("score", "-e", "params", "--sample", "1", "--out", "/no/such/dir/x.jsonl"),
            None,
            "folder /no/such/dir does not exist",
        ),
        (("score", "--num-batches", "0", "--sample", "1"), None, "--num-batches:"),
        (("score", "--init-seed", "-1", "--sample", "1"), None, "--init-seed:"),
        (("score", "-e", ",,", "--sample", "1"), None, "--estimators: give estimator names"),
        (("score", "--jobs", "-3", "--sample", "1"), None, "--jobs must be 0"),
    ],
)
def test_bad_input_exits_2_with_a_one_line_reason(args, stdin, needle):
    result = run(*args, stdin=stdin)
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    assert needle in message
    assert len(message.splitlines()) == 1 and message.startswith("error: ")


def test_evaluate_prints_the_table_and_matches_published_ranking_for_exact_proxies(tmp_path):
    """params is exact, and flops differs from the published column by a constant: both rank the
    cells exactly as the published columns do, so their Kendall tau equals the published one."""
    out = tmp_path / "report.json"
    result = run(
        "evaluate",
        "--sample",
        "40",
        "--seed",
        "3",
        "--from-published",
        "-e",
        "params,flops",
        "--truth",
        "cifar10_test",
        "--out",
        str(out),
        "--jobs",
        "1",
    )
    assert result.exit_code == 0, result.output
    assert "Kendall" in result.stdout and "nDCG" in result.stdout and "published τ" in result.stdout
    report = json.loads(out.read_text())
    assert report["n"] == 40
    for name in ("params", "flops"):
        for criterion in ("kendall_tau", "ndcg"):
            assert report["criteria"][name][criterion] == pytest.approx(
                report["published_criteria"][name][criterion]
            ), criterion
    truth = load_builtin("nb201", "cifar10_test")
    record = report["records"][0]
    assert truth.lookup(record["arch"]) is not None


@pytest.mark.slow
@pytest.mark.timeout(600)  # trains, resumes and averages real supernets: ~260 s measured on a loaded machine
def test_supernet_train_resume_eval_average_and_list_from_the_command_line(tmp_path):
    root = tmp_path / "supernets"
    out = root / "sn"
    args = ("supernet", "train", "--out", str(out), "--network", "C=4", "--network", "N=1", "--batch-size", "100")
    first = run(*args, "--epochs", "1")
    assert first.exit_code == 0, first.output
    assert json.loads((out / "manifest.json").read_text())["epochs"] == 1
    epoch1 = root / "epoch1"
    epoch1.mkdir()
    for name in ("weights.pt", "optimizer.pt", "manifest.json"):
        (epoch1 / name).write_bytes((out / name).read_bytes())
    resumed = run(*args, "--epochs", "2", "--resume", "--keep-snapshots", "1")
    assert resumed.exit_code == 0, resumed.output
    assert [p.name for p in (out / "snapshots").iterdir()] == ["epoch-0002"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["epochs"] == 2 and manifest["complete"]
    again = run(*args, "--epochs", "2")
    assert again.exit_code == 2 and "already holds a checkpoint" in again.stderr
    report = tmp_path / "eval.json"
    result = run(
        "supernet",
        "eval",
        "--checkpoint",
        str(out),
        "--sample",
        "12",
        "--batches",
        "1",
        "--bn-mode",
        "recalibrate",
        "--post-deiso",
        "--out",
        str(report),
    )
    assert result.exit_code == 0, result.output
    body = json.loads(report.read_text())
    assert set(body["criteria"]) == {"oneshot_acc", "oneshot_loss"} and len(body["scores"]) == 12
    assert body["checkpoint"]["sha256"] == manifest["sha256"]
    assert body["evaluation"] == {
        "images": "validation",
        "batches": 1,
        "batch_size": 100,
        "bn_mode": "recalibrate",
        "post_deiso": True,
        "device": "cpu",
    }
    averaged = run("supernet", "average", str(epoch1), str(out), "--out", str(root / "avg"))
    assert averaged.exit_code == 0, averaged.output
    listed = run("supernet", "list", "--dir", str(root), "--json")
    assert listed.exit_code == 0, listed.output
    names = {c["name"]: c for c in json.loads(listed.stdout)}
    assert set(names) == {"sn", "epoch1", "avg", "nb201-deiso"} and names["nb201-deiso"]["builtin"]
    assert names["sn"]["sha256"] == manifest["sha256"] and names["sn"]["epochs"] == 2
    assert [s["sha256"] for s in names["avg"]["averaged_from"]] == [names["epoch1"]["sha256"], manifest["sha256"]]
    table = run("supernet", "list", "--dir", str(root))
    assert "epoch1" in table.stdout and manifest["sha256"][:16] in table.stdout


@pytest.mark.parametrize(
    "args, needle",
    [
        (("supernet", "train", "--out", "/tmp/x", "--sampler", "nope"), "--sampler: unknown sampler"),
        (("supernet", "train", "--out", "/tmp/x", "--schedule", "linear"), "--schedule: unknown schedule 'linear'"),
        (("supernet", "train", "--out", "/tmp/x", "--epochs", "0"), "must be positive"),
        (("supernet", "eval", "--checkpoint", "/no/such/dir"), "not a checkpoint folder"),
        (
            ("supernet", "eval", "--checkpoint", "/no/such/dir", "--images", "test"),
            "--images: use one of validation, held_out",
        ),
        (("supernet", "eval", "--checkpoint", "/no/such/dir", "--batches", "6"), "--num-batches must be 1..5 with"),
        (
            ("supernet", "eval", "--checkpoint", "/no/such/dir", "--images", "held_out", "--batches", "16"),
            "--num-batches must be 1..15 with --images held_out",
        ),
        (("supernet", "average", "/no/such/dir", "/no/other", "--out", "/tmp/x"), "not a checkpoint folder"),
        (("supernet", "train", "--out", "/tmp/x", "--device", "tpu"), "--device: device must be"),
    ],
)
def test_supernet_bad_input_exits_2(args, needle):
    result = run(*args)
    assert result.exit_code == 2 and needle in result.stderr


def test_evaluate_reads_nds_records_with_truth_file(tmp_path):
    from helpers.nds_records import nds_records

    resnet, resnexta = get_space("nds_resnet"), get_space("nds_resnexta")
    archs = [resnet.parse(f"d1-1-1_w16-{w}-32") for w in (16, 24, 32, 40)]
    path = tmp_path / "ResNet.json"
    records = nds_records(resnet, archs)
    path.write_text(json.dumps(records + nds_records(resnexta, resnexta.sample(1, seed=0))))
    (tmp_path / "archs.txt").write_text("\n".join(resnet.to_string(a) for a in archs))
    result = run(
        "evaluate",
        "--space",
        "nds_resnet",
        "--truth-file",
        f"{path}:test_ep_top1",
        "-f",
        str(tmp_path / "archs.txt"),
        "-e",
        "params,flops",
        "--batch-size",
        "4",
        "--out",
        str(tmp_path / "r.json"),
    )
    assert result.exit_code == 0, result.output
    assert "left out 1 entries: block_type 'res_bottleneck_block'" in result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["n"] == 4 and report["truth"]["column"] == "test_ep_top1"
    truth = [100 - r["test_ep_top1"][-1] for r in records]
    expected = ranking_report([resnet.cost(a)[0] / 1e6 for a in archs], truth)
    assert report["criteria"]["params"]["kendall_tau"] == pytest.approx(expected["kendall_tau"])


def test_evaluate_without_ground_truth_for_an_nds_space_exits_2():
    result = run("evaluate", "--space", "nds_resnet", "--sample", "3")
    assert result.exit_code == 2 and "nds_resnet has no built-in ground truth" in result.output


@pytest.mark.slow
@pytest.mark.timeout(600)  # went past 300 s on a loaded machine (the default timeout)
def test_supernet_of_another_space_from_the_command_line(tmp_path):
    out = tmp_path / "nb301"
    args = (
        "supernet",
        "train",
        "--out",
        str(out),
        "--space",
        "nb301",
        "--network",
        "C=4",
        "--network",
        "layers=3",
        "--batch-size",
        "32",
        "--steps-per-epoch",
        "2",
        "--sampler",
        "fair",
        "--epochs",
        "1",
    )
    trained = run(*args)
    assert trained.exit_code == 0, trained.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["space"] == "nb301" and manifest["network"] == {"C": 4, "layers": 3, "num_classes": 10}
    report = tmp_path / "eval.json"
    result = run(
        "supernet",
        "eval",
        "--checkpoint",
        str(out),
        "--sample",
        "10",
        "--batches",
        "15",
        "--images",
        "held_out",
        "--out",
        str(report),
    )
    assert result.exit_code == 0, result.output
    body = json.loads(report.read_text())
    assert body["criteria"]["oneshot_acc"]["n"] == 10 and body["archs"][0].startswith("Genotype(")
    assert body["evaluation"]["images"] == "held_out" and body["evaluation"]["batches"] == 15


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--space", "nope"), "--space: unknown search space 'nope'"),
        (("--space", "nb301", "--network", "C=999"), "--network C: must be in 2..64"),
        (("--space", "nb301", "--network", "C"), "--network: 'C' is not KEY=INTEGER (settings of nb301: C, layers)"),
        (("--space", "nb101", "--network", "channels=8"), "--network channels: not a network setting of the nb101"),
        (("--space", "nb301", "--sampler", "deiso"), "nb301 has no isomorphism classes"),
    ],
)
def test_supernet_train_refuses_bad_settings_with_exit_2(tmp_path, extra, message):
    result = run("supernet", "train", "--out", str(tmp_path / "x"), "--steps-per-epoch", "1", *extra)
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert not (tmp_path / "x" / "manifest.json").exists()
