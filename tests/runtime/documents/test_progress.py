"""The ETA of an ingestion, from the bytes done, leaving out the files found unchanged or skipped."""

from __future__ import annotations

import time
from pathlib import Path

from pgpt.runtime.documents.progress import WorkShares, tick


def test_files_found_unchanged_do_not_speed_up_the_eta(tmp_path: Path) -> None:
    """A stopped run that went on read "ETA 1 s" for 6 s and more with 100 files left: the unchanged
    files it hashed in a moment counted as work done at that speed."""
    paths = []
    for n in range(10):
        paths.append(tmp_path / f"{n}.txt")
        paths[-1].write_bytes(b"x" * 1000)
    shares = WorkShares(paths)
    for index in range(5):  # the first half was indexed by the run before: found unchanged
        shares.passed_over(index)
    started = time.perf_counter() - 10.0  # 10 s ago; half of them hashed, then one indexed
    naive = tick(6, 10, "6.txt", 0, started, share=shares(6))
    honest = tick(6, 10, "6.txt", 0, started, share=shares(6), skipped=shares.skipped)
    assert naive.eta_s is not None and naive.eta_s < 7  # 10 s for 60%: 6.7 s for the rest
    assert honest.eta_s is not None and honest.eta_s > 35  # 10 s for one file of real work: 40 s for four
    assert tick(5, 10, "5.txt", 0, started, share=shares(5), skipped=shares.skipped).eta_s is None  # none yet


def test_no_eta_in_the_first_seconds() -> None:
    """Six small files showed "3/6 files 3 chunks ETA 99s" in a run of 2.3 s: in its first
    seconds a run's time goes to starting the reader, not to its bytes, and the ETA waits."""
    from pgpt.runtime.documents.progress import ETA_AFTER_S, eta

    assert eta(time.perf_counter() - 0.8, share=0.03) is None  # 3% of the bytes in 0.8 s: "ETA 26s" before
    assert eta(time.perf_counter() - (ETA_AFTER_S - 0.2), share=0.5) is None
    later = eta(time.perf_counter() - 4.0, share=0.5)  # 4 s for half of the bytes: 4 s for the rest
    assert later is not None and 3.9 < later < 4.5


