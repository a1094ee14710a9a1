"""argparse types for numbers, shared by pgpt-tui and pgpt-export: a value out of range is a usage
error (exit 2, one line) before any work, not a crash or a wasted export later."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def positive_int(text: str) -> int:
    """An integer of at least 1 (a number of tokens, results or runs)."""
    return _checked(text, int, "a whole number", lambda v: v >= 1, "the lowest allowed value is 1")


def non_negative_int(text: str) -> int:
    """An integer of at least 0 (0 turns the option off)."""
    return _checked(text, int, "a whole number", lambda v: v >= 0, "the lowest allowed value is 0")


def fraction(text: str) -> float:
    """A number from 0 to 1 (a share, e.g. of tokens that must agree)."""
    return _checked(text, float, "a number", lambda v: 0.0 <= v <= 1.0,  # also false for nan
                    "it is not between 0 and 1 (0.9 means 90%)")


def _checked(text: str, parse: Callable[[str], float], kind: str, allowed: Callable[[float], bool],
             why: str) -> float:
    try:
        value = parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
    if not allowed(value):
        raise argparse.ArgumentTypeError(f"{value} is refused: {why}")
    return value
