"""The ETA of an ingestion, from the bytes done, leaving out the files found unchanged."""

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
        shares.unchanged(index)
    started = time.perf_counter() - 10.0  # 10 s ago; half of them hashed, then one indexed
    naive = tick(6, 10, "6.txt", 0, started, share=shares(6))
    honest = tick(6, 10, "6.txt", 0, started, share=shares(6), skipped=shares.skipped)
    assert naive.eta_s is not None and naive.eta_s < 7  # 10 s for 60%: 6.7 s for the rest
    assert honest.eta_s is not None and honest.eta_s > 35  # 10 s for one file of real work: 40 s for four
    assert tick(5, 10, "5.txt", 0, started, share=shares(5), skipped=shares.skipped).eta_s is None  # none yet
