"""The answer cache: JSON + checksum, no pickle, private folder, damaged entries are misses."""

from __future__ import annotations

import os
import pickle
import sqlite3
import stat
from pathlib import Path

from pgpt.runtime.llm.answer_cache import AnswerCache, cache_key


class Canary:
    """Unpickling this would create a file: proof that pickle ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (self.path, "w"))


def test_round_trip_and_private_modes(tmp_path: Path) -> None:
    cache = AnswerCache(tmp_path / "answers")
    key = cache_key(model="m", prompt="p", params={"t": 0})
    cache.put(key, {"answer": "Paris", "prompt_tokens": 3})
    assert cache.get(key) == {"answer": "Paris", "prompt_tokens": 3}
    assert stat.S_IMODE(os.stat(tmp_path / "answers").st_mode) == 0o700
    cache.close()
    reopened = AnswerCache(tmp_path / "answers")
    assert stat.S_IMODE(os.stat(tmp_path / "answers" / "cache.db").st_mode) == 0o600
    assert reopened.get(key)["answer"] == "Paris"


def test_keys_change_with_every_part() -> None:
    base = cache_key(model="m", prompt="p", params={"t": 0})
    assert base != cache_key(model="m2", prompt="p", params={"t": 0})
    assert base != cache_key(model="m", prompt="p ", params={"t": 0})
    assert base != cache_key(model="m", prompt="p", params={"t": 1})


def _stored(folder: Path, prompt: str, answer: str) -> str:
    """Put one answer into a fresh cache at ``folder``, close it, and return its key."""
    cache = AnswerCache(folder)
    key = cache_key(model="m", prompt=prompt, params={})
    cache.put(key, {"answer": answer})
    cache.close()
    return key


def test_a_planted_pickle_is_never_loaded(tmp_path: Path) -> None:
    folder = tmp_path / "answers"
    key = _stored(folder, "p", "x")
    canary = tmp_path / "pwned"
    with sqlite3.connect(folder / "cache.db") as db:  # what an attacker with write access could do
        db.execute("UPDATE Cache SET mode = 4, value = ? WHERE key = ?",
                   (sqlite3.Binary(pickle.dumps(Canary(str(canary)))), key))
    cache = AnswerCache(folder)
    assert cache.get(key) is None
    assert not canary.exists()


def test_a_damaged_entry_is_a_miss_never_a_truncated_answer(tmp_path: Path) -> None:
    folder = tmp_path / "answers"
    key = _stored(folder, "q", "The capital of France is Paris.")
    with sqlite3.connect(folder / "cache.db") as db:
        (raw,) = db.execute("SELECT value FROM Cache WHERE key = ?", (key,)).fetchone()
        db.execute("UPDATE Cache SET value = ? WHERE key = ?", (raw.replace("Paris", "Pari"), key))
    cache = AnswerCache(folder)
    assert cache.get(key) is None
    assert cache.get(key) is None  # removed, still a miss
