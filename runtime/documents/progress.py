"""Ingestion's progress: the ticks a command's bar, the app's line and a server's log show, and
the ETA, from the share of the run's bytes done (a large file's embedded chunks counted)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path


@dataclass(frozen=True)
class IngestProgress:
    """One tick: files looked at so far, of how many, and the current file; within a large file,
    its chunks embedded so far of how many (0 of 0 between files)."""

    done: int
    total: int
    current: str
    chunks: int
    eta_s: float | None
    file_chunks_done: int = 0
    file_chunks: int = 0
    reading: bool = False  # a large file is being read and cut into chunks: no chunk count yet

    @property
    def fraction(self) -> float:
        """The files done, counting the current one's embedded share: what a bar shows."""
        return self.done + (self.file_chunks_done / self.file_chunks if self.file_chunks else 0.0)


ETA_FROM_SHARE = 0.02
# Nor before 2 s: in a short run the reader process's start, not the bytes, takes the time, and six
# small files showed "3/6 files ETA 99s" in a run of 2.3 s. A run this short needs no ETA.
ETA_AFTER_S = 2.0


# A file this large is said to be read (a 60 MB log showed "0/1 files 0 chunks ETA ?" for 3 minutes
# while it was read and cut into chunks, t67); a small one is read in a moment.
READING_SHOWN_BYTES = 1 << 20


def tick(done: int, total: int, current: str, chunks: int, started: float, file_done: int = 0,
          file_chunks: int = 0, share: float = 0.0, skipped: float = 0.0, size: int = 0) -> IngestProgress:
    """A tick, with the ETA of ``eta``; ``size``: the bytes of the file about to be read."""
    eta_s = eta(started, share, skipped)
    return IngestProgress(done, total, current, chunks, eta_s, file_done, file_chunks,
                          size >= READING_SHOWN_BYTES and not file_chunks)


def shown_step(tick: IngestProgress) -> str:
    """What a bar or a line says after the current file's name: its chunks embedded, or that it is
    being read."""
    if tick.file_chunks:
        return f"{tick.file_chunks_done}/{tick.file_chunks} chunks of it"
    return "reading it and cutting it into chunks" if tick.reading else ""


def eta(started: float, share: float, skipped: float = 0.0) -> float | None:
    """Seconds left, from ``share``, the part of the work's bytes done (a file's embedded share
    counted): by files, a 4 MB file among small ones read "ETA 10s" with 90 s to go. The rate
    leaves out ``skipped``, the share of files passed over (found unchanged, hashed and not read, or
    skipped): when a stopped run went on, they made it read "ETA 1 s" with 100 files to index."""
    # Not before 2% of the bytes: while the first file loads, "ETA 337117s" was shown (the reader
    # process starting, a few chunks of a large file done); "ETA ?" says as much and no more.
    worked, elapsed = share - skipped, time.perf_counter() - started
    return elapsed * (1 - share) / worked if worked >= ETA_FROM_SHARE and elapsed >= ETA_AFTER_S else None


class WorkShares:
    """The part of a run's bytes that is done before file ``index`` (plus ``within`` of it)."""

    def __init__(self, paths: list[Path]) -> None:
        sizes = []
        for path in paths:
            try:
                sizes.append(max(path.stat().st_size, 1))
            except OSError:  # reported when the file itself is read
                sizes.append(1)
        self.sizes, self.total = sizes, max(sum(sizes), 1)
        self.before = [0, *accumulate(sizes)]  # bytes of the files before each one
        self.passed = 0.0  # the share of the files passed over
        self.known: dict[int, float] = {}  # the share of a file whose vectors were known, by file

    @property
    def skipped(self) -> float:
        """The share of the work that took no time: files passed over, and the chunks of a file whose
        vectors were known (kept from a stopped run, or an edited file's unchanged chunks)."""
        return self.passed + sum(self.known.values())

    def passed_over(self, index: int) -> None:
        """File ``index`` was found unchanged, or skipped (too large, binary, no text): its bytes took
        no time to speak of. A 210 MB file skipped as too large counted as done work, so that 2,000
        small files still to embed read "ETA 4s" for a minute (t47)."""
        self.passed += self.sizes[index] / self.total

    def reused(self, index: int, within: float) -> None:
        """``within`` of file ``index`` had its vectors already: right after a resume, 1,023 kept
        chunks counted as work done in the first second, and the ETA read 1,056 s with 3,000 s to go
        (t67)."""
        self.known[index] = self.sizes[index] * within / self.total

    def __call__(self, index: int, within: float = 0.0) -> float:
        return (self.before[index] + self.sizes[index] * within) / self.total
