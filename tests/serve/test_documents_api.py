"""PrivateGPT's document API on a real pgpt-serve: ingest, list, chunks, answers with sources, delete,
and the CLI's hostile-file rules for uploads (where uploads are kept: test_upload_files.py)."""

from __future__ import annotations

import subprocess
import sys
import time
import unicodedata
import zipfile
from pathlib import Path

from pgpt.serve.documents import LOCK_WAIT_S
from pgpt.serve.errors import INGEST_RETRY_AFTER_S
from serve_support import RunningServer, upload
from support import cli_env, make_pdf

FERRY = ("Ferry timetable. The ferry to Tresco leaves the quay at 9:15 every morning. "
         "Tickets are sold at the harbour office.")


def test_text_in_list_chunks_answer_with_sources_then_delete(server: RunningServer) -> None:
    http = server.http()
    added = http.post("/v1/ingest/text", json={"file_name": "ferry", "text": FERRY}).json()
    assert added["object"] == "list" and added["model"] == "private-gpt"
    doc = added["data"][0]
    assert doc["object"] == "ingest.document" and doc["doc_metadata"]["file_name"] == "ferry.txt"
    assert doc["doc_id"] in {d["doc_id"] for d in http.get("/v1/ingest/list").json()["data"]}

    chunks = http.post("/v1/chunks", json={"text": "When does the ferry leave?",
                                           "context_filter": {"docs_ids": [doc["doc_id"]]}}).json()["data"]
    assert chunks and all(c["document"]["doc_id"] == doc["doc_id"] for c in chunks)
    assert "9:15" in chunks[0]["text"] and chunks[0]["object"] == "context.chunk"
    # page_label was left out for a file without pages: always there, null
    assert all(c["document"]["doc_metadata"]["page_label"] is None for c in chunks)
    # an id that names no document: 404 (it was an empty list, and "not found" as an answer)
    elsewhere = http.post("/v1/chunks", json={"text": "ferry", "context_filter": {"docs_ids": ["no-such-id"]}})
    assert elsewhere.status_code == 404 and "No document has the id 'no-such-id'" in elsewhere.text
    assert elsewhere.json()["error"]["code"] == "not_found"  # not "request_refused" (t73)
    unknown = {"messages": [{"role": "user", "content": "When does the ferry leave?"}], "use_context": True,
               "context_filter": {"docs_ids": ["no-such-id", "nor-this"]}}
    answered = http.post("/v1/chat/completions", json=unknown)
    assert answered.status_code == 404 and "'nor-this'" in answered.json()["error"]["message"]
    # another collection's document: it was an empty list and "not found" (t80); now a 400 naming its collection
    http.post("/v1/ingest/text?collection=team-b", json={"file_name": "printer-b.txt", "text": "Printer on floor 2."})
    theirs = http.post("/v1/chunks", json={"text": "ferry", "collection": "team-b",
                                           "context_filter": {"docs_ids": [doc["doc_id"]]}})
    assert theirs.status_code == 400 and "is in the collection default, not in 'team-b'" in theirs.text, theirs.text
    printer = http.get("/v1/ingest/list", params={"collection": "team-b"}).json()["data"][0]["doc_id"]
    mixed = http.post("/v1/chunks", json={"text": "ferry", "collection": "team-b",  # beside one of team-b's (t81)
                                          "context_filter": {"docs_ids": [printer, doc["doc_id"]]}})
    assert mixed.status_code == 400 and "is in the collection default" in mixed.text, mixed.text

    question = {"model": "default", "messages": [{"role": "user", "content": "When does the ferry to Tresco leave?"}],
                "max_tokens": 24, "extra_body": {"use_context": True, "include_sources": True,
                                                 "context_filter": {"docs_ids": [doc["doc_id"]]}}}
    reply = server.openai().chat.completions.create(**question)
    sources = reply.choices[0].model_extra["sources"]
    assert sources and sources[0]["document"]["doc_metadata"]["file_name"] == "ferry.txt"
    assert "page_label" in sources[0]["document"]["doc_metadata"] and reply.choices[0].message.content
    # The same question again comes from the similar-question cache: its usage counted 0 tokens.
    again = server.openai().chat.completions.create(**question)
    assert again.model_extra["cached"] is True and again.choices[0].message.content == reply.choices[0].message.content
    assert again.usage.completion_tokens > 0 and again.usage.total_tokens == again.usage.completion_tokens
    # Clients see an upload by its name: no response tells where the server keeps its data.
    home = str(server.settings.home)
    assert doc["doc_metadata"]["path"] == "ferry.txt" and sources[0]["document"]["doc_metadata"]["path"] == "ferry.txt"
    for shown in (added, chunks, reply.model_dump(), http.get("/v1/ingest/list").json()):
        assert home not in str(shown), shown

    assert http.delete(f"/v1/ingest/{doc['doc_id']}").status_code == 200
    assert doc["doc_id"] not in {d["doc_id"] for d in http.get("/v1/ingest/list").json()["data"]}
    missing = http.delete(f"/v1/ingest/{doc['doc_id']}")
    assert missing.status_code == 404 and "ingest/list" in missing.json()["error"]["message"]
    for path in ("/v1/ingest/", "/v1/ingest"):  # an empty id was a 307 to /v1/ingest, then a 405
        unnamed = http.delete(path)
        assert unnamed.status_code == 404 and "DELETE /v1/ingest/{doc_id}" in unnamed.json()["error"]["message"]


