"""Ground truth: the embedded NAS-Bench-201 columns and user tables (CSV / JSON).

Oracles: the data README's published maxima, the embedded CSV read directly, and hand-derived
NASLib encodings (edges (1,2),(1,3),(1,4),(2,3),(2,4),(3,4); 0=skip 1=none 2=conv3x3 3=conv1x1 4=avgpool).
"""

from __future__ import annotations

import csv
import gzip
import json
from importlib import resources

import pytest

from archscore.estimators.spaces import get_space
from archscore.estimators.truth import TruthError, builtin_columns, load_builtin, load_table, parse_table, resolve_truth

SP = get_space("nb201")
COLUMNS = (
    "cifar10_test",
    "cifar100_test",
    "imagenet16_120_test",
    "cifar10valid_valid",
    "cifar10valid_test",
    "cifar10_val_suitezero",
)
# NB201 index 1 and its NASLib tuple, derived by hand:
# 0->1 conv3 (2), 0->2 conv3 (2), 0->3 skip (0), 1->2 avg (4), 1->3 conv3 (2), 2->3 skip (0)
IDX1 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
IDX1_NASLIB = [2, 2, 0, 4, 2, 0]
# NASLib (0,1,2,3,4,0)
A = "|skip_connect~0|+|none~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|skip_connect~2|"
B = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
C = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


@pytest.fixture(scope="module")
def csv_rows():
    raw = (resources.files("archscore.estimators.data") / "nb201_ground_truth.csv.gz").read_bytes()
    return list(csv.DictReader(gzip.decompress(raw).decode().splitlines()))


# --------------------------------------------------------------------------- built-in


def test_builtin_columns():
    assert tuple(builtin_columns("nb201")) == COLUMNS


@pytest.mark.parametrize(
    "column, best",
    [("cifar10_test", 94.37), ("cifar100_test", 73.51), ("imagenet16_120_test", 47.31), ("cifar10valid_valid", 91.61)],
)
def test_builtin_maxima_from_readme(column, best):
    gt = load_builtin("nb201", column)
    assert len(gt) == 15_625
    assert round(max(gt.values.values()), 2) == best
    assert gt.space == "nb201" and gt.column == column


def test_builtin_values_match_embedded_csv(csv_rows):
    for column in COLUMNS:
        gt = load_builtin("nb201", column)
        for r in csv_rows[::97]:
            assert gt.lookup(r["arch"]) == float(r[column])


def test_lookup_by_string_naslib_and_index(csv_rows):
    assert csv_rows[1]["arch"] == IDX1
    gt = load_builtin("nb201", "cifar10_test")
    v = gt.lookup(IDX1)
    assert v == float(csv_rows[1]["cifar10_test"])
    assert gt.lookup(IDX1_NASLIB) == gt.lookup(tuple(IDX1_NASLIB)) == gt.lookup(1) == v
    assert gt.get(SP.parse(IDX1)) == v
    # a different arch has a different entry
    assert gt.lookup(0) == float(csv_rows[0]["cifar10_test"]) != v


def test_unknown_column_lists_columns():
    with pytest.raises(TruthError) as exc:
        load_builtin("nb201", "cifar10_train")
    msg = str(exc.value)
    assert "cifar10_train" in msg and all(c in msg for c in COLUMNS)


# --------------------------------------------------------------------------- user tables


def test_csv_arch_value():
    gt = parse_table(f"arch,value\n{A},1.5\n{B},-2\n", "nb201")
    assert len(gt) == 2 and gt.column == "value"
    assert gt.lookup([0, 1, 2, 3, 4, 0]) == 1.5
    assert gt.lookup(B) == -2.0
    assert gt.lookup(C) is None


def test_csv_naslib_and_index_cells():
    gt = parse_table('arch,acc\n"[0, 1, 2, 3, 4, 0]",70\n1,80\n', "nb201")
    assert gt.lookup(A) == 70.0 and gt.lookup(IDX1) == 80.0


def test_csv_several_columns_need_a_name():
    text = f"arch,acc,loss\n{A},90,0.3\n{B},10,2.3\n"
    with pytest.raises(TruthError) as exc:
        parse_table(text, "nb201")
    assert "acc" in str(exc.value) and "loss" in str(exc.value)
    gt = parse_table(text, "nb201", column="loss")
    assert gt.lookup(B) == 2.3 and gt.column == "loss"
    with pytest.raises(TruthError, match="top1"):
        parse_table(text, "nb201", column="top1")
    with pytest.raises(TruthError, match="arch"):
        parse_table("name,acc\nx,1\n", "nb201")


def test_json_dict_and_list_with_naslib_tuples():
    d = parse_table(json.dumps({A: 1.0, "[1, 1, 1, 1, 1, 1]": 2.0, "1": 3}), "nb201")
    assert d.lookup(A) == 1.0 and d.lookup(B) == 2.0 and d.lookup(IDX1) == 3.0
    items = [{"arch": [0, 1, 2, 3, 4, 0], "value": 4.0}, {"arch": C, "value": 5}, {"arch": 1, "value": 6}]
    lst = parse_table(json.dumps(items), "nb201")
    assert lst.lookup(A) == 4.0 and lst.lookup(C) == 5.0 and lst.lookup(IDX1_NASLIB) == 6.0
    with pytest.raises(TruthError):
        parse_table(json.dumps([{"arch": A}]), "nb201")  # no value
    with pytest.raises(TruthError):
        parse_table("{not json", "nb201")


def _terr(text, **kw) -> str:
    with pytest.raises(TruthError) as exc:
        parse_table(text, "nb201", **kw)
    return str(exc.value)


