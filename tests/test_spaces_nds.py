"""NDS ResNet and ResNeXt-A: value sets, the three encodings, errors that name the stage, enumeration,
uniform sampling, and the cost model against the built network (hand-derived and counted)."""

from __future__ import annotations

import collections
import itertools

import pytest
import torch

from archscore.estimators.spaces import EncodingError, get_space
from archscore.estimators.zero_shot.flops import count_flops

RESNET, RESNEXTA = get_space("nds_resnet"), get_space("nds_resnexta")
SPACES = [RESNET, RESNEXTA]


def _meta_network(space, arch):
    """The network with its shapes only: exact parameter counts and FLOPs without memory or compute."""
    with torch.device("meta"):
        return space.build_network(arch)


def test_value_sets_and_sizes_follow_the_spec():
    assert RESNET.fields == {
        "depths": (1, 2, 3, 4, 6, 8, 12, 16, 24),
        "widths": (16, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256),
    }
    assert RESNEXTA.fields == {
        "depths": (1, 2, 4, 8, 16),
        "widths": (16, 32, 64, 128, 256),
        "bot_muls": (0.25, 0.5, 1),
        "groups": (1, 2, 4),
    }
    assert RESNET.size == 9**3 * 12**3 == 1_259_712
    assert RESNEXTA.size == (5 * 5 * 3 * 3) ** 3 == 11_390_625


def test_mapping_record_and_compact_string_name_the_same_architecture():
    mapping = {"depths": [1, 2, 4], "widths": [16, 32, 64], "bot_muls": [0.25, 0.5, 1.0], "groups": [1, 2, 4]}
    record = {
        "block_type": "res_bottleneck_block",
        "ds": [1, 1, 2, 4],
        "ws": [16, 16, 32, 64],
        "ss": [1, 1, 2, 2],
        "bot_muls": [0.0, 0.25, 0.5, 1.0],
        "num_gs": [1, 1, 2, 4],
    }
    arch = RESNEXTA.parse(mapping)
    assert RESNEXTA.parse(record) == arch
    assert RESNEXTA.parse({"net": record, "min_test_top1": 7.5}) == arch  # a whole NDS record
    assert RESNEXTA.parse("d1-2-4_w16-32-64_b0.25-0.5-1_g1-2-4") == arch
    assert RESNEXTA.to_string(arch) == RESNEXTA.canonical_key(arch) == "d1-2-4_w16-32-64_b0.25-0.5-1_g1-2-4"
    assert RESNEXTA.to_record(arch) == {**record, "bot_muls": [0.0, 0.25, 0.5, 1]}
    basic = RESNET.parse(
        {
            "block_type": "res_basic_block",
            "ds": [1, 3, 24, 1],
            "ws": [16, 24, 256, 16],
            "ss": [1, 1, 2, 2],
            "bot_muls": [0, 0, 0, 0],
            "num_gs": [1, 1, 1, 1],
        }
    )
    assert RESNET.to_string(basic) == "d3-24-1_w24-256-16" and RESNET.parse("d3-24-1_w24-256-16") == basic


@pytest.mark.parametrize(
    "space, encoding, reason",
    [
        (
            RESNET,
            {"depths": [1, 5, 2], "widths": [16, 16, 16]},
            "stage 2 depth 5 is not allowed; allowed: 1, 2, 3, 4, 6, 8, 12, 16, 24",
        ),
        (RESNET, {"depths": [1, 2, 2], "widths": [16, 16, 17]}, "stage 3 width 17 is not allowed; allowed: 16, 24,"),
        (RESNET, {"depths": [1, 2], "widths": [16, 16, 16]}, "depths: expected 3 values (one per stage), got 2"),
        (RESNET, {"depths": [1, 2, 2], "widths": [16, 16, 16], "groups": [1, 1, 1]}, "unknown key(s) groups"),
        (
            RESNEXTA,
            {"depths": [1, 2, 2], "widths": [16, 16, 16], "bot_muls": [1, 0.3, 1], "groups": [1, 1, 1]},
            "stage 2 bot_mul 0.3 is not allowed; allowed: 0.25, 0.5, 1",
        ),
        (
            RESNEXTA,
            {"depths": [1, 2, 2], "widths": [16, 16, 16], "bot_muls": [1, 1, 1], "groups": [1, 1, 8]},
            "stage 3 group 8 is not allowed; allowed: 1, 2, 4",
        ),
        (RESNEXTA, {"depths": [1, 2, 2], "widths": [16, 16, 16]}, "missing key(s) bot_muls, groups"),
        (RESNET, {"depths": [True, 2, 2], "widths": [16, 16, 16]}, "stage 1 depth True is not allowed"),
        (RESNET, {"block_type": "res_bottleneck_block", "ds": [1, 1, 1, 1]}, "that is nds_resnexta's block type"),
        (
            RESNET,
            {"block_type": "res_basic_block", "ds": [1, 1, 1, 1], "ws": [16, 16, 16, 16], "ss": [1, 2, 2, 2]},
            "ss must be [1, 1, 2, 2]",
        ),
        (
            RESNET,
            {"block_type": "res_basic_block", "ds": [1, 1, 1, 1], "ws": [32, 16, 16, 16], "ss": [1, 1, 2, 2]},
            "stem width ws[0] must be 16",
        ),
        (
            RESNET,
            {"block_type": "res_basic_block", "ds": [1, 1, 1], "ws": [16, 16, 16, 16], "ss": [1, 1, 2, 2]},
            "ds must be a list of 4 values (stem first)",
        ),
        (RESNET, "d1-2-3", "expected 2 '_'-separated fields like d1-2-3_w16-24-32"),
        (RESNET, "w16-16-16_d1-1-1", "field 'd' (depths) expected"),
        (RESNET, "d1-x-1_w16-16-16", "depths: 'x' is not a number"),
    ],
)
def test_invalid_encodings_say_which_stage_and_what_is_allowed(space, encoding, reason):
    with pytest.raises(EncodingError) as info:
        space.parse(encoding)
    assert reason in str(info.value)


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
def test_enumeration_is_a_fixed_bijection_onto_the_product(space):
    first = list(itertools.islice(space.enumerate(), 2000))
    assert len(set(first)) == 2000
    assert first[0] == space.parse({k: [v[0]] * 3 for k, v in space.fields.items()})
    assert first[1] != first[0] and first == list(itertools.islice(space.enumerate(), 2000))
    last = space._from_index(space.size - 1)
    assert last == space.parse({k: [v[-1]] * 3 for k, v in space.fields.items()})


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
def test_sampling_is_uniform_over_every_choice(space):
    archs = space.sample(9000, seed=0)
    assert len(set(archs)) == 9000
    for key, allowed in space.fields.items():
        for stage in range(3):
            counts = collections.Counter(getattr(a, key)[stage] for a in archs)
            assert set(counts) == set(allowed)
            expected = 9000 / len(allowed)
            assert all(abs(c - expected) < 5 * expected**0.5 for c in counts.values()), (key, stage, counts)
    with pytest.raises(ValueError, match="space size"):
        space.sample(space.size + 1, seed=0)


