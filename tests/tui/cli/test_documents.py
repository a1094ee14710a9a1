"""The document commands as a script runs them: ingest, docs, search, ask, forget."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pgpt.runtime.documents.similar_questions import normalize_question
from pgpt.runtime.documents.unfinished import unfinished_adds
from pgpt.runtime.settings import Settings
from support import cli_env, tui_cli


def test_ask_and_search_with_nothing_indexed_say_so_instead_of_not_found(settings: Settings) -> None:
    """"Not found" would tell the user that their documents do not say; none were searched.
    `search` said so on stdout with exit 0 (and `--json` printed no results): now it fails as `ask` does."""
    refused = tui_cli(settings, "ask", "What is the launch code of project Zephyr?")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.startswith(f"Usage error: Nothing is indexed yet in {settings.home}, so there is "
                                     "nothing to answer from.") and "pgpt-tui ingest PATH" in refused.stderr
    for args in (["search", "launch code"], ["search", "launch code", "--json"]):
        searched = tui_cli(settings, *args)
        assert searched.returncode == 2
        if "--json" in args:  # the error as JSON on stdout too, for a script (it printed nothing)
            assert json.loads(searched.stdout)["error"]["title"] == "Usage error"
        else:
            assert searched.stdout == ""
        assert searched.stderr.startswith(f"Usage error: Nothing is indexed yet in {settings.home}, so "
                                          "there is nothing to search.")
        assert "pgpt-tui ingest PATH" in searched.stderr and len(searched.stderr.strip().splitlines()) == 1


def test_search_after_every_document_was_forgotten_says_nothing_is_indexed(settings: Settings,
                                                                          tmp_path: Path) -> None:
    """The index's files stay after the last document is forgotten: the rows decide."""
    note = tmp_path / "note.md"
    note.write_text("The canteen opens at noon.\n")
    assert tui_cli(settings, "ingest", str(note)).returncode == 0
    assert tui_cli(settings, "search", "canteen").returncode == 0
    assert tui_cli(settings, "forget", str(note)).returncode == 0
    searched = tui_cli(settings, "search", "canteen", "--json")
    assert searched.returncode == 2 and "Nothing is indexed yet" in searched.stderr
    assert "Nothing is indexed yet" in json.loads(searched.stdout)["error"]["message"]


def test_ingest_docs_search_ask_forget(settings: Settings, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "zephyr.md").write_text("# Zephyr\n\nThe launch code of project Zephyr is 7341.\n")
    (docs / "evil.txt").write_text("Ferry times: noon.\x1b]52;c;ZXZpbA==\x07 \x1b[2J [bold]loud[/bold]\n")
    ingested = tui_cli(settings, "ingest", str(docs), "--json")
    assert ingested.returncode == 0, ingested.stderr
    report = json.loads(ingested.stdout)
    assert len(report["added"]) == 2 and report["chunks"] == 2 and report["chunks_per_s"] > 0
    assert "2/2 files" in ingested.stderr and "ETA" in ingested.stderr  # the progress bar

    listed = json.loads(tui_cli(settings, "docs", "--json").stdout)["documents"]
    assert sorted(Path(d["path"]).name for d in listed) == ["evil.txt", "zephyr.md"]

    found = json.loads(tui_cli(settings, "search", "Zephyr launch code", "-k", "1", "--json").stdout)
    assert found["query"] == "Zephyr launch code"
    [hit] = found["results"]
    assert hit["source"] == str(docs / "zephyr.md") and "7341" in hit["text"] and hit["page"] == 0 and hit["score"] > 0
    assert hit["sentence"] == "The launch code of project Zephyr is 7341."  # what the text output centres on
    too_many = tui_cli(settings, "search", "Zephyr", "-k", "100000")
    assert too_many.returncode == 2 and "a search gives 1 to 100 results" in too_many.stderr

    plain = tui_cli(settings, "search", "ferry times")
    assert "\x1b" not in plain.stdout and "\x07" not in plain.stdout  # no terminal escapes from documents

    answer = json.loads(tui_cli(settings, "ask", "What is the launch code of project Zephyr?", "--json").stdout)
    assert answer["sources"][0]["source"].endswith("zephyr.md") and answer["cached"] is False
    assert set(answer["timings"]) == {"embed_s", "retrieve_s", "ttft_s", "decode_tok_s", "check_s", "total_s",
                                   "prompt_tokens", "new_tokens"}
    assert answer["kind"] in {"answer", "quote"} and "7341" in answer["answer"] and not answer["not_found"]
    assert answer["quotes"][0] == {"file": str(docs / "zephyr.md"), "page": 0, "source": 1,
                                   "sentence": "The launch code of project Zephyr is 7341."}
    text = tui_cli(settings, "ask", "What is the launch code of project Zephyr?").stdout
    assert "7341" in text and "Supporting quotes:" in text and "zephyr.md" in text

    forgot = tui_cli(settings, "forget", str(docs / "evil.txt"))
    assert forgot.returncode == 0 and "forgot" in forgot.stdout
    assert len(json.loads(tui_cli(settings, "docs", "--json").stdout)["documents"]) == 1
    missing = tui_cli(settings, "forget", str(docs / "nope.txt"))
    assert missing.returncode == 2 and "pgpt-tui docs" in missing.stderr and "Usage error" in missing.stderr


