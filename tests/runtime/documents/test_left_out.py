"""Files an add left out that may hold text are remembered per collection (left_out.py): `docs`
lists them and a "not found" names them (t61: a scanned PDF's question ended in a bare "not found")."""

from __future__ import annotations

import json
from pathlib import Path

from pgpt.runtime.documents.left_out import FILE, forget_under, may_hold_text, note, remember, remembered


def test_an_add_replaces_what_was_remembered_under_its_paths_only(tmp_path: Path) -> None:
    folder = tmp_path / "index"
    folder.mkdir()
    remember(folder, "default", [Path("/docs")], [("/docs/scan.pdf", "scanned PDF without a text layer (OCR)"),
                                                  ("/docs/photo.png", "binary file"),
                                                  ("/docs/empty.txt", "no text in the file (it is empty)"),
                                                  ("/docs/big.csv", "too large (120 MB; the limit is 100 MB): split it")],
             indexed=["/docs/a.md"])
    remember(folder, "work", [Path("/work")], [("/work/b.xlsx", "unsupported format (.xlsx): save it as CSV")], [])
    assert remembered(folder) == [("/docs/big.csv", "too large (120 MB; the limit is 100 MB): split it", "default"),
                                  ("/docs/scan.pdf", "scanned PDF without a text layer (OCR)", "default"),
                                  ("/work/b.xlsx", "unsupported format (.xlsx): save it as CSV", "work")]
    assert [path for path, _, _ in remembered(folder, "work")] == ["/work/b.xlsx"]
    # the scan was OCR'd and added again as a file of its own: the rest under /docs stays named
    remember(folder, "default", [Path("/docs/scan.pdf")], [], indexed=["/docs/scan.pdf"])
    assert [path for path, _, _ in remembered(folder, "default")] == ["/docs/big.csv"]
    # /docs2 is not under /docs: an add of /docs2 leaves /docs's files alone
    remember(folder, "default", [Path("/docs2")], [], [])
    assert [path for path, _, _ in remembered(folder, "default")] == ["/docs/big.csv"]
    remember(folder, "default", [Path("/docs")], [], [])  # split and added again: nothing left out there
    assert remembered(folder, "default") == [] and len(remembered(folder)) == 1
    assert forget_under(folder, "/work", "default") == 0 and forget_under(folder, "/work") == 1
    assert remembered(folder) == [] and json.loads((folder / FILE).read_text())["collections"] == {}
    assert (folder / FILE).stat().st_mode & 0o077 == 0  # it names documents: the owner's only


def test_a_damaged_or_missing_note_reads_as_none(tmp_path: Path) -> None:
    assert remembered(tmp_path) == []
    for damaged in ("{", "[]", '{"collections": 3}', '{"collections": {"default": [1]}}'):
        (tmp_path / FILE).write_text(damaged)
        assert remembered(tmp_path) == []
    remember(tmp_path, "default", [Path("/d")], [("/d/x.pdf", "damaged PDF (KeyError)")], [])
    assert remembered(tmp_path) == [("/d/x.pdf", "damaged PDF (KeyError)", "default")]
    # a Latin-1 name read in a C-locale session holds a surrogate: written all the same (UTF-8 refused it)
    odd = ("/d/caf\udce9.pdf", "the file name is not valid UTF-8 (rename the file to index it)")
    remember(tmp_path, "default", [Path("/d")], [odd], [])
    assert remembered(tmp_path) == [(*odd, "default")]


def test_only_files_that_may_hold_text_are_remembered_and_the_note_is_short() -> None:
    assert may_hold_text("encrypted PDF (a password is needed)") and may_hold_text("unreadable (permission denied)")
    assert not may_hold_text("binary file") and not may_hold_text("a symlink leading outside the folder")
    assert not may_hold_text("installed npm packages, not your documents (name it to index it)")
    assert note([]) == ""
    files = [{"path": f"/d/{name}", "reason": reason} for name, reason in (
        ("big.csv", "too large (120 MB; the limit is 100 MB): to index it, split it"), ("s.pdf", "scanned PDF"),
        ("t.pdf", "scanned PDF"))]
    assert note(files) == ("Not searched: 3 files left out when added, so no answer comes from them: /d/big.csv "
                           "(too large (120 MB; the limit is 100 MB)); /d/s.pdf (scanned PDF) and 1 more. "
                           "`pgpt-tui docs` lists them with the way to add them.")
    assert "\n" not in note([{"path": "/d/a\nb.pdf", "reason": "scanned PDF"}])  # a name is shown on one line