def test_a_pdf_upload_answers_with_file_and_page_streamed(server: RunningServer, tmp_path: Path) -> None:
    pdf = tmp_path / "timetable.pdf"
    make_pdf(pdf, ["Opening hours of the museum: 10 to 17.", FERRY])
    status, added = upload(server, pdf)
    assert status == 200, added
    doc_id = added["data"][0]["doc_id"]
    stream = server.openai().chat.completions.create(
        model="default", messages=[{"role": "user", "content": "When does the ferry to Tresco leave?"}],
        max_tokens=16, stream=True,
        extra_body={"use_context": True, "context_filter": {"docs_ids": [doc_id]}})
    chunks = list(stream)
    final = next(c for c in chunks if c.choices and c.choices[0].finish_reason)
    pages = {s["document"]["doc_metadata"].get("page_label") for s in final.choices[0].model_extra["sources"]}
    files = {s["document"]["doc_metadata"]["file_name"] for s in final.choices[0].model_extra["sources"]}
    assert "2" in pages and files == {"timetable.pdf"}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    # on the content chunk too, where PrivateGPT's scripts read them (they were only on the last: t73)
    content = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert all(c.choices[0].model_extra["sources"] == final.choices[0].model_extra["sources"] for c in content)


def test_uploads_are_incremental_by_file_name(server: RunningServer, tmp_path: Path) -> None:
    note = tmp_path / "note.md"
    note.write_text("# Note\n\nThe lighthouse opens at noon.\n")
    first = upload(server, note)[1]["data"][0]
    again = upload(server, note)[1]["data"][0]
    note.write_text("# Note\n\nThe lighthouse opens at one.\n")
    changed = upload(server, note)[1]["data"][0]
    assert [d["doc_metadata"]["status"] for d in (first, again, changed)] == ["added", "unchanged", "updated"]
    assert first["doc_id"] == again["doc_id"] == changed["doc_id"]
    # a name sent decomposed (NFD, as macOS sends it) is the same document, not a second one that looks alike
    composed = tmp_path / "caf\u00e9_M\u00fcller.md"
    composed.write_text("# Caf\u00e9\n\nThe caf\u00e9 opens at eight.\n")
    added = upload(server, composed)[1]["data"][0]
    composed.write_text("# Caf\u00e9\n\nThe caf\u00e9 opens at nine.\n")
    mac = upload(server, composed, unicodedata.normalize("NFD", composed.name))[1]["data"][0]
    assert mac["doc_metadata"]["status"] == "updated" and mac["doc_id"] == added["doc_id"], mac
    assert mac["doc_metadata"]["file_name"] == composed.name


def test_neighbouring_chunks_come_with_prev_next(server: RunningServer) -> None:
    paragraphs = "\n\n".join(f"Paragraph {i}. " + f"Filler sentence number {i} about harbours. " * 30
                             for i in range(6))
    doc_id = server.http().post("/v1/ingest/text", json={"file_name": "long.txt", "text": paragraphs}
                                ).json()["data"][0]["doc_id"]
    found = server.http().post("/v1/chunks", json={"text": "Paragraph 3", "limit": 1, "prev_next_chunks": 1,
                                                   "context_filter": {"docs_ids": [doc_id]}}).json()["data"][0]
    assert len(found["previous_texts"]) == 1 and len(found["next_texts"]) == 1
    assert found["previous_texts"][0] != found["text"] != found["next_texts"][0]