def test_a_file_in_two_collections_is_found_once_and_forgotten_where_asked(settings: Settings, tmp_path: Path) -> None:
    """A tester's README in two collections came back as results [1] and [2]; forget had no
    --collection (it removed both) and a folder was "not in the document index"."""
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "readme.md").write_text("# Requests\n\nRequests sends HTTP/1.1 requests with a session object.\n")
    (docs / "sub" / "notes.md").write_text("# Notes\n\nThe ferry leaves at noon from the north quay.\n")
    assert tui_cli(settings, "ingest", str(docs)).returncode == 0
    assert tui_cli(settings, "ingest", str(docs), "--collection", "req").returncode == 0
    found = json.loads(tui_cli(settings, "search", "HTTP session object", "-k", "3", "--json").stdout)["results"]
    assert Path(found[0]["source"]).name == "readme.md"
    assert [(r["source"], r["text"]) for r in found].count((found[0]["source"], found[0]["text"])) == 1
    one = tui_cli(settings, "forget", str(docs / "readme.md"), "--collection", "req")
    assert one.returncode == 0 and "collection req)" in one.stdout, one.stdout
    listed = json.loads(tui_cli(settings, "docs", "--json").stdout)["documents"]
    assert {(Path(d["path"]).name, d["collection"]) for d in listed} == {
        ("readme.md", "default"), ("notes.md", "default"), ("notes.md", "req")}
    folder = tui_cli(settings, "forget", str(docs / "sub"))
    assert folder.returncode == 0 and f"forgot 1 file under {docs / 'sub'} (2 chunks; collections default, req)" \
        in folder.stdout, folder.stdout
    left = [Path(d["path"]).name for d in json.loads(tui_cli(settings, "docs", "--json").stdout)["documents"]]
    assert left == ["readme.md"]


def test_sources_name_their_collection_unless_it_is_the_default(settings: Settings, tmp_path: Path) -> None:
    """Two teams' shared/policy.md read alike in `search` and `ask` (t78): a source of a named
    collection says which; the default collection's sources stay as they were."""
    for team, years in (("team-a", "three"), ("team-b", "five"), ("default", "ten")):
        (tmp_path / team / "shared").mkdir(parents=True)
        (tmp_path / team / "shared" / "policy.md").write_text(f"# Laptops\n\nLaptops are replaced every {years} years.\n")
        assert tui_cli(settings, "ingest", str(tmp_path / team), "--collection", team).returncode == 0
    shown = tui_cli(settings, "search", "How often are laptops replaced?", "-k", "3").stdout
    assert "policy.md (collection team-a)" in shown and "policy.md (collection team-b)" in shown, shown
    assert shown.count("(collection ") == 2, shown
    asked = tui_cli(settings, "ask", "How often are laptops replaced?", "--collection", "team-b")
    assert asked.returncode == 0 and "policy.md (collection team-b)" in asked.stdout, asked.stdout
    assert "team-a" not in asked.stdout


