"""A documents folder moved, with a link left at its old place (`mv docs /data/docs && ln -s
/data/docs docs`, a common way to move a data folder): no document twice, and `--prune` and `forget`
act on the path as typed, which is what `docs` lists (t70)."""

from __future__ import annotations

import json
from pathlib import Path

from pgpt.runtime.settings import Settings
from support import tui_cli


def test_a_folder_moved_behind_a_link_is_renamed_not_indexed_twice(settings: Settings, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(3):
        (docs / f"note{n}.md").write_text(f"# Note {n}\n\nThe locker code of room {n} is {4400 + n}.\n")
    assert tui_cli(settings, "ingest", str(docs)).returncode == 0
    moved = tmp_path / "data" / "docs"
    moved.parent.mkdir()
    docs.rename(moved)
    docs.symlink_to(moved)  # the old place leads to the new one
    (moved / "note2.md").unlink()  # and one file went in the move
    again = json.loads(tui_cli(settings, "ingest", str(docs), "--json").stdout)
    assert again["added"] == [] and len(again["renamed"]) == 2, again  # it added every document a second time
    listed = json.loads(tui_cli(settings, "docs", "--json").stdout)
    paths = sorted(d["path"] for d in listed["documents"])
    assert paths == sorted([str(moved / "note0.md"), str(moved / "note1.md"), str(docs / "note2.md")]), paths
    pruned = json.loads(tui_cli(settings, "ingest", str(docs), "--prune", "--json").stdout)
    assert pruned["removed"] == [str(docs / "note2.md")], pruned  # the gone file under the path as typed
    link = tmp_path / "old-name"
    link.symlink_to(moved)
    (moved / "note3.md").write_text("# Note 3\n\nThe locker code of room 3 is 4403.\n")
    assert tui_cli(settings, "ingest", str(link / "note3.md")).returncode == 0
    forgot = tui_cli(settings, "forget", str(docs))  # nothing under docs/ as typed now: where it leads
    assert forgot.returncode == 0 and "3 files under" in forgot.stdout, forgot.stdout


def test_forget_through_a_link_forgets_what_docs_lists_under_that_path(settings: Settings, tmp_path: Path) -> None:
    """`forget docs` followed the link and forgot the new place's documents, keeping docs/'s."""
    docs, other = tmp_path / "docs", tmp_path / "moved"
    docs.mkdir()
    other.mkdir()
    (docs / "a.md").write_text("# A\n\nThe ferry leaves at nine.\n")
    (other / "b.md").write_text("# B\n\nThe bus leaves at ten.\n")
    assert tui_cli(settings, "ingest", str(docs), str(other)).returncode == 0
    (docs / "a.md").rename(other / "a.md")
    docs.rmdir()
    docs.symlink_to(other)  # docs/a.md is still indexed, and leads to moved/a.md
    forgot = tui_cli(settings, "forget", str(docs))
    assert forgot.returncode == 0 and f"forgot 1 file under {docs} " in forgot.stdout, forgot.stdout
    left = [d["path"] for d in json.loads(tui_cli(settings, "docs", "--json").stdout)["documents"]]
    assert left == [str(other / "b.md")], left


def test_doctor_says_when_a_restored_home_cannot_answer(settings: Settings, tmp_path: Path) -> None:
    """t70: doctor, the check after a restore, passed ("ok, 15 documents", exit 0) with every indexed
    file gone from disk, and with no embedding model to search them with."""
    import dataclasses

    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(2):
        (docs / f"note{n}.md").write_text(f"# Note {n}\n\nThe locker code of room {n} is {4400 + n}.\n")
    assert tui_cli(settings, "ingest", str(docs)).returncode == 0
    (docs / "note1.md").unlink()
    some = tui_cli(settings, "doctor", "--offline")
    assert "1 of its documents' files gone from disk" in some.stdout and "ALL FILES GONE" not in some.stdout
    (docs / "note0.md").unlink()
    done = tui_cli(settings, "doctor", "--offline")
    assert done.returncode == 1 and "ALL FILES GONE: none of its 2 documents' files is on disk" in done.stdout
    empty_cache = dataclasses.replace(settings, model_cache=tmp_path / "restored-without-models")
    bare = tui_cli(empty_cache, "doctor", "--offline")
    assert bare.returncode == 1 and "all-minilm-l6-v2-int8: MISSING" in bare.stdout, bare.stdout


def test_search_and_ask_mark_a_source_whose_file_is_gone(settings: Settings, tmp_path: Path) -> None:
    """t70: `docs` marked moved or deleted files "(file gone)", but search and ask cited them unmarked,
    cached answers too."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "gym.md").write_text("# Gym\n\nThe gym door code is 4471. The gym opens at six.\n")
    (docs / "bikes.md").write_text("# Bikes\n\nThe bike shed opens with the blue key.\n")
    assert tui_cli(settings, "ingest", str(docs)).returncode == 0
    (docs / "gym.md").unlink()
    found = tui_cli(settings, "search", "gym door code")
    assert f"[1] {docs / 'gym.md'} (file gone)" in found.stdout, found.stdout
    results = json.loads(tui_cli(settings, "search", "gym door code", "--json").stdout)["results"]
    assert results[0]["gone"] is True and "gone" not in results[-1], results
    asked = tui_cli(settings, "ask", "What is the gym door code?", "--max-tokens", "24")
    assert f"{docs / 'gym.md'} (file gone)" in asked.stdout, asked.stdout


def test_prune_of_a_missing_or_empty_folder_keeps_its_documents_and_forget_removes_them(
        settings: Settings, tmp_path: Path) -> None:
    """t71: a nightly `ingest /mnt/share --prune` on a night the share was not mounted (its mount point
    empty, or gone) forgot and purged the whole share, exit 0. Now its documents stay, the run says why
    and exits 1; `forget` is the way for a folder deleted on purpose. t70: nothing is "skipped" there."""
    import shutil

    share = tmp_path / "mnt" / "share"
    share.mkdir(parents=True)
    for n in range(3):
        (share / f"recipe{n}.txt").write_text(f"Cardamom buns number {n} need {n + 2} teaspoons of cardamom.\n")
    assert tui_cli(settings, "ingest", str(share)).returncode == 0
    shutil.move(share, tmp_path / "share-off")
    share.mkdir()  # the mount point, empty
    for attempt in ("empty", "missing"):
        pruned = tui_cli(settings, "ingest", str(share), "--prune", "--json")
        assert pruned.returncode == 1, (attempt, pruned.stdout, pruned.stderr)
        report = json.loads(pruned.stdout)
        assert report["removed"] == [] and report["skipped"] == [], report
        assert report["not_pruned"] == [{"path": str(share), "documents": 3}], report
        said = tui_cli(settings, "ingest", str(share), "--prune")
        assert said.returncode == 1 and "removed:" not in said.stdout and "skipped:" not in said.stdout
        assert f"NOT pruned: {share} is empty or missing, so its 3 indexed documents stay" in said.stdout, said.stdout
        assert f"`pgpt-tui forget {share}`" in said.stdout
        share.rmdir() if attempt == "empty" else None
    listed = json.loads(tui_cli(settings, "docs", "--json").stdout)["documents"]
    assert len(listed) == 3 and all(d["gone"] for d in listed), listed
    (tmp_path / "mnt" / "share-part").mkdir()  # a folder beside it that still has a file: pruned as before
    kept = tmp_path / "mnt" / "share-part" / "kept.txt"
    gone = tmp_path / "mnt" / "share-part" / "gone.txt"
    kept.write_text("The kept file says the kettle is in the left cupboard.\n")
    gone.write_text("The gone file says the toaster is in the right cupboard.\n")
    assert tui_cli(settings, "ingest", str(kept.parent)).returncode == 0
    gone.unlink()
    part = json.loads(tui_cli(settings, "ingest", str(kept.parent), "--prune", "--json").stdout)
    assert part["removed"] == [str(gone)] and "not_pruned" not in part, part
    forgot = tui_cli(settings, "forget", str(share))
    assert forgot.returncode == 0 and "forgot 3 files under" in forgot.stdout, forgot.stdout + forgot.stderr
