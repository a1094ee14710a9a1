"""Where a pgpt-serve keeps uploads: never outside its uploads folder, names refused rather than cut,
the earlier file of a name kept until its new one is indexed, and nothing left behind by a server
killed mid-upload (split from test_documents_api.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from serve_support import RunningServer, upload


def test_an_upload_never_leaves_the_uploads_folder(server: RunningServer, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("must stay as it is")
    uploads = server.settings.home / "uploads" / "default"
    uploads.mkdir(parents=True, exist_ok=True)
    (uploads / "planted.txt").symlink_to(outside)
    source = tmp_path / "planted.txt"
    source.write_text("An uploaded note about the harbour master.")
    assert upload(server, source)[0] == 200
    status, body = upload(server, source, name="../../../escape.txt")
    assert status == 400 and "'..'" in body["error"]["message"]
    (uploads / "linked").symlink_to(tmp_path)  # a planted folder link is not followed either
    status, body = upload(server, source, name="linked/escape.txt")
    assert status == 409 and "'linked' is a document's name" in body["error"]["message"], body
    assert not (tmp_path / "escape.txt").exists()
    assert outside.read_text() == "must stay as it is" and not (uploads / "planted.txt").is_symlink()
    assert not (server.settings.home / "escape.txt").exists() and not (uploads / "escape.txt").exists()


def test_unsafe_names_are_refused_not_cut_and_plain_folders_are_kept(server: RunningServer, tmp_path: Path) -> None:
    """"../../etc/evil.txt" was stored as evil.txt without a word, and the collection "../../x" in the
    folder uploads/x while the index recorded "../../x": two names, one folder."""
    http = server.http()
    for name, cause in (("../../etc/evil.txt", "'..'"), ("notes/../../evil.txt", "'..'"), ("..\\evil.txt", "'\\'"),
                        ("/etc/evil.txt", "root"), ("notes//evil.txt", "empty part"), ("notes/.git/evil.txt", "hidden"),
                        ("/".join(["a"] * 17), "more than 16 parts")):
        refused = http.post("/v1/ingest/text", json={"file_name": name, "text": "Evil."})
        assert refused.status_code == 400 and cause in refused.json()["error"]["message"], refused.text
    note = tmp_path / "x.txt"
    note.write_text("Evil.")
    for collection in ("../../x", "x/y", ".hidden", "a b"):
        as_text = http.post("/v1/ingest/text", params={"collection": collection},
                            json={"file_name": "x.txt", "text": "Evil."})
        with open(note, "rb") as handle:
            as_file = http.post("/v1/ingest/file", files={"file": ("x.txt", handle)}, data={"collection": collection})
        for refused in (as_text, as_file):
            message = refused.json()["error"]["message"]
            assert refused.status_code == 400 and "letters, digits" in message and "collection" in message, message
    # a name of 5000 characters breaks the form parser's header limit before the name is read
    with open(note, "rb") as handle:
        refused = http.post("/v1/ingest/file", files={"file": ("n" * 5000 + ".txt", handle)})
    assert refused.status_code == 400 and "255 bytes" in refused.json()["error"]["message"], refused.text
    uploads = server.settings.home / "uploads"
    assert not (uploads / "default" / "evil.txt").exists() and not (uploads / "x").exists()
    assert not (uploads / "default" / "notes").exists()  # nothing made for a refused name
    assert not any(d["doc_metadata"]["file_name"] in ("evil.txt", "x.txt")
                   for d in http.get("/v1/ingest/list").json()["data"])
    kept = http.post("/v1/ingest/text", params={"collection": "team-notes_2.0"},
                     json={"file_name": "plain name.txt", "text": "A plain name in a plain collection."})
    assert kept.status_code == 200, kept.text
    assert kept.json()["data"][0]["doc_metadata"]["path"] == "plain name.txt"
    assert (uploads / "team-notes_2.0" / "plain name.txt").read_text() == "A plain name in a plain collection."
    # plain folder names keep one tree's files of one name apart (pgpt-tui ingest sends a folder so)
    for team in ("ops", "dev"):
        with open(note, "rb") as handle:
            kept = http.post("/v1/ingest/file", files={"file": ("README.md", handle)},
                             data={"file_name": f"handbook/{team}/README.md"})
        assert kept.status_code == 200 and kept.json()["data"][0]["doc_metadata"]["status"] == "added", kept.text
        assert kept.json()["data"][0]["doc_metadata"]["path"] == f"handbook/{team}/README.md"
    assert (uploads / "default" / "handbook" / "dev" / "README.md").stat().st_mode & 0o077 == 0
    assert (uploads / "default" / "handbook").stat().st_mode & 0o777 == 0o700
    clash = http.post("/v1/ingest/text", json={"file_name": "handbook/ops/README.md/x.txt", "text": "x"})
    assert clash.status_code == 409 and "'README.md' is a document's name" in clash.json()["error"]["message"]


def test_an_upload_that_cannot_be_indexed_keeps_the_earlier_file_of_its_name(server: RunningServer) -> None:
    """A binary sent under an indexed document's name got its 415, and the stored copy was deleted
    while the index still held its passages."""
    http = server.http()
    first = http.post("/v1/ingest/text", json={"file_name": "pier.txt", "text": "The pier opens at six."})
    assert first.status_code == 200
    refused = http.post("/v1/ingest/file", files={"file": ("pier.txt", b"\x00\x01\x02binary\xff" * 100)})
    assert refused.status_code == 415, refused.text
    assert "not indexed: binary file; its earlier upload stays indexed." in refused.json()["error"]["message"]
    assert (server.settings.home / "uploads" / "default" / "pier.txt").read_text() == "The pier opens at six."


def test_uploads_of_one_name_at_once_each_report_what_became_of_their_own_content(server: RunningServer) -> None:
    """Eight clients sending different texts as race.txt were told "unchanged" for the content that
    stayed indexed: each upload was renamed into place before it waited for its turn to be indexed."""
    from concurrent.futures import ThreadPoolExecutor

    def send(number: int) -> tuple[str, str]:
        with server.http() as client:
            response = client.post("/v1/ingest/text", json={"file_name": "race.txt",
                                                            "text": f"Version {number} of the race notes."})
        assert response.status_code == 200, response.text
        return response.json()["data"][0]["doc_metadata"]["status"], f"Version {number} of the race notes."

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(send, range(6)))
    statuses = sorted(status for status, _ in results)
    assert statuses == ["added"] + ["updated"] * 5, statuses
    kept = (server.settings.home / "uploads" / "default" / "race.txt").read_text()
    with server.http() as client:
        found = client.post("/v1/chunks", json={"text": "race notes version", "limit": 5}).json()["data"]
    assert [c["document"]["doc_metadata"]["file_name"] for c in found].count("race.txt") == 1
    assert next(c["text"] for c in found if c["document"]["doc_metadata"]["file_name"] == "race.txt") == kept


def test_a_killed_servers_temporary_upload_copies_go_at_the_next_start(tmp_path: Path) -> None:
    """kill -9 mid-upload left ".upload-*" and ".earlier-*" copies that nothing listed or removed; one
    outlived its document's DELETE (t60). Those of a live process (a second server on the same home) stay."""
    import os

    from pgpt.serve.documents import sweep_uploads

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    folder = tmp_path / "uploads" / "default" / "hr"
    folder.mkdir(parents=True)
    left = [folder / f".upload-{dead.stdout.strip()}-0a1b2c", folder / f".earlier-{dead.stdout.strip()}-3d4e5f"]
    kept = [folder / f".upload-{os.getpid()}-0a1b2c", folder / "pay.txt", folder / ".earlier-notes.txt"]
    for path in left + kept:
        path.write_text("GECKO-7070\n")
    assert sweep_uploads(tmp_path) == 2
    assert not any(p.exists() for p in left) and all(p.exists() for p in kept)