def test_hostile_uploads_are_refused_with_the_reason(server: RunningServer, tmp_path: Path) -> None:
    binary = tmp_path / "fake.txt"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4)
    status, body = upload(server, binary)
    assert status == 415 and "binary" in body["error"]["message"]
    bomb = tmp_path / "bomb.docx"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\0" * 300_000_000)
    status, body = upload(server, bomb)
    assert status == 415 and "zip bomb" in body["error"]["message"]
    status, body = upload(server, binary, name=".bashrc")
    assert status == 400 and "hidden" in body["error"]["message"]
    uploads = server.settings.home / "uploads" / "default"
    assert not (uploads / "fake.txt").exists() and not (uploads / "bomb.docx").exists()


def test_an_ingest_by_another_process_gives_409_while_search_goes_on(server: RunningServer) -> None:
    # the other process adds a folder whose name is nobody else's business: the 409 does not say it (t60)
    secret = server.settings.home.parent / "bigsecretproject-acquisition-of-ACME"
    code = ("import json, os, sys, time\nfrom pathlib import Path\nfrom pgpt.runtime.settings import Settings\n"
            "from pgpt.runtime.documents.index_folder import writer_lock\n"
            "from pgpt.runtime.documents.unfinished import marker_file\n"
            "settings = Settings.from_env()\n"
            f"marker = marker_file(settings, [Path({str(secret)!r})], 'default')\n"
            "marker.parent.mkdir(parents=True, exist_ok=True)\n"
            f"marker.write_text(json.dumps({{'paths': [{str(secret)!r}], 'collection': 'default', 'done': 0, "
            "'total': 1, 'pid': os.getpid()}))\n"
            "with writer_lock(settings):\n    print('locked', flush=True)\n    time.sleep(60)\n")
    secret.mkdir(exist_ok=True)
    kept = server.http().post("/v1/ingest/text", json={"file_name": "kept.txt", "text": "The pier opens at six."})
    assert kept.status_code == 200
    stored = server.settings.home / "uploads" / "default" / "kept.txt"
    holder = subprocess.Popen([sys.executable, "-c", code], env=cli_env(server.settings), stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        refused = server.http().post("/v1/ingest/text", json={"file_name": "late.txt", "text": "Late news."})
        assert refused.status_code == 409 and "Another ingestion" in refused.json()["error"]["message"]
        assert "bigsecret" not in refused.text and str(server.settings.home) not in refused.text
        assert refused.headers["Retry-After"] == str(INGEST_RETRY_AFTER_S)  # after LOCK_WAIT_S of waiting
        assert server.http().post("/v1/chunks", json={"text": "ferry"}).status_code == 200
        # a refused upload leaves uploads/ as it was: it replaced an indexed document's stored copy
        again = server.http().post("/v1/ingest/text", json={"file_name": "kept.txt", "text": "Overwritten."})
        assert again.status_code == 409 and stored.read_text() == "The pier opens at six."
        assert not (stored.parent / "late.txt").exists()
        assert not [f.name for f in stored.parent.iterdir() if f.name.startswith(".")]  # no temporary left either
    finally:
        holder.kill()
        holder.wait()
    later = server.http().post("/v1/ingest/text", json={"file_name": "late.txt", "text": "Late news."})
    assert later.status_code == 200 and later.json()["data"][0]["doc_metadata"]["status"] == "added"


def test_an_upload_waits_for_another_process_s_short_write(server: RunningServer) -> None:
    """Two servers on one home, each sent small files at once: one upload in two was answered 409 at
    once, while the other server's write took a second or two (tester t43)."""
    code = ("import time\nfrom pgpt.runtime.settings import Settings\n"
            "from pgpt.runtime.documents.index_folder import writer_lock\n"
            "with writer_lock(Settings.from_env()):\n    print('locked', flush=True)\n    time.sleep(2)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], env=cli_env(server.settings), stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        waited = server.http().post("/v1/ingest/text", json={"file_name": "memo.txt", "text": "The memo is short."})
        assert waited.status_code == 200 and time.monotonic() - started < LOCK_WAIT_S, waited.text
    finally:
        holder.kill()
        holder.wait()


def test_an_upload_says_where_its_collection_was_read_and_takes_one_file(server: RunningServer, tmp_path: Path) -> None:
    """A second file part was dropped and a collection in the other route's place ignored, both silently."""
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("Alpha notes.")
    second.write_text("Beta notes.")
    http = server.http()
    with open(first, "rb") as one, open(second, "rb") as two:
        both = http.post("/v1/ingest/file", files=[("file", ("a.txt", one)), ("file", ("b.txt", two))])
    assert both.status_code == 400 and "holds 2 files" in both.json()["error"]["message"]
    with open(first, "rb") as handle:
        by_query = http.post("/v1/ingest/file", params={"collection": "qq"}, files={"file": ("a.txt", handle)})
    by_body = http.post("/v1/ingest/text", json={"file_name": "b.txt", "text": "Beta notes.", "collection": "bodyc"})
    assert by_query.json()["data"][0]["doc_metadata"]["collection"] == "qq", by_query.text
    assert by_body.json()["data"][0]["doc_metadata"]["collection"] == "bodyc", by_body.text
    # the list of one collection (?collection= was ignored: every collection's documents came back)
    listed = http.get("/v1/ingest/list", params={"collection": "qq"}).json()["data"]
    assert [d["doc_metadata"]["file_name"] for d in listed] == ["a.txt"], listed
    # a search of every collection says whose each passage is (a server shared by teams, t74)
    found = {c["document"]["doc_metadata"]["file_name"]: c["document"]["doc_metadata"].get("collection")
             for c in http.post("/v1/chunks", json={"text": "Alpha Beta notes", "limit": 10}).json()["data"]}
    assert found.get("a.txt") == "qq" and found.get("b.txt") == "bodyc", found
    misspelled = http.get("/v1/ingest/list", params={"colection": "qq"})
    assert misspelled.status_code == 400 and "did you mean collection?" in misspelled.json()["error"]["message"]
    twice = http.post("/v1/ingest/text", params={"collection": "x"},
                      json={"file_name": "b.txt", "text": "Beta.", "collection": "y"})
    assert twice.status_code == 400 and "given twice" in twice.json()["error"]["message"]
    for text, words in (("", "text is empty"), ("abc\x00def", "NUL characters")):  # were "binary file ... .docx"
        refused = http.post("/v1/ingest/text", json={"file_name": "t.txt", "text": text})
        assert refused.status_code == 400 and words in refused.json()["error"]["message"], refused.text
    for name in ("fe\u200brry.txt", "inv\u202etxt.exe"):  # shown as "ferry.txt" and "invexe.txt"
        refused = http.post("/v1/ingest/text", json={"file_name": name, "text": "Look-alike."})
        assert refused.status_code == 400 and "invisible" in refused.json()["error"]["message"], refused.text


def test_a_misspelled_field_of_chunks_or_ingest_text_is_named(server: RunningServer) -> None:
    """"limt" gave the default 10 passages; "txt" was "text: Field required", which was not its fault."""
    http = server.http()
    for route, body, param, meant in (("/v1/chunks", {"text": "ferry", "limt": 2}, "limt", "limit"),
                                      ("/v1/ingest/text", {"file_name": "a.txt", "txt": "Notes."}, "txt", "text"),
                                      ("/v1/ingest/text", {"fileName": "a.txt", "text": "Notes."}, "fileName",
                                       "file_name")):
        refused = http.post(route, json=body)
        error = refused.json()["error"]
        assert refused.status_code == 400 and error["param"] == param, refused.text
        assert f"unrecognized request argument {param} (did you mean {meant}?)" in error["message"], refused.text
    kept = http.post("/v1/chunks", json={"text": "ferry", "limit": 1, "vendor_field": 1})
    assert kept.status_code == 200 and "POST /v1/chunks: ignored request fields" in server.log_text()


def test_a_misspelled_form_field_or_query_parameter_is_named(server: RunningServer, tmp_path: Path) -> None:
    """-F colection=team, ?colection=team and -F file_nmae=... went to the collection "default" under
    the file's own name with a 200, and nothing was logged."""
    http = server.http()
    notes = tmp_path / "notes.txt"
    notes.write_text("Notes: the quay cafe opens at seven.\n")
    text = {"file_name": "q.txt", "text": "Quay notes."}
    for route, form, query, param, meant in (
            ("/v1/ingest/file", {"colection": "team"}, "", "colection", "collection"),
            ("/v1/ingest/file", {"file_nmae": "x/notes.txt"}, "", "file_nmae", "file_name"),
            ("/v1/ingest/file", {}, "?colection=team", "colection", "collection"),
            ("/v1/ingest/text", None, "?colection=team", "colection", "collection")):
        if form is None:
            refused = http.post(route + query, json=text)
        else:
            with open(notes, "rb") as handle:
                refused = http.post(route + query, files={"file": ("notes.txt", handle)}, data=form)
        error = refused.json()["error"]
        assert refused.status_code == 400 and error["param"] == param, refused.text
        assert f"unrecognized request argument {param} (did you mean {meant}?)" in error["message"], refused.text
    assert "notes.txt" not in http.get("/v1/ingest/list").text and "q.txt" not in http.get("/v1/ingest/list").text
    with open(notes, "rb") as handle:  # others are named in the warning, never their values
        kept = http.post("/v1/ingest/file?vendor_query=secret-value-1", files={"file": ("notes.txt", handle)},
                         data={"vendor_form": "secret-value-2", "collection": "formcheck"})
    assert kept.status_code == 200 and kept.json()["data"][0]["doc_metadata"]["collection"] == "formcheck", kept.text
    log = server.log_text()
    assert "POST /v1/ingest/file: ignored form fields that it does not know: vendor_form" in log
    assert "POST /v1/ingest/file: ignored query parameters that it does not know: vendor_query" in log
    assert "secret-value" not in log
    http.delete(f"/v1/ingest/{kept.json()['data'][0]['doc_id']}")


def test_the_copies_of_a_passage_are_named_as_clients_see_paths(tmp_path: Path) -> None:
    """A passage's copies in other files (``also_in``) carried the server's own paths to its clients."""
    from pgpt.serve.sources import shown_source

    home = tmp_path / "home"
    uploads = home / "uploads" / "default"
    source = {"source": str(uploads / "report.md"), "also_in": [str(uploads / "Copy of report.md"),
                                                                str(Path.home() / "team" / "report.md")]}
    shown = shown_source(home, source)
    assert shown["source"] == "report.md" and shown["also_in"] == ["Copy of report.md", "~/team/report.md"]


def test_passages_and_names_reach_clients_without_escapes_or_active_markup(server: RunningServer, tmp_path: Path) -> None:
    """/v1/chunks and an answer's sources carried a document's OSC 52 clipboard write, ESC[2J, RLO and
    <script> raw inside the JSON, and a local file's name with ESC[31m: a client that printed a source
    ran them (t65). Answers had this treatment; their passages and names now do too."""
    from pgpt.serve.sources import context_chunk, shown_source

    text = ("The parking code is 4455. \x1b]52;c;ZXZpbA==\x1b\\ \x1b[2J cleared \u202eevil\u202c "
            "<script>alert(1)</script><img src=x onerror=alert(2)> done.")
    doc_id = server.http().post("/v1/ingest/text", json={"file_name": "display.txt", "text": text}
                                ).json()["data"][0]["doc_id"]
    found = server.http().post("/v1/chunks", json={"text": "parking code", "limit": 1,
                                                   "context_filter": {"docs_ids": [doc_id]}}).json()["data"][0]
    assert found["text"].startswith("The parking code is 4455.") and found["text"].endswith("done.")
    for raw in ("\x1b", "\u202e", "<script>", "onerror"):
        assert raw not in found["text"], raw
    home = tmp_path / "home"
    local = {"source": str(tmp_path / "evil\nname\x1b[31m\u202etxt.exe"), "text": text, "sentence": text}
    shown = shown_source(home, local)
    assert "\x1b" not in shown["source"] + shown["text"] + shown["sentence"] and "\n" not in shown["source"]
    assert shown["source"].endswith("evil name\\u202etxt.exe")  # as `docs` shows it
    name = context_chunk(shown)["document"]["doc_metadata"]["file_name"]
    assert name == "evil name\\u202etxt.exe"
    server.http().delete(f"/v1/ingest/{doc_id}")


def test_a_storage_fault_is_a_500_that_names_no_server_folder() -> None:
    """An upload into a read-only uploads folder answered 503 "overloaded_error" (clients retry a 503;
    no retry mends a folder's mode) with the server's data path in the message (t60)."""
    from pgpt.runtime.errors import FolderPermissionError
    from pgpt.serve.errors import describe_error

    error = FolderPermissionError("/srv/pgpt/home/uploads/default/.upload-e8fb: permission denied.")
    status, payload, _ = describe_error(error)
    assert status == 500 and payload["error"]["code"] == "storage_error"
    assert "/srv/pgpt" not in payload["error"]["message"] and ".../.upload-e8fb" in payload["error"]["message"]