def test_a_copied_file_is_one_result_that_names_the_copy(settings: Settings, tmp_path: Path) -> None:
    """Identical copies ("Copy of ...", "... (1)") gave the same passage once per copy."""
    docs = tmp_path / "docs"
    docs.mkdir()
    text = "# Ferry\n\nThe ferry leaves at noon from the north quay.\n"
    for name in ("ferry.md", "Copy of ferry.md", "ferry (1).md"):
        (docs / name).write_text(text)
    (docs / "bakery.md").write_text("# Bakery\n\nThe bakery sells rye bread and cakes.\n")
    assert tui_cli(settings, "ingest", str(docs)).returncode == 0
    found = json.loads(tui_cli(settings, "search", "When does the ferry leave?", "-k", "3", "--json").stdout)["results"]
    assert [Path(r["source"]).name for r in found] == ["ferry.md", "bakery.md"]  # the original's name, not a copy's
    assert [Path(p).name for p in found[0]["also_in"]] == ["ferry (1).md", "Copy of ferry.md"]
    shown = tui_cli(settings, "search", "When does the ferry leave?", "-k", "3").stdout
    assert "ferry.md (the same text in: ferry (1).md, Copy of ferry.md)" in shown, shown


def test_typos_in_paths_and_collections_are_errors_not_empty_results(settings: Settings, tmp_path: Path) -> None:
    """A missing path was "1 skipped" (exit 0) and an unknown collection "not found" or an empty
    list, as if the documents did not say."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "two\nlines.txt").write_text("The ferry leaves at noon.\n")
    typo = tui_cli(settings, "ingest", str(docs), str(tmp_path / "dosc"))
    assert typo.returncode == 2 and "No such file or folder" in typo.stderr and "dosc" in typo.stderr
    assert "--prune" in typo.stderr and "Nothing was indexed" in typo.stderr
    scripted = tui_cli(settings, "ingest", str(tmp_path / "dosc"), "--json")  # a script reads stdout: one JSON error
    error = json.loads(scripted.stdout)["error"]
    assert scripted.returncode == 2 and error["exit_code"] == 2 and "No such file or folder" in error["message"]
    assert tui_cli(settings, "ingest", str(docs), "--collection", "ferries").returncode == 0
    listed = tui_cli(settings, "docs")
    lines = listed.stdout.splitlines()
    assert listed.returncode == 0 and len(lines) == 2  # the newline in the name is a space
    assert "two lines.txt" in lines[0] and lines[1] == "1 document, 1 chunk"
    for command in (["docs"], ["search", "ferry"], ["ask", "When does the ferry leave?"]):
        wrong = tui_cli(settings, *command, "--collection", "ferry")
        assert wrong.returncode == 2 and "'ferry'" in wrong.stderr and "Collections here: ferries" in wrong.stderr
    (tmp_path / "sp dir").mkdir()
    spaced = tui_cli(settings, "ingest", str(tmp_path / "sp"), "dir")  # `ingest sp dir`: "No such file: sp, dir"
    assert spaced.returncode == 2 and f'pgpt-tui ingest "{tmp_path / "sp"} dir"' in spaced.stderr, spaced.stderr
    near = tui_cli(settings, "search", "ferry", "--collection", "feries")  # a typo: offered an ingest into it
    assert near.returncode == 2 and "'feries': did you mean 'ferries'?" in near.stderr, near.stderr
    (docs / "two\nlines.txt").unlink()  # gone from disk, it still answers: said as F4 says it (t61)
    listed = tui_cli(settings, "docs")
    assert listed.stdout.splitlines()[0].endswith("two lines.txt  (file gone)"), listed.stdout
    assert "1 file gone from disk still answers (`pgpt-tui ingest PATH --prune`" in listed.stdout
    assert json.loads(tui_cli(settings, "docs", "--json").stdout)["documents"][0]["gone"] is True
    docs.rmdir()  # a folder gone whole keeps its documents (an unmounted share looks the same, t71): forget them
    pruned = tui_cli(settings, "ingest", str(docs), "--prune", "--collection", "ferries", "--json")
    assert pruned.returncode == 1 and json.loads(pruned.stdout)["not_pruned"] == [{"path": str(docs), "documents": 1}]
    forgot = tui_cli(settings, "forget", str(docs), "--collection", "ferries", "--json")
    assert forgot.returncode == 0 and len(json.loads(forgot.stdout)["forgotten"]) == 1, forgot.stdout


def test_a_collection_name_that_is_not_plain_is_a_usage_error(settings: Settings, tmp_path: Path) -> None:
    """pgpt-serve keeps uploads in a folder named after the collection, so both take plain names only."""
    (tmp_path / "note.txt").write_text("The ferry leaves at noon.\n")
    refused = tui_cli(settings, "ingest", str(tmp_path / "note.txt"), "--collection", "../x")
    assert refused.returncode == 2 and refused.stdout == ""
    assert "'../x' is refused" in refused.stderr and "letters, digits" in refused.stderr


def test_question_normalization_keeps_words_and_numbers() -> None:
    assert normalize_question("  What's the launch code, for Project Zephyr?! ") == "what s the launch code for project zephyr"
    assert normalize_question("Report 2021?") != normalize_question("Report 2022?")


def test_ask_reports_a_model_that_fails_to_load_beside_the_index(settings: Settings, tmp_path: Path) -> None:
    """The chat model loads in a thread while the index opens: its error still ends the command
    with the one-paragraph message and exit 1, and nothing is left running."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.md").write_text("The canteen opens at noon.\n")
    assert tui_cli(settings, "ingest", str(docs)).returncode == 0
    missing = tui_cli(settings, "ask", "When does the canteen open?", "--model", "no-such-model")
    assert missing.returncode == 2 and "Model not found" in missing.stderr and "pgpt-export" in missing.stderr
    answered = tui_cli(settings, "ask", "When does the canteen open?", "--max-tokens", "8")
    assert answered.returncode == 0 and "note.md" in answered.stdout