def test_a_large_file_skipped_does_not_count_as_work_done(settings, embedder, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                          monkeypatch) -> None:
    """A large file the reader skips at once (a damaged or scanned PDF, a damaged .docx) counted as
    done work at that speed: the small files after it, still to embed, read "ETA 4s" for a minute
    (t47). Its share is passed over, as an unchanged file's is."""
    import os

    import pgpt.runtime.documents.ingest as ingest_module

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a-damaged.docx").write_bytes(b"PK\x03\x04" + os.urandom(100_000))  # skipped by the reader
    for n in range(3):
        (docs / f"note{n}.txt").write_text(f"Note {n}: the ferry leaves at {n + 9} o'clock.\n")
    seen: list[tuple[float, float]] = []

    def recording(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append((kwargs.get("share", 0.0), kwargs.get("skipped", 0.0)))
        return tick(*args, **kwargs)

    monkeypatch.setattr(ingest_module, "tick", recording)
    report = ingest_module.ingest(settings, [docs], embedder, progress=lambda _: None)
    assert [Path(p).name for p, _ in report.skipped] == ["a-damaged.docx"] and len(report.added) == 3
    share, skipped = seen[-1]  # the last file's tick: the skipped one is nearly all the bytes, none of the work
    assert share > 0.9 and share - skipped < 0.1


def test_a_resumed_files_kept_vectors_do_not_speed_up_the_eta(tmp_path: Path) -> None:
    """t67: a resumed add of rows.csv read "ETA 1056 s" with about 3,000 s to go: the 1,023 chunks
    whose vectors were kept counted as work done in its first second."""
    import numpy as np

    from pgpt.runtime.documents.chunk_vectors import chunk_rows, embedding_text, text_key
    from pgpt.runtime.documents.readers import Section

    class Embedder:
        dimension = 4

        def count_tokens(self, text: str) -> int:
            return len(text.split())

        def embed(self, texts: list[str]) -> np.ndarray:
            return np.ones((len(texts), 4), np.float32)

    sections = [Section(" ".join(f"row {i} cell {j}." for j in range(60))) for i in range(400)]
    rows, _ = chunk_rows(Embedder(), sections, "doc", "default", "rows.csv", "hash")
    known = {text_key(embedding_text(r["heading"], r["text"])): np.ones(4, np.float32) for r in rows[:len(rows) // 2]}
    heard: list[tuple[int, int, int]] = []
    chunk_rows(Embedder(), sections, "doc", "default", "rows.csv", "hash",
               within=lambda *counts: heard.append(counts), known=known)
    assert heard[0] == (len(known), len(rows), len(known))  # where it goes on from, all of it known
    assert heard[-1] == (len(rows), len(rows), len(known))

    path = tmp_path / "rows.csv"
    path.write_bytes(b"x" * 1000)
    shares = WorkShares([path])
    started = time.perf_counter() - 30.0  # 30 s for a quarter embedded after half was kept
    shares.reused(0, 0.5)
    honest = tick(0, 1, "rows.csv", 0, started, share=shares(0, 0.75), skipped=shares.skipped)
    naive = tick(0, 1, "rows.csv", 0, started, share=shares(0, 0.75))
    assert naive.eta_s is not None and naive.eta_s < 11  # 75% in 30 s: "10 s" left
    assert honest.eta_s is not None and 29 < honest.eta_s < 31  # 25% in 30 s: 30 s for the last 25%


def test_a_large_file_says_it_is_read_then_its_chunk_count_at_once(tmp_path: Path) -> None:
    """t67: a 60 MB log showed "0/1 files 0 chunks ETA ? app.log" for 3 minutes while it was read and
    cut into chunks, and its chunk count only after the first batch was embedded."""
    import numpy as np

    from pgpt.runtime.documents.chunk_vectors import chunk_rows
    from pgpt.runtime.documents.progress import READING_SHOWN_BYTES, shown_step
    from pgpt.runtime.documents.readers import Section

    large = tick(0, 1, "app.log", 0, time.perf_counter(), size=READING_SHOWN_BYTES)
    assert shown_step(large) == "reading it and cutting it into chunks"
    assert shown_step(tick(0, 1, "note.txt", 0, time.perf_counter(), size=2000)) == ""  # read in a moment
    assert shown_step(tick(0, 1, "app.log", 0, time.perf_counter(), 0, 900, size=READING_SHOWN_BYTES)) \
        == "0/900 chunks of it"

    class Embedder:
        dimension = 4

        def count_tokens(self, text: str) -> int:
            return len(text.split())

        def embed(self, texts: list[str]) -> np.ndarray:
            assert heard, "the chunk count is heard before the first batch is embedded"
            return np.ones((len(texts), 4), np.float32)

    heard: list[tuple[int, int, int]] = []
    sections = [Section(" ".join(f"line {i} word {j}." for j in range(60))) for i in range(400)]
    rows, _ = chunk_rows(Embedder(), sections, "doc", "default", "app.log", "hash",
                         within=lambda *counts: heard.append(counts))
    assert heard[0] == (0, len(rows), 0) and heard[-1] == (len(rows), len(rows), 0)


def test_the_time_before_the_first_file_is_not_counted_in_the_rate(settings, embedder, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                   monkeypatch) -> None:
    """11 small files read "ETA 194s" at the second one in a run of 8 s (t79): the seconds spent before
    any file (the writer lock, the index, the folders' listing) counted as the time of its bytes."""
    import pgpt.runtime.documents.ingest as ingest_module

    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(20):
        (docs / f"note{n:02}.txt").write_text(f"Note {n}: the ferry leaves at {n % 12 + 1} o'clock from pier {n}.\n")
    listing = ingest_module.collect_files

    def slow_listing(*args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(4.0)  # a slow share, or a large index opened: seconds before the first file
        return listing(*args, **kwargs)

    def slow_file(*args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(0.25)  # files of some size: the run lasts long enough for an ETA
        return one_file(*args, **kwargs)

    one_file = ingest_module._ingest_file
    monkeypatch.setattr(ingest_module, "collect_files", slow_listing)
    monkeypatch.setattr(ingest_module, "_ingest_file", slow_file)
    etas: list[float] = []
    begun = time.perf_counter()
    ingest_module.ingest(settings, [docs], embedder, progress=lambda t: etas.append(t.eta_s) if t.eta_s else None)
    files_s = time.perf_counter() - begun - 4.0
    # counted from the start, the first ETA shown was 4 s x 19 files at least; from the first file, at most the run
    assert etas and all(eta < 2 * files_s for eta in etas), (etas, files_s)
