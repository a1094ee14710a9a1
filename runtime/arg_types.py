"""argparse types for numbers and names, shared by pgpt-tui, pgpt-export and pgpt-serve: a value out of
range is a usage error (exit 2, one line) before any work, not a crash or a wasted export later."""

from __future__ import annotations

import argparse
from pathlib import Path
import re
from collections.abc import Callable

COLLECTION_RULE = "1 to 64 ASCII letters, digits, '.', '_' or '-', starting with a letter or a digit"
_COLLECTION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def given_path(text: str) -> Path:
    """A file or folder argument that is not empty: Path("") is the current folder, so an unset
    variable in a script ("ingest $DOCS", "forget $OLD") indexed, or forgot, the whole folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path is refused (it would mean the current folder; "
                                         "write . for that)")
    return Path(text)


def positive_int(text: str) -> int:
    """An integer of at least 1 (a number of tokens, results or runs)."""
    return _checked(text, int, "a whole number", lambda v: v >= 1, "the lowest allowed value is 1")


def non_negative_int(text: str) -> int:
    """An integer of at least 0 (0 turns the option off)."""
    return _checked(text, int, "a whole number", lambda v: v >= 0, "the lowest allowed value is 0")


def result_count(text: str) -> int:
    """A number of search results, 1 to 100 (-k 100000 printed every passage of the index)."""
    return _checked(text, int, "a whole number", lambda v: 1 <= v <= 100, "a search gives 1 to 100 results")


def passage_count(text: str) -> int:
    """Passages an answer reads, 1 to 20 (as pgpt-serve's ``passages``: -k 1000 was taken, and the
    context holds a few)."""
    return _checked(text, int, "a whole number", lambda v: 1 <= v <= 20, "an answer reads 1 to 20 passages")


def tcp_port(text: str) -> int:
    """A TCP port, 1 to 65535 (0, "any free port", would leave clients not knowing where to connect)."""
    return _checked(text, int, "a whole number", lambda v: 1 <= v <= 65535, "a TCP port is 1 to 65535")


def int_between(low: int, high: int, why: str) -> Callable[[str], int]:
    """An argparse type for an integer from ``low`` to ``high``; ``why`` says what the bound is."""
    def parse(text: str) -> int:
        return _checked(text, int, "a whole number", lambda v: low <= v <= high, why)
    return parse


def positive_ints(text: str) -> tuple[int, ...]:
    """Comma-separated integers of at least 1 ("1,2,4,8")."""
    return tuple(positive_int(part.strip()) for part in text.split(","))


def fraction(text: str) -> float:
    """A number from 0 to 1 (a share, e.g. of tokens that must agree)."""
    return _checked(text, float, "a number", lambda v: 0.0 <= v <= 1.0,  # also false for nan
                    "it is not between 0 and 1 (0.9 means 90%)")


def duration_seconds(text: str) -> float:
    """A duration as ollama writes it: ``90s``, ``30m``, ``1h``, a bare number of seconds, ``0``
    (at once) or any negative number (never); returns seconds, -1.0 for never."""
    raw = text.strip().lower()
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    unit = next((u for u in ("ms", "s", "m", "h") if raw.endswith(u)), "")
    try:
        value = float(raw[: len(raw) - len(unit)] if unit else raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 90s, 30m, 1h, or -1 for never)") from None
    if value != value or value in (float("inf"), float("-inf")):  # nan or infinite
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 90s, 30m, 1h, or -1 for never)")
    return -1.0 if value < 0 else value * scale.get(unit, 1.0)


def collection_name(text: str) -> str:
    """A document collection's name. pgpt-serve keeps uploads in a folder of that name, so only plain
    names pass: "../x" and "x" would otherwise share one folder under two names in the index."""
    if not _COLLECTION.fullmatch(text):
        raise argparse.ArgumentTypeError(f"the collection name {text[:80]!r} is refused: a collection name is "
                                         f"{COLLECTION_RULE}")
    return text


def positive_float(text: str) -> float:
    """A number above 0 (an amount such as gigabytes)."""
    return _checked(text, float, "a number", lambda v: v > 0 and v != float("inf"),  # also false for nan
                    "it must be above 0")


def _checked(text: str, parse: Callable[[str], float], kind: str, allowed: Callable[[float], bool],
             why: str) -> float:
    try:
        value = parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
    if not allowed(value):
        raise argparse.ArgumentTypeError(f"{value} is refused: {why}")
    return value


class VersionAction(argparse.Action):
    """``--version``: the program's name and release (runtime/release.py), exit 0; the release is read
    only when asked, so that --help stays instant. A cron job or a bug report had no way to say which
    pgpt ran (t71)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest, default=argparse.SUPPRESS, nargs=0,
                         help="print the release (version and git commit) and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        from pgpt.runtime.release import release

        print(f"{parser.prog} {release()}")
        parser.exit()
