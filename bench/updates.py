"""Adding documents again after an edit or a stop: chunks embedded and seconds, with the vectors
pgpt keeps (chunk_vectors.py) and without them, in one run.

Two cases, on the manuals corpus (bench/data/manuals: real long documents):
- ``edit``: the corpus is indexed, then one sentence in the middle of three documents (text,
  Markdown, HTML) is changed, and the folder is added again;
- ``stop``: one large text file (the corpus's text and Markdown files, repeated) is added and
  stopped once ``--stop-at`` of its chunks are embedded, then added again.
Each case runs in two homes from the same start: ``reuse`` (pgpt as it is) and ``again`` (the
kept vectors ignored, as before). The embedder is the default model.

    python -m pgpt.bench.updates [--repeat 4] [--stop-at 0.75] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from pgpt.bench.corpora import MANUALS

EDITED = ("lgpl-2.1.txt", "black-basics.md", "flask-config.html")


@contextmanager
def _counted(embedder: Any) -> Iterator[list[int]]:
    """The number of texts ``embedder`` is given inside the block."""
    count = [0]
    embed = embedder.embed

    def counting(texts: list[str], **options: Any) -> Any:
        count[0] += len(texts)
        return embed(texts, **options)

    embedder.embed = counting
    try:
        yield count
    finally:
        del embedder.embed  # the class's method again


@contextmanager
def _without_reuse(way: str) -> Iterator[None]:
    """``again``: the kept vectors are not read (each text embedded, as before they were kept)."""
    from pgpt.runtime.documents.chunk_vectors import KeptVectors

    if way == "reuse":
        yield
        return
    original = KeptVectors.for_document
    KeptVectors.for_document = lambda self, store, content_hash, old_doc_id: {}  # type: ignore[method-assign]
    try:
        yield
    finally:
        KeptVectors.for_document = original  # type: ignore[method-assign]


def _edit_middle(path: Path) -> None:
    """Change one sentence near the middle of ``path`` (one word, where a sentence ends)."""
    text = path.read_text(encoding="utf-8")
    at = text.index(". ", len(text) // 2)
    path.write_text(f"{text[:at]} (edited for the benchmark){text[at:]}", encoding="utf-8")


def _timed_ingest(settings: Any, paths: list[Path], embedder: Any, **options: Any) -> tuple[float, int, Any]:
    from pgpt.runtime.documents.ingest import ingest

    with _counted(embedder) as count:
        started = time.perf_counter()
        report = ingest(settings, paths, embedder, **options)
    return time.perf_counter() - started, count[0], report


def edit_case(work: Path, way: str, model_cache: Path) -> dict[str, Any]:
    """Index the corpus, edit three documents, add the folder again."""
    from pgpt.runtime.llm.embeddings import default_embedder
    from pgpt.runtime.settings import Settings

    folder = work / way / "manuals"
    shutil.copytree(MANUALS, folder)
    settings = Settings(home=work / way / "home", model_cache=model_cache)
    embedder = default_embedder(settings)
    first_s, _, first = _timed_ingest(settings, [folder], embedder)
    for name in EDITED:
        _edit_middle(folder / name)
    with _without_reuse(way):
        seconds, count, report = _timed_ingest(settings, [folder], embedder)
    assert sorted(Path(p).name for p in report.updated) == sorted(EDITED), report.updated
    return {"index_s": round(first_s, 2), "chunks": first.chunks, "updated_chunks": report.chunks,
            "embedded_again": count, "update_s": round(seconds, 2)}


def stop_case(work: Path, way: str, model_cache: Path, repeat: int, stop_at: float) -> dict[str, Any]:
    """Add one large file, stop it at ``stop_at`` of its chunks, add it again."""
    from pgpt.runtime.errors import Cancelled
    from pgpt.runtime.llm.embeddings import default_embedder
    from pgpt.runtime.settings import Settings

    big = work / way / "large" / "manuals.txt"
    big.parent.mkdir(parents=True)
    texts = [p.read_text(encoding="utf-8") for p in sorted(MANUALS.iterdir()) if p.suffix in (".txt", ".md")]
    # each copy's paragraphs marked with its number: no chunk repeats another's text (a repeat needs no embedding)
    paragraphs = "\n\n".join(texts).split("\n\n")
    copies = ["\n\n".join(f"{paragraph} [{n}]" for paragraph in paragraphs) for n in range(repeat)]
    big.write_text("\n\n".join(copies), encoding="utf-8")
    settings = Settings(home=work / way / "home-large", model_cache=model_cache)
    embedder = default_embedder(settings)
    cancel, seen = threading.Event(), [0, 0]

    def progress(tick: Any) -> None:
        if tick.file_chunks:
            seen[:] = [tick.file_chunks_done, tick.file_chunks]
            if tick.file_chunks_done >= stop_at * tick.file_chunks:
                cancel.set()

    started = time.perf_counter()
    try:
        _timed_ingest(settings, [big], embedder, progress=progress, cancel=cancel)
    except Cancelled:
        pass
    stopped_s = time.perf_counter() - started
    with _without_reuse(way):
        seconds, count, report = _timed_ingest(settings, [big], embedder)
    unique = len({chunk["text"] for chunk in _chunk_texts(settings, embedder)})
    return {"chunks": report.chunks, "distinct_chunks": unique, "stopped_after": seen[0],
            "stopped_s": round(stopped_s, 2),
            "embedded_again": count, "resume_s": round(seconds, 2)}


def _chunk_texts(settings: Any, embedder: Any) -> list[dict[str, Any]]:
    from pgpt.runtime.documents.ingest import open_store

    store = open_store(settings, embedder)
    return store.table.search().select(["text"]).limit(store.chunk_count()).to_list()


def run(model_cache: Path, repeat: int, stop_at: float) -> dict[str, Any]:
    """Both cases, each way, in a temporary folder (the embedder from ``model_cache``)."""
    results: dict[str, Any] = {"edit": {}, "stop": {}}
    with tempfile.TemporaryDirectory(prefix="pgpt-bench-updates-") as tmp:
        for way in ("reuse", "again"):
            results["edit"][way] = edit_case(Path(tmp), way, model_cache)
            results["stop"][way] = stop_case(Path(tmp), way, model_cache, repeat, stop_at)
    return results


def main(argv: list[str] | None = None) -> None:
    """Print both cases, both ways (a table, or JSON)."""
    parser = argparse.ArgumentParser(prog="python -m pgpt.bench.updates", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=4, help="copies of the text files in the large file")
    parser.add_argument("--stop-at", type=float, default=0.75, help="share of the large file embedded before the stop")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from pgpt.runtime.settings import Settings

    results = run(Settings.from_env().model_cache, args.repeat, args.stop_at)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for case, ways in results.items():
        for way, row in ways.items():
            print(f"{case:5} {way:6} " + "  ".join(f"{k}={v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
