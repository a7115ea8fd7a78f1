"""argparse ``type=`` validators shared by the edge_runtime subcommands (stdlib only, Python 3.6)."""

import argparse


def _number(text, cast, ok, expected):
    try:
        value = cast(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError("expected %s, got %r" % (expected, text))
    if not ok(value):
        raise argparse.ArgumentTypeError("expected %s, got %s" % (expected, text))
    return value


def positive_int(text):
    return _number(text, int, lambda v: v >= 1, "a whole number >= 1")


def non_negative_int(text):
    return _number(text, int, lambda v: v >= 0, "a whole number >= 0")


def positive_float(text):
    return _number(text, float, lambda v: v > 0, "a number > 0")


def probability(text):
    return _number(text, float, lambda v: 0.0 <= v <= 1.0, "a number between 0 and 1")
