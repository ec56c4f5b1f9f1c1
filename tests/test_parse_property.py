"""Every space's ``parse`` on arbitrary input: an architecture or an EncodingError, never another
exception (which the API would answer with a 500 and the CLI with a traceback)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archscore.estimators.spaces import EncodingError, get_space, list_spaces

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=8) | st.dictionaries(st.text(max_size=10), children, max_size=6),
    max_leaves=40,
)
# strings shaped like the spaces' text encodings, with their pieces shuffled and numbers blown up
PIECES = st.sampled_from(
    [
        "|",
        "~",
        "+",
        "#",
        "(",
        ")",
        "[",
        "]",
        ",",
        " ",
        "'",
        "Genotype(",
        "normal=",
        "reduce=",
        "normal_concat=",
        "reduce_concat=",
        "range(",
        "99999999999999999999",
        "-1",
        "0",
        "1",
        "2",
        "6",
        "nor_conv_3x3",
        "skip_connect",
        "sep_conv_3x3",
        "conv3x3-bn-relu",
        "maxpool3x3",
        "input",
        "output",
        "None",
        "1e308",
        "{",
        "}",
        ":",
        '"',
    ]
)
TEXT = st.lists(PIECES, max_size=40).map("".join) | st.text(max_size=80)
# small node numbers, and numbers past what an index or a C long holds
NUMBER = st.integers(-3, 8) | st.sampled_from([2**31, 2**63, 10**20, -(2**63) - 1]) | st.integers(-(2**80), 2**80)
OP = st.sampled_from(["sep_conv_3x3", "skip_connect", "max_pool_3x3", "none", "bogus"])
PAIRS = st.lists(st.tuples(OP, NUMBER).map(lambda t: f"({t[0]!r}, {t[1]})"), max_size=9).map(
    lambda items: "[" + ", ".join(items) + "]"
)
CONCAT = st.lists(NUMBER, max_size=6).map(str) | st.lists(NUMBER, min_size=1, max_size=4).map(
    lambda a: f"range({', '.join(map(str, a))})"
)
GENOTYPE = st.builds(
    "Genotype(normal={}, normal_concat={}, reduce={}, reduce_concat={})".format, PAIRS, CONCAT, PAIRS, CONCAT
)  # DARTS's printed form, with any numbers in it


def _parse_or_encoding_error(space, value) -> None:
    try:
        space.parse(value)
    except EncodingError:
        pass


@pytest.mark.parametrize("name", list_spaces())
@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(value=JSON | TEXT | GENOTYPE)
def test_parse_gives_an_architecture_or_an_encoding_error(name, value):
    _parse_or_encoding_error(get_space(name), value)


@pytest.mark.parametrize(
    "text",
    [
        "Genotype(normal=[], normal_concat=range(2, 99999999999999999999), reduce=[], reduce_concat=range(2, 6))",
        "Genotype(normal=[('sep_conv_3x3', 0)] * 8, normal_concat=range(0, 10**30, 1), reduce=[], reduce_concat=[2])",
        "Genotype(normal=[('sep_conv_3x3', 99999999999999999999)], normal_concat=[2], reduce=[], reduce_concat=[2])",
    ],
)
def test_nb301_strings_found_to_overflow(text):
    with pytest.raises(EncodingError):
        get_space("nb301").parse(text)
