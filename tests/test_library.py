"""The library's public face, ``import archscore``: score, evaluate, get_space, list_estimators, and one
device rule (auto, cpu, cuda, cuda:N) shared with the CLI and the workers."""

from __future__ import annotations

import pytest
import torch

import archscore
from archscore.estimators.device import DeviceError, check_device_name, resolve_device, use_ieee_float32
from archscore.estimators.zero_shot.engine import score_architecture

CELLS = [[0, 1, 2, 3, 4, 0], "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|skip_connect~1|none~2|"]


def test_score_returns_typed_records_equal_to_the_engine():
    records = archscore.score(CELLS, space="nb201", estimators=["synflow", "params", "jacob_cov"], device="cpu")
    assert [type(r) for r in records] == [archscore.ArchScore] * 2
    for record, cell in zip(records, CELLS):
        expected = score_architecture(cell, "nb201", ["synflow", "params", "jacob_cov"])
        assert record.scores == {n: v.value for n, v in expected.scores.items()}
        assert record.device == "cpu"
        assert record.arch == archscore.get_space("nb201").to_string(archscore.get_space("nb201").parse(cell))


def test_score_takes_a_protocol_as_fields_and_the_device_never_enters_it():
    small = archscore.score(CELLS[:1], estimators=["grad_norm"], protocol={"batch_size": 16, "seed": 3}, device="auto")
    default = archscore.score(CELLS[:1], estimators=["grad_norm"], device="cpu")
    assert small[0].scores["grad_norm"] != default[0].scores["grad_norm"]
    assert "device" not in archscore.Protocol.model_fields
    assert small[0].device == resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


def test_bad_input_names_the_index_the_estimator_or_the_device():
    with pytest.raises(archscore.EncodingError, match=r"archs\[1\]"):
        archscore.score([CELLS[0], [0, 1, 2]], estimators=["params"])
    with pytest.raises(ValueError, match="no_such_proxy"):
        archscore.score(CELLS, estimators=["params", "no_such_proxy"])
    with pytest.raises(DeviceError, match="got 'gpu'"):
        archscore.score(CELLS, estimators=["params"], device="gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_a_cuda_device_this_machine_lacks_is_an_error_not_a_silent_cpu(name):
    with pytest.raises(DeviceError, match="CUDA is not available"):
        resolve_device(name)


def test_cuda_scores_in_ieee_float32_never_tensorfloat32():
    """cuDNN's default TF32 convolutions moved NB201 scores by up to 4 % against the CPU on an H200."""
    flags = (torch.backends.cudnn.conv, torch.backends.cuda.matmul)
    before = [f.fp32_precision for f in flags]
    try:
        for f in flags:
            f.fp32_precision = "tf32"
        if torch.cuda.is_available():
            resolve_device("cuda")
        else:
            use_ieee_float32()
        assert [f.fp32_precision for f in flags] == ["ieee", "ieee"]
    finally:
        for f, value in zip(flags, before):
            f.fp32_precision = value


@pytest.mark.parametrize("name", ["auto", "cpu", "cuda", "cuda:0", "cuda:12"])
def test_device_names(name):
    assert check_device_name(name) == name


@pytest.mark.parametrize("name", ["gpu", "cuda:", "cuda:x", "CPU", "mps", ""])
def test_malformed_device_names(name):
    with pytest.raises(DeviceError):
        check_device_name(name)


def test_evaluate_reports_the_criteria_of_each_estimator():
    space = archscore.get_space("nb201")
    report = archscore.evaluate(space.sample(12, seed=0), space="nb201", estimators=["params", "synflow"], device="cpu")
    assert set(report["criteria"]) == {"params", "synflow"} and report["n"] == 12
    assert report["device"] == "cpu" and report["truth"]["column"] == space.ground_truth_columns[0]
    assert -1 <= report["criteria"]["params"]["kendall_tau"] <= 1


def test_list_estimators_and_spaces():
    names = [e.name for e in archscore.list_estimators()]
    assert {"synflow", "jacob_cov", "params", "oneshot_acc"} <= set(names)
    assert {"nb101", "nb201", "nb301"} <= set(archscore.list_spaces())


def test_workers_refuse_a_malformed_device_setting(settings_env):
    from pydantic import ValidationError

    from archscore.contract.settings import Settings

    settings_env(device="gpu")
    with pytest.raises(ValidationError, match="device"):
        Settings()


def test_a_protocol_hashed_from_its_dump_has_its_hash_and_the_dump_is_left_as_it_was():
    """The API dumps a protocol once, for the job record and the hash (service/scoring/validate.py): the
    hash must be the protocol's own and must not strip fields from the record it is given."""
    import copy

    from archscore.estimators.protocol import OneShotSettings, Protocol

    for protocol in (Protocol(), Protocol(seed=3, oneshot=OneShotSettings(supernet="a" * 64))):
        dumped = protocol.model_dump()
        kept = copy.deepcopy(dumped)
        assert protocol.hash(dumped) == protocol.hash()
        assert dumped == kept
