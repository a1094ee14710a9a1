"""A damaged or missing ``index/active.json`` loses nothing (index_folder.read_pointer).

After a re-index the index is a table ``chunks-ID`` that active.json names. Cut short, emptied or
deleted, the pointer was read as "the first table": `docs` said nothing was indexed, and the next
ingest dropped the real table (7 MB, 236 documents) as an unfinished re-index (t66).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pgpt.runtime.documents.index_folder import ACTIVE, TABLE, index_dir, index_state, read_pointer, writer_lock
from pgpt.runtime.documents.ingest import ingest, open_store
from pgpt.runtime.settings import Settings

FILES = 4


def _reindexed(settings: Settings, embedder, tmp_path: Path) -> tuple[Path, str]:  # type: ignore[no-untyped-def]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(FILES):
        (corpus / f"doc{i}.txt").write_text(f"The codeword of document {i} is UNIQ{i:03d}X.")
    ingest(settings, [corpus], embedder)
    ingest(settings, [corpus], embedder, reindex=True)
    table = json.loads((index_dir(settings) / ACTIVE).read_text())["table"]
    assert table.startswith(f"{TABLE}-")
    return corpus, table


@pytest.mark.parametrize("damage", ["truncated", "empty", "deleted", "names a table not there"])
def test_the_index_survives_a_damaged_pointer_and_the_next_ingest_mends_it(
        settings: Settings, embedder, tmp_path: Path, damage: str) -> None:  # type: ignore[no-untyped-def]
    corpus, table = _reindexed(settings, embedder, tmp_path)
    pointer = index_dir(settings) / ACTIVE
    if damage == "deleted":
        pointer.unlink()
    else:
        pointer.write_text({"truncated": pointer.read_text()[:5], "empty": "",
                            "names a table not there": json.dumps({"table": f"{TABLE}-000000000000"})}[damage])
    assert len(open_store(settings, embedder).documents()) == FILES  # a reader: the index is all there
    said = index_state(settings)
    assert f"{ACTIVE} " in said and f"reading {table}, the next ingest writes it again" in said, said
    assert f"ok, {FILES} documents" in said
    again = ingest(settings, [corpus], embedder)
    assert len(again.unchanged) == FILES and not again.added  # nothing dropped, nothing embedded again
    assert json.loads(pointer.read_text()) == {"table": table} and read_pointer(index_dir(settings))[2] == ""


def test_between_several_tables_without_a_pointer_the_largest_is_read_and_none_is_dropped(
        settings: Settings, embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    corpus, table = _reindexed(settings, embedder, tmp_path)
    with writer_lock(settings):
        open_store(settings, embedder, rebuild=True)  # a killed re-index's empty table beside it
    (index_dir(settings) / ACTIVE).unlink()
    folder = index_dir(settings)
    name, certain, problem = read_pointer(folder)
    assert (name, certain, problem) == (table, False, "is missing")
    assert "the largest of several tables" in index_state(settings)
    again = ingest(settings, [corpus], embedder)
    assert len(again.unchanged) == FILES
    assert len(list(folder.glob(f"{TABLE}-*.lance"))) == 2  # neither dropped: which is the index is not known


def test_a_fresh_or_never_reindexed_index_reads_the_first_table_as_before(  # type: ignore[no-untyped-def]
        settings: Settings, embedder, tmp_path: Path) -> None:
    folder = index_dir(settings)
    assert read_pointer(folder) == (TABLE, True, "")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "one.txt").write_text("The codeword is ALPHA1X.")
    ingest(settings, [corpus], embedder)
    assert read_pointer(folder) == (TABLE, True, "") and not (folder / ACTIVE).exists()
    with writer_lock(settings):
        open_store(settings, embedder, rebuild=True)  # a re-index under way: the first table is still the index
    assert read_pointer(folder) == (TABLE, True, "")