def test_hand_counted_parameters_of_the_smallest_resnet():
    # stem 3*16*9 + BN 32 = 464; stage 1: two 3x3 16->16 convs + BNs = 4,672; stages 2 and 3 add a
    # 1x1 projection + BN (288) for the stride: 4,960 each; head 16*10 + 10 = 170
    arch = RESNET.parse("d1-1-1_w16-16-16")
    assert RESNET.cost(arch)[0] == 464 + 4_672 + 2 * 4_960 + 170 == 15_226


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
def test_analytic_params_equal_the_built_network_on_200_architectures(space):
    for arch in space.sample(200, seed=1):
        params, _ = space.cost(arch)
        assert params == sum(p.numel() for p in _meta_network(space, arch).parameters()), space.to_string(arch)


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
def test_analytic_flops_equal_counting_the_built_network(space):
    largest = space.parse({k: [v[-1]] * 3 for k, v in space.fields.items()})
    for arch in [largest, *space.sample(30, seed=2)]:
        _, flops = space.cost(arch)
        assert flops == count_flops(_meta_network(space, arch), (1, 3, 32, 32)), space.to_string(arch)
        assert space.cost(arch, num_classes=100)[1] == flops + 90 * (arch.widths[-1] + 1)


def test_resnexta_blocks_use_grouped_3x3_convs_of_the_inner_width():
    arch = RESNEXTA.parse("d2-1-1_w64-128-256_b0.25-0.5-1_g4-2-1")
    net = _meta_network(RESNEXTA, arch)
    grouped = [
        m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3) and m is not net.stem[0]
    ]
    assert [(m.in_channels, m.groups, m.stride[0]) for m in grouped] == [
        (16, 4, 1),
        (16, 4, 1),
        (64, 2, 2),
        (256, 1, 2),
    ]
    projections = [b.proj is not None for stage in net.stages for b in stage]
    assert projections == [True, False, True, True]  # 16->64 at stage 1; strides at stages 2 and 3


def test_encoding_features_are_the_stage_values_then_the_totals():
    f = dict(
        zip(RESNEXTA.feature_names(), RESNEXTA.encoding_features(RESNEXTA.parse("d1-2-4_w16-32-64_b0.25-0.5-1_g1-2-4")))
    )
    assert f == {
        **{"depths[0]": 1, "depths[1]": 2, "depths[2]": 4, "widths[0]": 16, "widths[1]": 32, "widths[2]": 64},
        **{"bot_muls[0]": 0.25, "bot_muls[1]": 0.5, "bot_muls[2]": 1, "groups[0]": 1, "groups[1]": 2, "groups[2]": 4},
        **{"sum(depths)": 7, "sum(depths*widths)": 16 + 64 + 256},
    }
    assert RESNET.feature_names() == (
        *("depths[0]", "depths[1]", "depths[2]", "widths[0]", "widths[1]", "widths[2]"),
        *("sum(depths)", "sum(depths*widths)"),
    )
    assert RESNET.encoding_features(RESNET.parse("d3-24-1_w24-256-16")) == (3, 24, 1, 24, 256, 16, 28, 72 + 6144 + 16)
