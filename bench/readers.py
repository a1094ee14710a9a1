"""What reading documents in a worker process costs: ``python -m pgpt.bench.readers [FOLDER]``.

The ingest reads every file in a child process (``pgpt.runtime.documents.isolation``) so that
one hostile file cannot hang or crash the run. This measures the price, side by side in one run:
the same files read in this process and through the worker, the worker's start (Python and the
parsers' imports) apart from the per-file time. The default folder is bench-docs' corpus.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from pgpt.runtime.documents.isolation import IsolatedReader
from pgpt.runtime.documents.readers import read_document

CORPUS = Path(__file__).parent / "data" / "documents"


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix != ".json")


def measure(files: list[Path], repeats: int) -> dict[str, float]:
    """Median seconds for reading ``files`` in process and in the worker, and the worker's start."""
    inline, isolated, starts = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for path in files:
            read_document(path)
        inline.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with IsolatedReader(timeout_s=120, memory_mb=4096) as reader:
            reader.read(files[0])  # waits for the child's start and reads one file
            starts.append(time.perf_counter() - t0 - inline[-1] / len(files))
            t1 = time.perf_counter()
            for path in files:
                reader.read(path)
            isolated.append(time.perf_counter() - t1)
    n = len(files)
    return {"files": n, "inline_ms_per_file": statistics.median(inline) / n * 1000,
            "worker_ms_per_file": statistics.median(isolated) / n * 1000,
            "worker_start_s": statistics.median(starts)}


def main() -> None:
    """Print the comparison for one folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=CORPUS)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    result = measure(_files(args.folder), args.repeats)
    print(f"{result['files']} files: in process {result['inline_ms_per_file']:.1f} ms/file, "
          f"worker {result['worker_ms_per_file']:.1f} ms/file, worker start {result['worker_start_s']:.2f} s")


if __name__ == "__main__":
    main()
