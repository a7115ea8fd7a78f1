import argparse

import pytest

from edge_runtime import cli_types as ct


@pytest.mark.parametrize("func, text, value", [
    (ct.positive_int, "3", 3), (ct.non_negative_int, "0", 0), (ct.positive_float, "0.5", 0.5),
    (ct.probability, "1", 1.0), (ct.probability, "0", 0.0),
])
def test_accepts(func, text, value):
    assert func(text) == value


@pytest.mark.parametrize("func, text, message", [
    (ct.positive_int, "0", "expected a whole number >= 1, got 0"),
    (ct.positive_int, "x", "expected a whole number >= 1, got 'x'"),
    (ct.non_negative_int, "-1", "expected a whole number >= 0, got -1"),
    (ct.positive_float, "0", "expected a number > 0, got 0"),
    (ct.probability, "1.5", "expected a number between 0 and 1, got 1.5"),
])
def test_rejects_with_what_was_expected(func, text, message):
    with pytest.raises(argparse.ArgumentTypeError) as info:
        func(text)
    assert str(info.value) == message
