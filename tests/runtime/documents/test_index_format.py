"""An index written by an older reader and chunker is noticed and re-chunked by the next ingest."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pytest

from pgpt.runtime.documents import ingest as ingest_module, store as store_module
from pgpt.runtime.documents.ingest import ingest, open_store
from pgpt.runtime.documents.text_format import TEXT_FORMAT
from pgpt.runtime.settings import Settings
from support import cli_env


@pytest.fixture()
def old_index(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """An index as pgpt wrote it before text formats were recorded: no format on the text column."""
    from pgpt.runtime.llm.embeddings import default_embedder

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferry.md").write_text("# Ferry\n\nThe ferry leaves at noon.\n")
    (docs / "bakery.txt").write_text("The bakery opens at six.\n")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("Project Zephyr's code is 7341.\n")
    embedder = default_embedder(settings)
    schema = store_module.DocumentStore._schema

    def format_1(self):  # type: ignore[no-untyped-def]
        fields = schema(self)
        return fields.set(fields.get_field_index("text"), pa.field("text", pa.string()))

    with monkeypatch.context() as patch:  # the pgpt of format 1 knew no other format
        patch.setattr(store_module.DocumentStore, "_schema", format_1)
        patch.setattr(ingest_module, "TEXT_FORMAT", 1)
        ingest(settings, [docs], embedder)
        ingest(settings, [other], embedder, collection="archive")
    assert open_store(settings, embedder).text_format == 1
    return settings, embedder, docs, other


def test_the_next_ingest_rechunks_every_document_and_says_so(old_index) -> None:  # type: ignore[no-untyped-def]
    from pgpt.runtime.documents.index_folder import index_state

    settings, embedder, docs, other = old_index
    # doctor says it before the ingest does it (it said "ok" and the user learnt of it afterwards)
    assert re.search(r": ok, 3 documents, 3 chunks, \d+ MB on disk, made by an older pgpt", index_state(settings))
    assert index_state(settings).endswith(f"made by an older pgpt (text format 1, this "
                                          f"one writes {TEXT_FORMAT}): the next ingest reads and chunks all its 3 "
                                          "documents again")
    ticks: list = []
    report = ingest(settings, [docs / "ferry.md"], embedder, progress=ticks.append)
    assert sorted(Path(p).name for p in report.rechunked) == ["bakery.txt", "ferry.md", "notes.txt"]
    assert {t.total for t in ticks} == {3}  # ferry.md, asked for and re-chunked, once (it counted 0/4)
    assert report.rechunked_from == 1 and not report.added and not report.updated and not report.unchanged
    assert not report.found_nothing()  # it said "No files found under PATH" above this summary
    assert f"text format 1), so its 3 documents were read and chunked again (format {TEXT_FORMAT})" in report.summary()
    store = open_store(settings, embedder)
    assert store.text_format == TEXT_FORMAT
    assert {(Path(d.path).name, d.collection) for d in store.documents()} == {
        ("ferry.md", "default"), ("bakery.txt", "default"), ("notes.txt", "archive")}
    again = ingest(settings, [docs], embedder)
    assert not again.rechunked and not again.rechunked_from and len(again.unchanged) == 2
    assert re.search(r": ok, 3 documents, 3 chunks, \d+ MB on disk$", index_state(settings))


@pytest.mark.slow
def test_the_cli_reports_the_rechunked_documents(old_index) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    settings, _, docs, _ = old_index
    done = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", "ingest", str(docs), "--json"],
                          capture_output=True, text=True, env=cli_env(settings), timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["rechunked_from_format"] == 1 and len(report["rechunked"]) == 3


def test_an_upgrade_from_format_5_reads_only_the_kinds_whose_reading_changed(settings: Settings, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Formats 6 to 8 changed how PDFs, HTML pages, Markdown, Word and RTF files are read, nothing else:
    re-embedding every text file of a big index for it would cost the user an hour for nothing."""
    from pgpt.runtime.documents.index_folder import index_state
    from pgpt.runtime.llm.embeddings import default_embedder
    from support import make_pdf

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferry.txt").write_text("Ferry\n=====\n\nThe ferry leaves at noon.\n")
    make_pdf(docs / "invoices.pdf", [f"Invoice {1000 + n} for customer {7 * n}: total {125 * n} euros."
                                     for n in range(1, 5)])
    embedder = default_embedder(settings)
    with monkeypatch.context() as patch:
        patch.setattr(store_module, "TEXT_FORMAT", 5)
        patch.setattr(ingest_module, "TEXT_FORMAT", 5)
        ingest(settings, [docs], embedder)
    assert open_store(settings, embedder).text_format == 5
    assert index_state(settings).endswith(
        "the next ingest reads and chunks its .docx, .htm, .html, .ipynb, .markdown, .md, .pdf, .rest, .rst, .rtf "
        "documents again")
    report = ingest(settings, [docs], embedder)
    assert [Path(p).name for p in report.rechunked] == ["invoices.pdf"] and len(report.unchanged) == 1
    assert open_store(settings, embedder).text_format == TEXT_FORMAT