def test_a_server_killed_while_it_indexed_an_upload_leaves_no_unindexed_file(tmp_path: Path) -> None:
    """kill -9 while an upload was indexed left it under its own name in uploads/, never indexed, never
    listed, for good (t66); an update's new content stayed while the index kept the old. The next start
    removes the new document's file and puts the updated one's earlier content back."""
    from pgpt.serve.documents import _name_tag, sweep_uploads

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = dead.stdout.strip()
    folder = tmp_path / "uploads" / "default"
    folder.mkdir(parents=True)
    (folder / "new.txt").write_text("never indexed\n")  # its upload was being indexed
    (folder / f".new-{pid}-{_name_tag('new.txt')}").write_bytes(b"")
    (folder / "policy.txt").write_text("the new version, never indexed\n")
    (folder / f".earlier-{pid}-{_name_tag('policy.txt')}").write_text("the version the index holds\n")
    (folder / "other.txt").write_text("indexed long ago\n")
    assert sweep_uploads(tmp_path) == 2
    assert sorted(p.name for p in folder.iterdir()) == ["other.txt", "policy.txt"]
    assert (folder / "policy.txt").read_text() == "the version the index holds\n"
    # the marks an upload leaves while it is indexed are the ones the sweep reads
    from pgpt.serve.documents import _kept_until_indexed

    for name in ("fresh.txt", "policy.txt"):
        with _kept_until_indexed(folder / name):
            (folder / name).write_text("uploaded\n")
            marks = {p.name for p in folder.iterdir() if p.name.startswith(".")}
            kind = "earlier" if name == "policy.txt" else "new"
            assert marks == {f".{kind}-{os.getpid()}-{_name_tag(name)}"}
    assert not any(p.name.startswith(".") for p in folder.iterdir())  # gone once indexed
