"""Writes to a growing document index: pgpt's compaction and version clean-up against LanceDB's defaults.

A tester's 2,673 files left 357 MB of kept manifests beside 75 MB of chunks, and every later
one-file write took 7-8.5 s. This builds the same shape of index through the real
:class:`DocumentStore` (random vectors: no embedding, so only the index's own cost is measured),
once as pgpt writes it and once as it wrote it before (every document merged in, LanceDB's 7-day
version retention, no compaction until the end), then times single-document writes on each, and
looks at the disk once pgpt's clean-up window (a minute) has passed.

    python -m pgpt.bench.index_writes [--documents 2500] [--chunks 7] [--folder DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

WORDS = "harbour kettle penetration findings ticket priority response minutes office seat report quarter".split()


def _rows(rng: Any, doc_id: str, path: str, count: int) -> list[dict[str, Any]]:
    return [dict(chunk_id=f"{doc_id}-{n}", doc_id=doc_id, collection="default", path=path, content_hash=doc_id,
                 text=" ".join(rng.choice(WORDS, 150)), heading="Report", page=0, start=n * 1000, end=n * 1000 + 900)
            for n in range(count)]


def _disk_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


@contextmanager
def _policy(name: str) -> Iterator[None]:
    """``before``: the store as it was (merge for every document, 7-day versions, a compaction at the
    end of every ingest and none before)."""
    from pgpt.runtime.documents import compaction
    from pgpt.runtime.documents import store as store_module

    saved = store_module.COMPACT_EVERY, store_module.CLEANUP_AFTER_S, compaction.OPTIMIZE_FRAGMENTS
    if name == "before":
        store_module.COMPACT_EVERY, store_module.CLEANUP_AFTER_S = 10**9, 7 * 24 * 3600
        compaction.OPTIMIZE_FRAGMENTS = 1
    try:
        yield
    finally:
        store_module.COMPACT_EVERY, store_module.CLEANUP_AFTER_S, compaction.OPTIMIZE_FRAGMENTS = saved


def run_policy(name: str, home: Path, documents: int, chunks: int) -> dict[str, Any]:
    """Build the index under policy ``name``, then time three one-document writes (each with the
    end-of-ingest step, as `pgpt-tui ingest FILE` and an upload run it)."""
    import numpy as np

    from pgpt.runtime.documents import store as store_module
    from pgpt.runtime.documents.store import DocumentStore
    from pgpt.runtime.settings import Settings

    rng = np.random.default_rng(0)
    with _policy(name):
        store = DocumentStore(Settings(home=home, model_cache=home / "models"), "bench", "bench", 384)
        started = time.perf_counter()
        for n in range(documents):
            doc_id = uuid.uuid4().hex
            store.replace_document(doc_id, _rows(rng, doc_id, f"/corpus/doc-{n}.md", chunks),
                                   rng.standard_normal((chunks, 384)).astype(np.float32), new=name != "before")
        store.finish_batch()
        build_s = time.perf_counter() - started
        built_mb = _disk_mb(store.folder)
        writes = []
        for n in range(3):
            doc_id = uuid.uuid4().hex
            started = time.perf_counter()
            store.replace_document(doc_id, _rows(rng, doc_id, f"/upload/{n}.md", 1),
                                   rng.standard_normal((1, 384)).astype(np.float32), new=name != "before")
            store.finish_batch()
            writes.append(round(time.perf_counter() - started, 2))
        after_writes = _disk_mb(store.folder)
        # pgpt removes versions once they are CLEANUP_AFTER_S old, at the next write: wait, write once more
        time.sleep(store_module.CLEANUP_AFTER_S + 1 if name != "before" else 0)
        doc_id = uuid.uuid4().hex
        store.replace_document(doc_id, _rows(rng, doc_id, "/upload/last.md", 1),
                               rng.standard_normal((1, 384)).astype(np.float32), new=name != "before")
        store.finish_batch()
        table = store.folder / f"{store.name}.lance"
        return {"policy": name, "documents": documents, "chunks": documents * chunks, "build_s": round(build_s, 1),
                "disk_after_build_mb": round(built_mb), "one_document_write_s": writes,
                "disk_after_writes_mb": round(after_writes), "disk_a_minute_later_mb": round(_disk_mb(store.folder)),
                "versions_kept": len(list((table / "_versions").iterdir()))}


def main(argv: list[str] | None = None) -> None:
    """Run both policies one after the other on fresh folders and print a table (or JSON)."""
    parser = argparse.ArgumentParser(prog="python -m pgpt.bench.index_writes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=2500)
    parser.add_argument("--chunks", type=int, default=7, help="chunks per document")
    parser.add_argument("--folder", type=Path, help="where to build (default: a temporary folder, removed)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    base = args.folder or Path(tempfile.mkdtemp(prefix="pgpt-index-writes-"))
    try:
        results = [run_policy(name, base / name, args.documents, args.chunks) for name in ("before", "pgpt")]
    finally:
        if args.folder is None:
            shutil.rmtree(base, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=1))
        return
    print("| policy | documents / chunks | build | disk after build | one-document writes | disk after them | "
          "a minute later, after one more write | versions kept then |")
    print("|---|---|---:|---:|---|---:|---:|---:|")
    for r in results:
        print(f"| {r['policy']} | {r['documents']} / {r['chunks']} | {r['build_s']} s | {r['disk_after_build_mb']} MB | "
              f"{', '.join(f'{w} s' for w in r['one_document_write_s'])} | {r['disk_after_writes_mb']} MB | "
              f"{r['disk_a_minute_later_mb']} MB | {r['versions_kept']} |")


if __name__ == "__main__":
    main()
