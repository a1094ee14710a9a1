"""`python -m pgpt.bench.readers`: what reading documents in a worker process costs.

The ingest reads every file in a child process (pgpt.runtime.documents.isolation) so that a
reader that hangs, crashes or eats memory costs one file, never the run. This measures the price,
side by side in one run on the bench-docs corpus (build_corpus: Markdown, reStructuredText, HTML,
PDF and DOCX made from texts nobody on the team wrote): each file read in this process
(read_document) and through the child (a JSON line each way), the child's start, and a whole
ingest of the same corpus for scale.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def run_reader_bench(settings: Any, repeats: int = 5) -> dict[str, Any]:
    """Per-file read times in process and isolated (median of ``repeats``), start cost, ingest time."""
    from pgpt.bench.documents import build_corpus
    from pgpt.runtime.documents.ingest import ingest
    from pgpt.runtime.documents.isolation import IsolatedReader
    from pgpt.runtime.documents.readers import read_document
    from pgpt.runtime.llm.embeddings import default_embedder

    with tempfile.TemporaryDirectory(prefix="pgpt-bench-readers-") as tmp:
        files = build_corpus(Path(tmp) / "corpus")
        for path in files:  # imports (pypdf, python-docx, charset detection) out of the way first
            read_document(path)
        started = time.perf_counter()
        with IsolatedReader(settings.read_timeout_s, settings.read_memory_mb) as reader:
            reader.read(files[0])
            start_s = time.perf_counter() - started
            for path in files:  # the child's imports, too
                reader.read(path)
            rows = [_time_file(path, reader, repeats) for path in files]
        embedder = default_embedder(settings)
        report = ingest(dataclasses.replace(settings, home=Path(tmp) / "home"), [Path(tmp) / "corpus"], embedder)
    inside = sum(r["in_process_ms"] for r in rows)
    isolated = sum(r["isolated_ms"] for r in rows)
    return {"files": rows, "child_start_s": round(start_s, 3), "in_process_ms": round(inside, 1),
            "isolated_ms": round(isolated, 1), "overhead_ms_per_file": round((isolated - inside) / len(rows), 2),
            "ingest_s": round(report.seconds, 2), "chunks": report.chunks}


def _time_file(path: Path, reader: Any, repeats: int) -> dict[str, Any]:
    from pgpt.runtime.documents.readers import read_document

    inside, isolated = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        read_document(path)
        inside.append(time.perf_counter() - started)
        started = time.perf_counter()
        reader.read(path)
        isolated.append(time.perf_counter() - started)
    return {"file": path.name, "kb": round(path.stat().st_size / 1024, 1),
            "in_process_ms": round(statistics.median(inside) * 1000, 2),
            "isolated_ms": round(statistics.median(isolated) * 1000, 2)}


def format_results(results: dict[str, Any]) -> str:
    """The table printed without --json."""
    lines = [f"{'file':<24} {'KB':>7} {'in process':>11} {'isolated':>9}"]
    lines += [f"{r['file']:<24} {r['kb']:>7.1f} {r['in_process_ms']:>9.2f}ms {r['isolated_ms']:>7.2f}ms"
              for r in results["files"]]
    lines.append(f"all files: {results['in_process_ms']:.1f} ms in process, {results['isolated_ms']:.1f} ms "
                 f"isolated ({results['overhead_ms_per_file']:.2f} ms more per file); the child starts in "
                 f"{results['child_start_s']:.2f} s, beside the ingest's own start; a whole ingest of the same "
                 f"files: {results['ingest_s']:.2f} s ({results['chunks']} chunks)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m pgpt.bench.readers [--repeats N] [--json]``."""
    from pgpt.runtime.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m pgpt.bench.readers", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = run_reader_bench(Settings.from_env(), args.repeats)
    print(json.dumps(results, indent=2) if args.json else format_results(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
