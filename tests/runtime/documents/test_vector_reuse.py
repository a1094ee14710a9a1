"""A document's vectors are made once: progress and stops inside a large file, an edited paragraph
the only one embedded again, a copy of an indexed file embedded not at all (moved from test_documents.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgpt.runtime.documents.ingest import ingest, open_store
from pgpt.runtime.documents.retrieval import search
from pgpt.runtime.settings import Settings


def test_a_large_file_shows_progress_inside_it_and_stops_between_batches(settings: Settings, embedder,  # type: ignore[no-untyped-def]
                                                                         tmp_path: Path, monkeypatch) -> None:
    """One 20 MB text showed "0/12 files 0 chunks ETA ?" for 8 minutes and Ctrl-C waited for the
    whole file: now each batch of chunks is a tick, and a cancel stops before the next batch."""
    import threading

    from pgpt.runtime.documents import chunk_vectors
    from pgpt.runtime.errors import Cancelled

    monkeypatch.setattr(chunk_vectors, "EMBED_BATCH", 8)  # the property, at a size a test embeds in seconds
    from pgpt.runtime.documents import progress as progress_module

    monkeypatch.setattr(progress_module, "ETA_AFTER_S", 0.0)  # an ETA inside the file, in a run of seconds
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "big.txt").write_text("\n\n".join(f"Paragraph {n} is about harbour number {n} and its {n} boats. " * 12
                                              for n in range(60)))
    ticks, cancel = [], threading.Event()

    def stop_at_second_batch(tick) -> None:  # type: ignore[no-untyped-def]
        ticks.append(tick)
        if tick.file_chunks_done >= 16:
            cancel.set()

    with pytest.raises(Cancelled, match="stopped after 0 of 1 files"):
        ingest(settings, [docs], embedder, progress=stop_at_second_batch, cancel=cancel)
    inside = [t for t in ticks if t.file_chunks]
    # the chunk count as soon as the file is cut (0 embedded), then each batch
    assert [t.file_chunks_done for t in inside] == [0, 8, 16] and inside[0].file_chunks > 16
    assert 0 < inside[1].fraction < inside[2].fraction < 1 and inside[2].eta_s is not None
    assert open_store(settings, embedder).chunk_count() == 0  # nothing of the stopped file was written
    assert chunk_vectors.kept_path(settings).is_file()  # but its 16 vectors are kept (t53: all were made again)
    embedded = count_embedded(embedder, monkeypatch)
    done = ingest(settings, [docs], embedder)
    assert len(done.added) == 1 and done.chunks == inside[0].file_chunks
    assert len(embedded) == done.chunks - 16 and not chunk_vectors.kept_path(settings).exists()
    assert_vectors_as_embedded_now(settings, embedder)


def count_embedded(embedder, monkeypatch: pytest.MonkeyPatch) -> list[str]:  # type: ignore[no-untyped-def]
    """The texts the embedder is given from now on (this test's)."""
    texts: list[str] = []
    embed = embedder.embed
    monkeypatch.setattr(embedder, "embed", lambda batch, **kw: (texts.extend(batch), embed(batch, **kw))[1])
    return texts


def assert_vectors_as_embedded_now(settings: Settings, embedder) -> None:  # type: ignore[no-untyped-def]
    """Every chunk's vector is the one its text gets when embedded now, reused or not."""
    import numpy as np

    from pgpt.runtime.documents.chunk_vectors import embedding_text

    store = open_store(settings, embedder)
    rows = store.table.search().select(["text", "heading", "vector"]).limit(store.chunk_count()).to_list()
    fresh = embedder.embed([embedding_text(r["heading"], r["text"]) for r in rows])
    assert np.allclose(np.array([r["vector"] for r in rows]), fresh, atol=1e-5)


def test_an_edited_paragraph_is_the_only_one_embedded_again(settings: Settings, embedder, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """An edit to one paragraph of a long manual embedded all of its chunks again."""
    manual = tmp_path / "manual.md"
    sections = [f"# Part {n}\n\n" + f"Part {n} covers harbour {n}: its {n} quays, cranes and the boats they load. " * 8
                for n in range(40)]  # sections of about a chunk each, as in a manual
    manual.write_text("\n\n".join(sections))
    first = ingest(settings, [manual], embedder)
    sections[17] = sections[17].replace("Part 17 covers harbour 17", "The keeper of lighthouse 17 is Oskar Tallgren", 1)
    manual.write_text("\n\n".join(sections))
    embedded = count_embedded(embedder, monkeypatch)
    second = ingest(settings, [manual], embedder)
    assert second.updated == [str(manual)] and first.chunks >= 20, (first.chunks, second.chunks)
    assert 1 <= len(embedded) <= 2 and "Oskar Tallgren" in " ".join(embedded), embedded
    # said so: "40 chunks in 2.9 s (252.7 chunks/s)" counted the kept ones as embedded (t64)
    assert first.embedded == first.chunks and second.embedded == len(embedded) < second.chunks
    assert f"{second.chunks} chunks ({len(embedded)} embedded, the others' vectors kept)" in second.summary()
    assert second.chunks_per_s == second.embedded / second.seconds
    assert_vectors_as_embedded_now(settings, embedder)
    top = search(open_store(settings, embedder), embedder, "Who keeps the lighthouse of harbour 17?", k=1)[0]
    assert "Oskar Tallgren" in top.text


def test_a_copy_of_an_indexed_file_is_not_embedded_again(settings: Settings, embedder, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A server's upload of a file already added from its folder was embedded again in full, 443
    chunks in 47.6 s (t67): the same content under another path takes the indexed copy's vectors."""
    first, second = tmp_path / "a" / "manual.md", tmp_path / "b" / "manual-copy.md"
    for path in (first, second):
        path.parent.mkdir()
        path.write_text("\n\n".join(f"# Part {n}\n\n" + f"Part {n} covers harbour {n} and its cranes. " * 8
                                     for n in range(12)))
    ingest(settings, [first], embedder)
    embedded = count_embedded(embedder, monkeypatch)
    copy = ingest(settings, [second], embedder)
    assert copy.added == [str(second)] and copy.embedded == 0 and embedded == [] and copy.chunks >= 6
    assert_vectors_as_embedded_now(settings, embedder)
