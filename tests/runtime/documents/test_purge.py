"""A forgotten document's text leaves the disk: the index's files and the answers cached from it."""

from __future__ import annotations

from pathlib import Path

from pgpt.runtime.documents.answers import AskStream
from pgpt.runtime.documents.ingest import forget_document, forget_path, ingest, open_store
from pgpt.runtime.documents.retrieval import search
from pgpt.runtime.llm.chat import ChatEngine
from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.settings import Settings

SECRET = b"7781-QZ"


def _on_disk(home: Path, needle: bytes) -> list[str]:
    return [str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_a_forgotten_documents_text_leaves_the_index_files_and_the_answer_cache(settings: Settings, embedder,
                                                                                tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """t60: after `forget` (or --prune, or the server's DELETE) nothing answered from the document
    any more, but its text stayed in the index's data files until a compaction that might never come,
    and in the answer cache, passages included, until its size cap evicted it."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "vault.txt").write_text("The vault code is 7781-QZ. Only the night manager may open it.\n")
    (docs / "ferry.txt").write_text("The ferry to the island leaves at noon every Tuesday.\n")
    (docs / "menu.txt").write_text("The canteen serves soup on Mondays and fish on Fridays.\n")
    ingest(settings, [docs], embedder)  # its end compacts: the three share one data file
    engine = ChatEngine(settings)
    try:
        store = open_store(settings, embedder)
        asked = AskStream(engine, store, embedder, "What is the vault code?", SamplingOptions(max_new_tokens=32))
        list(asked)
        assert "7781-QZ" in str(asked.result.as_json())
        chat = engine.stream([{"role": "user", "content": "Say hello."}], SamplingOptions(max_new_tokens=8))
        chat_answer = "".join(chat)
        assert _on_disk(settings.home, SECRET)

        forget_path(settings, embedder, str(docs / "vault.txt"))
        assert _on_disk(settings.home, SECRET) == []
        store = open_store(settings, embedder)
        assert [Path(h.source).name for h in search(store, embedder, "ferry island", k=3)][0] == "ferry.txt"
        again = AskStream(engine, store, embedder, "What is the vault code?", SamplingOptions(max_new_tokens=32))
        list(again)
        assert not again.result.cached and "7781" not in str(again.result.as_json())
        chat = engine.stream([{"role": "user", "content": "Say hello."}], SamplingOptions(max_new_tokens=8))
        assert "".join(chat) == chat_answer and chat.result.cached  # chat answers stay cached

        record = next(d for d in store.documents() if d.path.endswith("menu.txt"))
        assert forget_document(settings, embedder, record.doc_id) is not None  # the server's DELETE
        assert _on_disk(settings.home, b"fish on Fridays") == []
        assert [d.path for d in open_store(settings, embedder).documents()] == [str((docs / "ferry.txt").resolve())]
    finally:
        engine.close()


def test_a_stopped_add_of_a_folder_since_deleted_keeps_neither_its_note_nor_its_vectors(settings: Settings,
                                                                                     tmp_path: Path) -> None:
    """t60: a stopped add of a confidential folder, then the folder deleted: its stopped file's vectors
    stayed a week, and doctor kept advising `pgpt-tui ingest` of the folder that was gone."""
    import json
    import subprocess
    import sys

    import numpy as np

    from pgpt.runtime.documents.chunk_vectors import KeptVectors, text_key
    from pgpt.runtime.documents.unfinished import marker_file, markers_dir, unfinished_adds

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    markers_dir(settings).mkdir(parents=True, exist_ok=True)
    gone, here = tmp_path / "secret-folder", tmp_path / "docs"
    for folder in (gone, here):  # each add stopped inside a file, whose vectors were kept
        KeptVectors(settings, "embedder").keep(folder.name, [text_key(folder.name)], np.ones((1, 4), np.float32),
                                               str(folder / "big.log"))
    here.mkdir()
    for folder in (gone, here):
        record = {"paths": [str(folder)], "collection": "default", "done": 3, "total": 9, "pid": int(dead.stdout)}
        marker_file(settings, [folder], "default").write_text(json.dumps(record))
    assert [add.paths for add in unfinished_adds(settings)] == [[str(here)]]  # the other one's folder is gone
    assert not marker_file(settings, [gone], "default").exists()
    assert KeptVectors(settings, "embedder").for_document(None, gone.name, None) == {}
    assert len(KeptVectors(settings, "embedder").for_document(None, here.name, None)) == 1  # the other add's stay


def test_pgpts_own_state_files_are_private_whatever_the_umask(settings: Settings, embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """config.json, index/active.json, the writer lock and an add's marker were 0644 (their folders
    are 0700, but a `cp -r` of one keeps the mode; t60)."""
    import os
    import stat

    from pgpt.runtime.documents.unfinished import remembered
    from pgpt.runtime.documents.progress import IngestProgress
    from pgpt.runtime.user_config import write_config

    old = os.umask(0o022)
    try:
        docs = tmp_path / "docs"
        docs.mkdir()
        (docs / "a.txt").write_text("The ferry leaves at noon.\n")
        (docs / "b.txt").write_text("The bakery opens at six.\n")
        ingest(settings, [docs], embedder)
        forget_path(settings, embedder, str(docs / "b.txt"))  # a purge publishes a table: active.json
        write_config(settings, {"chat_model": "x"})
        with remembered(settings, [docs], "default") as tick:
            tick(IngestProgress(1, 3, "a.txt", 1, None))
            markers = list((settings.home / "unfinished-adds").glob("*.json"))
            assert markers and all(stat.S_IMODE(m.stat().st_mode) == 0o600 for m in markers)
    finally:
        os.umask(old)
    for path in (settings.config_file, settings.home / "index" / "active.json", settings.home / "index" / ".writer.lock",
                 settings.home / "index" / "compacted"):  # the last was 0644 (t66)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_forgetting_an_uploaded_document_deletes_the_servers_copy(settings: Settings, embedder) -> None:  # type: ignore[no-untyped-def]
    """The server's DELETE removed the copy it keeps of an upload; `pgpt-tui forget` of the same
    document left the file under PGPT_HOME/uploads, which nothing listed any more (t60)."""
    stored = settings.home / "uploads" / "default" / "hr" / "salary.txt"
    stored.parent.mkdir(parents=True)
    stored.write_text("The salary band of grade 7 is OTTER-5150.\n")
    outside = settings.home.parent / "mine.txt"
    outside.write_text("A document of the user's own, indexed from where it is.\n")
    ingest(settings, [stored, outside], embedder)
    forget_path(settings, embedder, str(stored))
    forget_path(settings, embedder, str(outside))
    assert not stored.exists() and outside.exists()  # the user's own file is never deleted