def test_ask_text_output_shows_quotes_or_the_closest_passages_without_escapes() -> None:
    from pgpt.tui.cli.answer_steps import describe_answer

    quote = {"file": "/d/zephyr.pdf", "page": 3, "sentence": "The code is 7341.\x1b]52;c;ZXZpbA==\x07", "source": 1}
    answered = describe_answer({"answer": "The code is 7341 [1].", "kind": "answer", "not_found": False,
                                "quotes": [quote], "sources": [{"source": "/d/zephyr.pdf", "page": 3,
                                                                "text": "## Launch codes\n\nThe code is 7341.\n" * 3}],
                                "closest": [], "cached": True})
    assert answered.splitlines() == ["The code is 7341 [1].", "", "Supporting quotes:",
                                     "  [1] /d/zephyr.pdf, page 3: \u201cThe code is 7341.\u201d", "", "Sources:",
                                     "  [1] /d/zephyr.pdf, page 3: Launch codes The code is 7341. Launch codes The code is\u2026", "(cached: a similar question was answered before)"]
    passage = {"source": "/d/ferry.txt", "page": 0, "text": "The ferry\nleaves at noon. " * 20, "score": 0.1}
    missing = describe_answer({"answer": "I could not find it.", "kind": "not_found", "not_found": True, "quotes": [],
                               "sources": [], "closest": [passage] * 3, "cached": False})
    lines = missing.splitlines()
    assert lines[2] == "Closest passages (the answer may be in them; judge for yourself):" and "Sources:" not in lines
    assert lines[3:5] == ["  1. /d/ferry.txt", "     " + ("The ferry leaves at noon. " * 10)[:240] + "\u2026"]
    assert len(lines) == 9
    # a passage is shown around its sentence closest to the question, not from its start
    passage = {"source": "/d/ferry.txt", "page": 2, "score": 0.1, "sentence": "The ferry carries 40 cars.",
               "text": "Tickets are sold on board. " * 20 + "The ferry carries 40 cars. " + "Dogs travel free. " * 20}
    missing = describe_answer({"answer": "I could not find it.", "kind": "not_found", "not_found": True, "quotes": [],
                               "sources": [], "closest": [passage], "cached": False})
    snippet = missing.splitlines()[4]
    assert snippet.startswith("     \u2026") and snippet.endswith("\u2026") and "The ferry carries 40 cars." in snippet
    assert len(snippet) < 260