def test_bad_encoding_names_entry_and_edge():
    bad = "|none~0|+|none~0|conv~1|+|none~0|none~1|none~2|"
    msg = _terr(f"arch,value\n{A},1\n{B},2\n{bad},3\n")
    assert "entry 2" in msg and "edge 1->2" in msg and "conv" in msg
    msg = _terr(json.dumps([{"arch": A, "value": 1}, {"arch": [0, 1, 2, 3, 9, 0], "value": 2}]))
    assert "entry 1" in msg and "edge 1->3" in msg


def test_duplicate_arch_across_encodings():
    msg = _terr(json.dumps({A: 1, B: 2, "[0, 1, 2, 3, 4, 0]": 3}))
    assert "entry 2" in msg and "twice" in msg and A in msg


@pytest.mark.parametrize("value", ["abc", "", "nan", "inf"])
def test_bad_values_csv(value):
    msg = _terr(f"arch,value\n{A},1\n{B},{value}\n")
    assert "entry 1" in msg


@pytest.mark.parametrize("value", ["NaN", "null", "true", '"x"', "[1]"])
def test_bad_values_json(value):
    assert "entry 0" in _terr(f'{{"{A}": {value}}}')


@pytest.mark.parametrize("text", ["arch,value\n", "{}", "[]"])
def test_empty_table(text):
    assert "empty" in _terr(text)


def test_files_and_resolve_truth(tmp_path):
    with pytest.raises(TruthError, match="no such file"):
        load_table(tmp_path / "missing.csv", "nb201")
    single = tmp_path / "single.csv"
    single.write_text(f"arch,acc\n{A},91.5\n{C},93\n")
    multi = tmp_path / "multi.csv"
    multi.write_text(f"arch,acc,loss\n{A},91.5,0.4\n{C},93,0.2\n")
    js = tmp_path / "t.json"
    js.write_text(json.dumps({"[0, 1, 2, 3, 4, 0]": 7}))

    builtin = resolve_truth("nb201", "cifar100_test")
    assert builtin.column == "cifar100_test" and len(builtin) == 15_625
    assert resolve_truth("nb201", str(single)).lookup(C) == 93.0
    assert resolve_truth("nb201", f"{multi}:loss").lookup(A) == 0.4
    assert resolve_truth("nb201", f"{multi}:acc").lookup(A) == 91.5
    assert resolve_truth("nb201", str(js)).lookup(A) == 7.0
    with pytest.raises(TruthError):
        resolve_truth("nb201", str(multi))  # column needed
    with pytest.raises(TruthError, match="cifar10_test"):
        resolve_truth("nb201", "no_such_column_or_file")


# --- the published NDS record format ---
def test_nds_records_give_100_minus_the_chosen_error_and_skip_the_other_block_type(tmp_path):
    from helpers.nds_records import nds_records

    resnet, resnexta = get_space("nds_resnet"), get_space("nds_resnexta")
    archs = resnet.sample(6, seed=0)
    records = nds_records(resnet, archs, seed=1)
    foreign = nds_records(resnexta, resnexta.sample(3, seed=0), seed=2)
    table = parse_table(json.dumps(records + foreign), "nds_resnet", source="nds")
    assert table.column == "min_test_top1" and len(table) == 6
    for arch, record in zip(archs, records):
        assert table.get(arch) == pytest.approx(100 - record["min_test_top1"])
        assert table.lookup(resnet.to_string(arch)) == table.get(arch)
    assert table.skipped == {
        "block_type 'res_bottleneck_block' is not nds_resnet's 'res_basic_block' (that is nds_resnexta's block type)": 3
    }

    last = parse_table(json.dumps({"top": records[:2], "mid": records[2:]}), "nds_resnet", column="test_ep_top1")
    assert [last.get(a) for a in archs] == pytest.approx([100 - r["test_ep_top1"][-1] for r in records])

    path = tmp_path / "ResNet.json"
    path.write_text(json.dumps(records))
    assert resolve_truth("nds_resnet", f"{path}:test_ep_top1").values == last.values
    assert resolve_truth("nds_resnet", str(path)).values == table.values


@pytest.mark.parametrize(
    "mutate, column, needle",
    [
        (lambda rs: rs, "max_test_top1", "NDS records have no column 'max_test_top1'; use min_test_top1:"),
        (
            lambda rs: [{k: v for k, v in r.items() if k != "min_test_top1"} for r in rs],
            None,
            "record 0 has no min_test_top1",
        ),
        (lambda rs: [{**r, "test_ep_top1": []} for r in rs], "test_ep_top1", "record 0 has no test_ep_top1 epochs"),
        (
            lambda rs: [rs[0], {**rs[1], "net": {**rs[1]["net"], "ds": [1, 5, 1, 1]}}],
            None,
            "entry 1: stage 1 depth 5 is not allowed",
        ),
        (lambda rs: [rs[0], rs[0]], None, "appears twice"),
        (
            lambda rs: [{**r, "net": {**r["net"], "block_type": "res_bottleneck_block"}} for r in rs],
            None,
            "no entry is an architecture of nds_resnet (2 x block_type",
        ),
        (lambda rs: [{**rs[0], "min_test_top1": "n/a"}], None, "record 0: min_test_top1: value 'n/a' is not a number"),
    ],
)
def test_unusable_nds_records_are_refused_with_a_reason(mutate, column, needle):
    from helpers.nds_records import nds_records

    resnet = get_space("nds_resnet")
    records = mutate(nds_records(resnet, resnet.sample(2, seed=3)))
    with pytest.raises(TruthError) as info:
        parse_table(json.dumps(records), "nds_resnet", column=column, source="body")
    assert needle in str(info.value)
