"""Which files an ingest reads under a folder, and what it says of the ones it leaves out."""

from __future__ import annotations

from pathlib import Path

from pgpt.runtime.documents.discovery import MAX_FILE_BYTES, collect_files


def test_folders_of_installed_packages_are_left_out_and_said_so(tmp_path: Path) -> None:
    """A code folder's node_modules gave 400 of its 875 documents, vendored READMEs answering for the
    project's own (t61); a virtual environment without a dot is known by its pyvenv.cfg."""
    project = tmp_path / "app"
    for folder in ("src", "node_modules/left-pad", "src/__pycache__", "venv/lib/python3.11/site-packages/x", "env"):
        (project / folder).mkdir(parents=True)
    (project / "src" / "main.py").write_text("print('hello')\n")
    (project / "README.md").write_text("# App\n\nThe app says hello.\n")
    (project / "node_modules" / "left-pad" / "README.md").write_text("# left-pad\n\nPads strings.\n")
    (project / "src" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\x00\x01bytecode")
    (project / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (project / "venv" / "lib" / "python3.11" / "site-packages" / "x" / "README.txt").write_text("A package.\n")
    (project / "env" / "notes.txt").write_text("Not a virtual environment: no pyvenv.cfg.\n")
    files, skipped = collect_files([project])
    assert [f.relative_to(project.resolve()).as_posix() for f in files] == ["README.md", "env/notes.txt", "src/main.py"]
    reasons = {Path(path).relative_to(project.resolve()).as_posix(): why for path, why in skipped}
    assert reasons == {"node_modules": "installed npm packages, not your documents (name it to index it)",
                       "src/__pycache__": "Python bytecode, not your documents (name it to index it)",
                       "venv": "a Python virtual environment, not your documents (name it to index it)"}
    named, _ = collect_files([project / "node_modules"])  # named as a path of its own, it is read
    assert [f.name for f in named] == ["README.md"]


def test_a_file_over_the_limit_is_skipped_with_the_way_in(tmp_path: Path) -> None:
    """"too large (210 MB; the limit is 100 MB)" gave no way in, unlike the office formats' line (t61)."""
    big = tmp_path / "server.log"
    with open(big, "wb") as handle:  # sparse: no 100 MB written
        handle.truncate(MAX_FILE_BYTES + 1)
    (tmp_path / "book.epub").write_bytes(b"PK\x03\x04\x14\x00\x00\x00" + bytes(range(256)))  # a zip, binary
    _, skipped = collect_files([tmp_path])
    reasons = {Path(path).name: why for path, why in skipped}
    assert reasons["server.log"].startswith("too large (100 MB; the limit is 100 MB): to index it, split it (split -C")
    assert reasons["book.epub"].startswith("unsupported format (.epub): to index it, save it as")


def test_an_office_file_cut_short_is_not_read_as_text(tmp_path: Path) -> None:
    """A spreadsheet of a zip's first bytes and some letters was indexed as the text "PKgarbage" (t77);
    a text file named .doc is still read."""
    (tmp_path / "budget.xlsx").write_bytes(b"PK\x03\x04garbage")
    (tmp_path / "old.doc").write_text("Minutes of the meeting: the budget was approved.\n")
    files, skipped = collect_files([tmp_path])
    assert [f.name for f in files] == ["old.doc"]
    assert [(Path(p).name, why.split(":")[0]) for p, why in skipped] == [("budget.xlsx", "unsupported format (.xlsx)")]


def test_a_copy_of_a_pgpt_home_is_not_read_as_documents(tmp_path: Path) -> None:
    """t70: a backup of a PGPT_HOME kept under an indexed folder gave its saved chats, logs and Lance
    files as sources ("What is the gym door code?" answered from an old chat's JSON)."""
    from pgpt.runtime.documents.discovery import ANOTHER_HOME, collect_files

    docs = tmp_path / "docs"
    (docs / "backups" / "pgpt-home" / "index" / "chunks.lance" / "data").mkdir(parents=True)
    home = docs / "backups" / "pgpt-home"
    (home / "conversations").mkdir()
    (home / "conversations" / "20261207-040749-e31540.json").write_text('{"turns": [{"text": "gym door code"}]}')
    (home / "logs").mkdir()
    (home / "logs" / "pgpt.log").write_text("INFO pgpt: chat model loaded\n")
    (home / "uploads" / "default").mkdir(parents=True)
    (home / "uploads" / "default" / "memo.txt").write_text("The memo says the gym opens at six.\n")
    (docs / "gym.md").write_text("# Gym\n\nThe gym door code is 4471.\n")
    files, skipped = collect_files([docs])
    assert files == [docs / "gym.md"]
    assert (str(home), ANOTHER_HOME) in skipped
    files, skipped = collect_files([home])  # named itself: left out too, its uploads folder named instead
    assert files == [] and skipped == [(str(home), ANOTHER_HOME)]
    assert collect_files([home / "uploads"])[0] == [home / "uploads" / "default" / "memo.txt"]
