"""The vectors a stopped add keeps for its next run: read back for the same file and embedder only,
never unpickled, and gone once used, damaged or a week old."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from pgpt.runtime.documents.chunk_vectors import KeptVectors, kept_path, text_key
from pgpt.runtime.settings import Settings


def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", model_cache=tmp_path / "models")


def kept(tmp_path: Path, model: str = "embedder-a") -> KeptVectors:
    return KeptVectors(settings(tmp_path), model)


def test_a_stopped_files_vectors_come_back_for_that_file_and_embedder_only(tmp_path: Path) -> None:
    vectors = np.arange(8, dtype=np.float32).reshape(2, 4)
    kept(tmp_path).keep("hash-1", [text_key("one"), text_key("two")], vectors)
    assert oct(kept_path(settings(tmp_path)).parent.stat().st_mode & 0o777) == "0o700"
    assert oct(kept_path(settings(tmp_path)).stat().st_mode & 0o777) == "0o600"  # it was 0644 (t67)
    back = kept(tmp_path).for_document(None, "hash-1", None)
    assert set(back) == {text_key("one"), text_key("two")} and np.array_equal(back[text_key("two")], vectors[1])
    assert kept(tmp_path).for_document(None, "hash-2", None) == {}  # the file changed since: nothing
    assert kept(tmp_path, "embedder-b").for_document(None, "hash-1", None) == {}  # another model's vectors
    reader = kept(tmp_path)
    reader.done("hash-1")  # indexed now: the vectors go
    assert not kept_path(settings(tmp_path)).exists()


def test_a_second_stopped_file_keeps_the_first_files_vectors(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """t67: app.log stopped (1,152 vectors kept), then rows.csv stopped: the file then held only
    rows.csv's, and app.log's 90 s of embedding were gone though the stop had said they were kept."""
    from pgpt.runtime.documents import chunk_vectors

    first, second = np.ones((2, 4), np.float32), np.full((3, 4), 2.0, np.float32)
    kept(tmp_path).keep("hash-log", [text_key("a"), text_key("b")], first, "/docs/app.log")
    kept(tmp_path).keep("hash-csv", [text_key(t) for t in "cde"], second, "/other/rows.csv")
    assert len(kept(tmp_path).for_document(None, "hash-log", None)) == 2
    assert len(kept(tmp_path).for_document(None, "hash-csv", None)) == 3
    reader = kept(tmp_path)
    reader.done("hash-log")  # app.log indexed: only its vectors go
    assert kept(tmp_path).for_document(None, "hash-log", None) == {}
    assert len(kept(tmp_path).for_document(None, "hash-csv", None)) == 3
    chunk_vectors.drop_kept_under(settings(tmp_path), ["/other"])  # its folder deleted after the stop
    assert not kept_path(settings(tmp_path)).exists()
    # Beyond KEEP_MAX the oldest stopped files go; the newest is kept whatever its size.
    monkeypatch.setattr(chunk_vectors, "KEEP_MAX", 4)
    kept(tmp_path).keep("hash-log", [text_key("a"), text_key("b")], first, "/docs/app.log")
    kept(tmp_path).keep("hash-csv", [text_key(t) for t in "cde"], second, "/other/rows.csv")
    assert kept(tmp_path).for_document(None, "hash-log", None) == {}
    kept(tmp_path).keep("hash-big", [text_key(t) for t in "fghij"], np.zeros((5, 4), np.float32), "/big")
    assert len(kept(tmp_path).for_document(None, "hash-big", None)) == 5
    assert kept(tmp_path).for_document(None, "hash-csv", None) == {}


def test_a_file_kept_by_the_earlier_release_is_read(tmp_path: Path) -> None:
    """The earlier release kept one stopped file's vectors, without paths or stamps."""
    file = kept_path(settings(tmp_path))
    file.parent.mkdir(parents=True)
    with open(file, "wb") as out:
        np.savez(out, model_id=np.array("embedder-a"), content_hash=np.array("hash-1"),
                 keys=np.array([text_key("one")], dtype="S32"), vectors=np.ones((1, 4), np.float32))
    assert set(kept(tmp_path).for_document(None, "hash-1", None)) == {text_key("one")}


class Planted:
    """Unpickling this writes a file: the proof that a cache file ran code."""

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (Path(os.environ["PLANTED_MARK"]),))


def test_a_damaged_or_pickled_file_is_removed_unread(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    mark = tmp_path / "code-ran"
    monkeypatch.setenv("PLANTED_MARK", str(mark))
    file = kept_path(settings(tmp_path))
    file.parent.mkdir(parents=True)
    with open(file, "wb") as out:  # object arrays are pickled inside an .npz
        np.savez(out, model_id=np.array("embedder-a"), content_hash=np.array("hash-1"),
                 keys=np.array([Planted()], dtype=object), vectors=np.zeros((1, 4), np.float32))
    assert kept(tmp_path).for_document(None, "hash-1", None) == {}
    assert not mark.exists() and not file.exists()
    file.write_bytes(b"PK\x03\x04 not a zip at all")
    assert kept(tmp_path).for_document(None, "hash-1", None) == {} and not file.exists()


def test_vectors_of_a_file_not_added_again_for_a_week_are_removed(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    kept(tmp_path).keep("hash-1", [text_key("one")], np.ones((1, 4), np.float32))
    file = kept_path(settings(tmp_path))
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 3 * 24 * 3600)
    kept(tmp_path).keep("hash-2", [text_key("two")], np.ones((1, 4), np.float32))
    monkeypatch.setattr(time, "time", lambda: now + 8 * 24 * 3600)  # hash-1's week is over, hash-2's is not
    assert kept(tmp_path).for_document(None, "hash-1", None) == {}
    assert set(kept(tmp_path).for_document(None, "hash-2", None)) == {text_key("two")}
    monkeypatch.setattr(time, "time", lambda: now + 11 * 24 * 3600)
    assert kept(tmp_path).for_document(None, "hash-2", None) == {} and not file.exists()


def test_a_stop_lands_while_a_large_file_is_cut_into_chunks(tmp_path: Path) -> None:
    """A client that left during a 60 MB upload kept the server cutting it into chunks for 3 minutes,
    its upload turn held (t67): the stop is heard between two token counts, before any embedding."""
    import threading

    import pytest

    from pgpt.runtime.documents.chunk_vectors import chunk_rows
    from pgpt.runtime.documents.readers import Section
    from pgpt.runtime.errors import Cancelled

    cancel = threading.Event()

    class Embedder:
        dimension = 4
        counted = 0

        def count_tokens(self, text: str) -> int:
            self.counted += 1
            if self.counted == 50:
                cancel.set()  # the client goes, mid-way through the file
            return len(text.split())

        def embed(self, texts: list[str]) -> np.ndarray:
            raise AssertionError("nothing is embedded after the stop")

    embedder = Embedder()
    sections = [Section(" ".join(f"line {i} word {j}." for j in range(40))) for i in range(2000)]
    with pytest.raises(Cancelled, match="cutting big.log into chunks"):
        chunk_rows(embedder, sections, "doc", "default", "big.log", "hash", cancel=cancel)
    assert embedder.counted == 50  # stopped at the first count after the stop
