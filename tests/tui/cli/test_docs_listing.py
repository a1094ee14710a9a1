"""What `ingest` reports and `docs` lists: gone and pruned files, files left out (and a "not found"
that names them), names as shown, a folder's documents only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pgpt.runtime.settings import Settings
from support import cli_env, tui_cli


def test_an_ingest_names_the_files_that_are_gone_and_those_prune_forgot(settings: Settings, tmp_path: Path) -> None:
    """The summary said "28 indexed files under these paths are gone but still answer" and, with
    --prune, "28 removed", without naming one (the app's Docs panel names them)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("kept.txt", "old-a.txt", "old-b.txt"):
        (docs / name).write_text(f"The {name[:-4]} note says the ferry leaves at noon.\n")
    assert tui_cli(settings, "ingest", str(docs)).returncode == 0
    (docs / "old-a.txt").unlink()
    (docs / "old-b.txt").unlink()
    kept = tui_cli(settings, "ingest", str(docs))
    assert kept.returncode == 0, kept.stderr
    lines = kept.stdout.splitlines()
    assert sorted(lines[:2]) == [f"gone: {docs / 'old-a.txt'}", f"gone: {docs / 'old-b.txt'}"], kept.stdout
    assert "2 indexed files under these paths are gone but still answer" in lines[-1]
    pruned = tui_cli(settings, "ingest", str(docs), "--prune")
    assert sorted(pruned.stdout.splitlines()[:2]) == [f"removed: {docs / 'old-a.txt'}", f"removed: {docs / 'old-b.txt'}"]
    assert " 2 removed, " in pruned.stdout.splitlines()[-1]


def test_forget_takes_a_name_as_docs_shows_it(settings: Settings, tmp_path: Path) -> None:
    """`docs` shows "new\\nline.txt" as "new line.txt", which `forget` did not know; given the real name,
    it printed the newline raw (t47). "pl\\u200bain.txt" and "plain.txt" were both listed as plain.txt
    (t50): an invisible character is shown as its escape, which `forget` takes."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "new\nline.txt").write_text("The harbour opens at dawn.\n")
    (docs / "plain.txt").write_text("The pier closes at dusk.\n")
    (docs / "pl\u200bain.txt").write_text("The pier with a zero-width space in its name.\n")
    assert tui_cli(settings, "ingest", str(docs)).returncode == 0
    listed = tui_cli(settings, "docs").stdout
    assert f"{docs}/new line.txt" in listed
    forgot = tui_cli(settings, "forget", f"{docs}/new line.txt")
    assert forgot.returncode == 0 and forgot.stdout == f"forgot {docs}/new line.txt (1 chunk; collection default)\n"
    assert "new line.txt" not in tui_cli(settings, "docs").stdout
    assert f"{docs}/plain.txt" in listed and f"{docs}/pl\\u200bain.txt" in listed, listed
    hidden = tui_cli(settings, "forget", f"{docs}/pl\\u200bain.txt")  # typed as shown
    assert hidden.returncode == 0 and hidden.stdout.startswith(f"forgot {docs}/pl\\u200bain.txt ("), hidden.stdout
    assert f"{docs}/plain.txt" in tui_cli(settings, "docs").stdout  # the other one stays


def test_an_index_made_in_a_utf8_session_is_updated_from_an_ascii_one(settings: Settings, tmp_path: Path) -> None:
    """A stored path an ASCII or ISO-8859-1 locale cannot spell ("Café – notes.md") ended the ingest with
    "UnicodeEncodeError ... This is a bug in pgpt" (t54): os.stat could not even be asked."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "Café – notes.md").write_text("The café opens at nine.\n")
    (docs / "plain.md").write_text("The ferry leaves at noon.\n")
    assert tui_cli(settings, "ingest", str(docs)).returncode == 0
    ascii_locale = {**cli_env(settings), "LANG": "C", "LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}
    again = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", "ingest", str(docs)], env=ascii_locale,
                           capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=300)
    assert again.returncode == 0 and "bug in pgpt" not in again.stdout + again.stderr, again.stderr
    assert "1 unchanged" in again.stdout and "not valid UTF-8" in again.stdout, again.stdout  # its name, as read
    listed = json.loads(tui_cli(settings, "docs", "--json").stdout)["documents"]  # nothing was lost
    assert sorted(Path(d["path"]).name for d in listed) == ["Café – notes.md", "plain.md"]


def test_files_left_out_for_one_reason_share_a_line() -> None:
    """A code folder's 27 images, archives and links filled the screen at every ingest (t61)."""
    from pgpt.tui.cli.ingest_report import left_out_lines

    skipped = [(f"/p/img{i}.png", "binary file") for i in range(6)] + [("/p/big.log", "too large (210 MB)"),
                                                                       ("/p/a.zip", "binary file")]
    failed = [("/p/secret", "unreadable (permission denied); check its owner and mode: ls -ld /p/secret")]
    assert left_out_lines(skipped, failed) == [
        "skipped 7 files: binary file: /p/img0.png, /p/img1.png, /p/img2.png and 4 more (--json lists them)",
        "skipped: /p/big.log: too large (210 MB)",
        "failed: /p/secret: unreadable (permission denied); check its owner and mode: ls -ld /p/secret"]


def test_docs_and_a_not_found_name_the_files_an_add_left_out(settings: Settings, tmp_path: Path) -> None:
    """A spreadsheet ingest could not read was named once, in the ingest's report; a question about
    it days later ended in a bare "not found" (t61). `docs` lists such files and a "not found" names
    them, until they are added in a readable form, deleted, or forgotten; binary files are not named."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "canteen.md").write_text("The canteen opens at noon.\n")
    sheet = docs / "budget.xlsx"
    sheet.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    (docs / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    assert tui_cli(settings, "ingest", str(docs)).returncode == 0
    listed = tui_cli(settings, "docs")
    assert listed.stdout.splitlines()[-2:] == [
        "Left out when added, so no answer comes from them (fix the cause, then ingest them again):",
        f"left out: {sheet}: unsupported format (.xlsx): to index it, save it as PDF, .docx, HTML or text (CSV for "
        "a sheet)"]
    [entry] = json.loads(tui_cli(settings, "docs", "--json").stdout)["left_out"]
    assert entry["path"] == str(sheet) and entry["collection"] == "default"

    question = "What is the launch code of project Zephyr?"
    answer = json.loads(tui_cli(settings, "ask", question, "--json").stdout)
    assert answer["not_found"] and [f["path"] for f in answer["left_out"]] == [str(sheet)]
    text = tui_cli(settings, "ask", question).stdout  # the "not found" is cached now: named all the same
    assert text.rstrip().endswith(f"\n\nNot searched: 1 file left out when added, so no answer comes from it: {sheet} "
                                  "(unsupported format (.xlsx)). `pgpt-tui docs` lists them with the way to add them.\n"
                                  "(cached: a similar question was answered before)")

    sheet.unlink()  # saved as CSV instead: the next add of the folder no longer names the spreadsheet
    (docs / "budget.csv").write_text("item,cost\nchairs,120\n")
    assert tui_cli(settings, "ingest", str(docs)).returncode == 0
    assert json.loads(tui_cli(settings, "docs", "--json").stdout)["left_out"] == []
    assert "Left out" not in tui_cli(settings, "docs").stdout
    assert json.loads(tui_cli(settings, "ask", question, "--json").stdout)["left_out"] == []

    sheet.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)  # or forgotten: `forget` of a file never indexed
    assert tui_cli(settings, "ingest", str(docs)).returncode == 0
    forgot = tui_cli(settings, "forget", str(sheet))
    assert forgot.returncode == 0 and forgot.stdout == f"{sheet} was never indexed (left out when added); `docs` no " \
                                                       "longer lists it\n"
    assert json.loads(tui_cli(settings, "docs", "--json").stdout)["left_out"] == []


def test_docs_lists_the_documents_under_a_folder(settings: Settings, tmp_path: Path) -> None:
    """3,213 lines and no way to narrow them to a folder (t64); a path with nothing under it is a typo."""
    for team in ("ops", "dev"):
        folder = tmp_path / "docs" / team
        folder.mkdir(parents=True)
        (folder / "notes.md").write_text(f"The {team} team meets on Thursdays.\n")
    assert tui_cli(settings, "ingest", str(tmp_path / "docs")).returncode == 0
    listed = json.loads(tui_cli(settings, "docs", str(tmp_path / "docs" / "ops"), "--json").stdout)["documents"]
    assert [d["path"] for d in listed] == [str(tmp_path / "docs" / "ops" / "notes.md")]
    text = tui_cli(settings, "docs", str(tmp_path / "docs" / "dev")).stdout
    assert "dev/notes.md" in text and "ops/" not in text and text.rstrip().endswith("1 document, 1 chunk")
    typo = tui_cli(settings, "docs", str(tmp_path / "docs" / "opz"))
    assert typo.returncode == 2 and "is not in the document index" in typo.stderr and "pgpt-tui docs" in typo.stderr


def test_the_progress_line_shows_a_name_as_docs_does(settings: Settings, tmp_path: Path) -> None:
    """The progress line dropped a right-to-left override that `docs` shows escaped (t65)."""
    odd = tmp_path / "invoice\u202efdp.exe.txt"
    odd.write_text("Invoice 1001 is due on Friday.\n")
    ingested = tui_cli(settings, "ingest", str(tmp_path))
    assert ingested.returncode == 0 and "invoice\\u202efdp.exe.txt" in ingested.stderr and "\u202e" not in ingested.stderr
    assert "invoice\\u202efdp.exe.txt" in tui_cli(settings, "docs").stdout