def test_ask_wraps_a_long_line_under_its_indent_on_a_terminal() -> None:
    """A terminal wrapped a passage's line to column 0, under its indented start (t54); a pipe
    (width 0) gets the lines whole, for scripts."""
    from pgpt.runtime.sanitize import cells, hanging

    text = ("Closest passages (the answer may be in them; judge for yourself):\n  1. /d/harbour notes \u65e5\u672c.md\n"
            "     " + "The ferry to \u65e5\u672c leaves at noon. " * 6 + "\n  [2] /d/a.md: \u201c" + "word " * 20 + "\u201d")
    assert hanging(text, 0) == text
    lines = hanging(text, 40).splitlines()
    assert all(cells(line) <= 40 for line in lines), lines
    passage = [line for line in lines if "ferry" in line]
    assert len(passage) > 3 and all(line.startswith("     ") and line[5] != " " for line in passage), passage
    quote = lines[lines.index(next(line for line in lines if line.startswith("  [2] "))) + 1]
    assert quote.startswith("      word"), lines
    assert " ".join(" ".join(lines).split()) == " ".join(text.split())  # every word kept, in order


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_ctrl_c_during_a_large_file_says_what_stays(settings: Settings, tmp_path: Path, stop: str) -> None:
    """Ctrl-C gave the generic "Interrupted" (and ingest's own "Nothing was changed" contradicted
    "run it again to continue"); the bar showed nothing inside a large file until it was done.
    SIGTERM (kill, timeout, systemctl stop) ended it without a word: now it says the same, exit 143."""
    import signal

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a-small.md").write_text("# Ferry\n\nThe ferry leaves at noon.\n")
    (docs / "big.txt").write_text("\n\n".join(f"Section {n} tells of harbour {n}, its quays, cranes and {n} boats. " * 9
                                              for n in range(1500)))
    # SIGINT as a terminal's Ctrl-C sends it; a shell that starts a job in the background (CI) makes
    # it ignored for the job's processes, and an ignored signal stays ignored through exec
    as_json = ["--json"] if stop == "SIGINT" else []  # a script's add: the counts, not only a paragraph (t53)
    process = subprocess.Popen([sys.executable, "-m", "pgpt.tui.cli.main", "ingest", str(docs), *as_json],
                               env=cli_env(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = []
    for line in process.stderr:  # not a terminal: one line each time the bar moves a step
        seen.append(line)
        if re.search(r"\([1-9][\d]*/\d+ chunks of it\)", line):  # a batch embedded (0/N: the count, at once)
            [running] = unfinished_adds(settings)  # remembered while it runs, one file done
            assert (running.done, running.total, running.pid) == (1, 2, process.pid)
            process.send_signal(getattr(signal, stop))
            break
    rest = process.stderr.read()
    code = 130 if stop == "SIGINT" else 143
    assert process.wait(timeout=120) == code and any("big.txt (" in line for line in seen), seen
    assert "Ingestion stopped after 1 of 2 files; the files done are in the index" in rest, rest
    # its embedded chunks are not kept, and the user sees how many are done again (t53)
    assert re.search(r"big\.txt was not finished and is read again then \([\d,]+ of its [\d,]+ chunks were embedded; "
                     r"they are kept, and only the rest is embedded then\)\.", rest), rest
    assert "Nothing was changed" not in rest and "Traceback" not in rest
    assert "error:" not in rest  # a stop the user asked for is no error
    log = settings.log_file.read_text()  # nor a failed command in the log a monitor watches (t53)
    by = "SIGTERM" if stop == "SIGTERM" else "the user"  # a SIGTERM is timeout's or systemd's (t71)
    assert f"INFO pgpt: stopped by {by}: Ingestion stopped after 1 of 2 files" in log
    assert "command failed: Cancelled" not in log and "command failed: Interrupted" not in log
    if stop == "SIGINT":  # the user at the terminal was told: the app's next start says nothing more
        assert unfinished_adds(settings) == []
        error = json.loads(process.stdout.read())["error"]
        assert error["title"] == "Cancelled" and error["exit_code"] == 130 and error["stopped"], error
        assert (error["files_done"], error["files_total"], error["files_done_kept"]) == (1, 2, True), error
        assert Path(error["unfinished_file"]).name == "big.txt", error
        assert 0 < error["unfinished_chunks_embedded"] < error["unfinished_chunks"], error
    else:  # SIGTERM (cron's timeout, systemctl stop): told to a log nobody reads; doctor and the app say it (t53)
        [kept] = unfinished_adds(settings)
        assert kept.done == 1 and kept.total == 2 and kept.ended()
        kept.forget()
    listed = tui_cli(settings, "docs", "--json")
    assert [Path(d["path"]).name for d in json.loads(listed.stdout)["documents"]] == ["a-small.md"]


def test_search_text_shows_each_passage_around_its_matching_sentence(settings: Settings, tmp_path: Path) -> None:
    """It printed each passage's first 300 characters: a name deep in a long passage was not shown."""
    docs = tmp_path / "docs"
    docs.mkdir()
    filler = "The orchard grows apples, pears and plums on the south slope of the hill. " * 6
    (docs / "orchard.txt").write_text(filler + "The orchard keeper is Bartholomew Quince. " + filler)
    assert tui_cli(settings, "ingest", str(docs)).returncode == 0
    shown = tui_cli(settings, "search", "Who is the orchard keeper?", "-k", "1").stdout.splitlines()
    assert "The orchard keeper is Bartholomew Quince." in shown[1] and shown[1].strip().startswith("\u2026")
    # a query without a letter or digit matches nothing (it listed five arbitrary passages)
    assert tui_cli(settings, "search", "???").stdout.strip() == "No matching passages."


def test_an_empty_folder_says_no_files_were_found_and_fails(settings: Settings, tmp_path: Path) -> None:
    """It printed "0 added, 0 updated, ... 0 skipped" and nothing else; then exit 0, as for a folder of
    damaged files only: a cron job took a run that indexed nothing for one that worked (t71)."""
    (tmp_path / "empty" / ".hidden").mkdir(parents=True)
    (tmp_path / "empty" / ".hidden" / "notes.md").write_text("# Notes\n")
    result = tui_cli(settings, "ingest", str(tmp_path / "empty"))
    assert result.returncode == 1 and "No files found under" in result.stdout and "hidden" in result.stdout
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj <<\n")
    (tmp_path / "bad" / "empty.txt").write_text("")
    bad = tui_cli(settings, "ingest", str(tmp_path / "bad"))
    assert bad.returncode == 1 and "0 added" in bad.stdout and "2 skipped" in bad.stdout, bad.stdout
    (tmp_path / "bad" / "good.txt").write_text("The ferry leaves at noon.\n")
    assert tui_cli(settings, "ingest", str(tmp_path / "bad")).returncode == 0  # one file indexed: it worked
    assert tui_cli(settings, "ingest", str(tmp_path / "bad")).returncode == 0  # and unchanged the next night


def test_a_named_file_that_is_skipped_is_a_failed_command(settings: Settings, tmp_path: Path) -> None:
    """`ingest /usr/bin/ls` exited 0 with nothing indexed; a folder with one binary file in it still
    succeeds, and pgpt's own home inside it is left out."""
    (tmp_path / "tool.bin").write_bytes(bytes(range(256)) * 64)
    (tmp_path / "notes.txt").write_text("The ferry leaves at noon.\n")
    named = tui_cli(settings, "ingest", str(tmp_path / "tool.bin"))
    assert named.returncode == 1 and "skipped:" in named.stdout and "binary file" in named.stdout, named.stdout
    # the folder holds PGPT_HOME too: its log, index and saved chats were indexed as documents
    assert settings.home.parent == tmp_path and (settings.home / "logs" / "pgpt.log").is_file()
    folder = tui_cli(settings, "ingest", str(tmp_path))
    assert folder.returncode == 0 and "1 added" in folder.stdout and "2 skipped" in folder.stdout, folder.stdout
    assert f"skipped: {settings.home.resolve()}: pgpt's own folder (PGPT_HOME or the model cache)" in folder.stdout
    home = tui_cli(settings, "ingest", str(settings.home))  # named itself: its index's files were indexed
    assert home.returncode == 1 and f"skipped: {settings.home}: pgpt's own folder" in home.stdout, home.stdout
    (tmp_path / "empty.log").write_text("")
    (tmp_path / "budget.xlsx").write_bytes(b"PK\x03\x04" + bytes(range(256)) * 8)  # a spreadsheet is named so
    sheet = tui_cli(settings, "ingest", str(tmp_path / "budget.xlsx"))
    assert "budget.xlsx: unsupported format (.xlsx): to index it, save it as PDF, .docx, HTML or text (CSV" in sheet.stdout
    empty = tui_cli(settings, "ingest", str(tmp_path / "empty.log"))  # it was "binary file"
    assert empty.returncode == 1 and "empty.log: no text in the file (it is empty)" in empty.stdout, empty.stdout
    # a symlink loop named itself: skipped as inside a folder ("RuntimeError ... a bug in pgpt" before, t47)
    (tmp_path / "loopA").symlink_to(tmp_path / "loopB")
    (tmp_path / "loopB").symlink_to(tmp_path / "loopA")
    for command in (("ingest",), ("forget",)):
        loop = tui_cli(settings, *command, str(tmp_path / "loopA"))
        assert loop.returncode != 0 and "bug in pgpt" not in loop.stdout + loop.stderr, loop.stderr
    assert "loopA: a symlink loop" in tui_cli(settings, "ingest", str(tmp_path / "loopA")).stdout


def test_ask_on_a_terminal_says_what_it_does_from_the_start(settings: Settings, tmp_path: Path) -> None:
    """On a terminal `ask` showed nothing for about 5 s (the model, the embedder and the index
    loading, then the search) before "writing the answer ..."."""
    from support import stderr_on_a_terminal

    (tmp_path / "ferry.txt").write_text("The ferry leaves at noon from pier 4.\n")
    assert tui_cli(settings, "ingest", str(tmp_path / "ferry.txt")).returncode == 0
    code, out, text = stderr_on_a_terminal(["ask", "When does the ferry leave?", "--max-tokens", "8"],
                                           {**cli_env(settings), "COLUMNS": "40", "TERM": "dumb"})
    assert code == 0 and "[1]" in out
    steps = ("loading the model and the", "searching the documents", "reading the passages", "writing the answer",
             "checking the answer against")  # each step as it starts: a long prompt was read under "searching" (t53)
    assert [text.index(step) for step in steps] == sorted(text.index(step) for step in steps), text
    # cut to COLUMNS and padded with spaces, no ESC[K (a dumb terminal showed it, and a wrapped line was
    # not redrawn: 40 columns filled with copies, t50); cleared before the answer
    assert "\x1b" not in text and "\rwriting the answer, then checking" in text, text
    status = [line for line in text.split("\r") if line.startswith(("loading", "searching", "reading", "writing",
                                                                     "checking"))]
    assert status and all(len(line) == 39 for line in status), [len(line) for line in status]
    assert "\r" + " " * 39 + "\r" in text, text[-80:]


@pytest.mark.slow
def test_a_first_ingest_on_a_new_machine_prepares_the_built_in_embedder(tmp_path: Path) -> None:
    """A new user's first command over SSH was `pgpt-tui ingest docs`, refused until `pgpt-export
    --default` (t84): it now exports the embedder it needs, once, saying so stage by stage; an existing
    index with an empty model cache (a cron job without PGPT_MODEL_CACHE, t71) is refused as before."""
    fresh = Settings(home=tmp_path / "home", model_cache=tmp_path / "cache")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferry.txt").write_text("The ferry to Inselby leaves at noon every Tuesday.\n")
    first = tui_cli(fresh, "ingest", str(docs))
    assert first.returncode == 0, first.stderr
    assert "pgpt: first use: preparing the built-in all-minilm-l6-v2 (int8)" in first.stderr
    assert "validate:" in first.stderr and "1 added" in first.stdout
    assert [p.name for p in fresh.model_cache.iterdir() if not p.name.startswith(".")] == ["all-minilm-l6-v2-int8"]
    found = tui_cli(fresh, "search", "ferry")  # ready: no second export
    assert found.returncode == 0 and "ferry.txt" in found.stdout and "first use" not in found.stderr
    from pgpt.tui.cli.first_use import to_prepare

    # `ask` next prepares the chat model (t85: "No chat model has been exported yet"); search needs nothing
    assert [m.kind for m in to_prepare(fresh, "ask")] == ["llm"] and to_prepare(fresh, "search") == []
    elsewhere = Settings(home=fresh.home, model_cache=tmp_path / "empty-cache")
    refused = tui_cli(elsewhere, "search", "ferry")
    assert refused.returncode == 2 and "is not exported in" in refused.stderr and "first use" not in refused.stderr
    assert to_prepare(elsewhere, "ask") == []  # nor its chat model: the setup looks in the wrong place
