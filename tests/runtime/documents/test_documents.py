"""Ingestion, the index and hybrid search on real files, the real embedder and a real LanceDB."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

from pgpt.runtime.documents.chunking import chunk_sections
from pgpt.runtime.documents.readers import Section, Skipped, decode_text, read_document
from pgpt.runtime.documents.index_folder import writer_lock
from pgpt.runtime.documents.store import DocumentStore
from pgpt.runtime.errors import IndexModelMismatchError, IngestLockedError
from pgpt.runtime.documents.discovery import gone_documents
from pgpt.runtime.documents.ingest import forget_gone, ingest, open_store
from pgpt.runtime.documents.summary import STALE
from pgpt.runtime.models import DEFAULT_EMBEDDER
from pgpt.runtime.documents.retrieval import search
from pgpt.runtime.settings import Settings
from support import make_pdf

GBK_TEXT = "北京是中华人民共和国的首都，也是全国的政治和文化中心。" * 6


@pytest.fixture(scope="module")
def embedder(default_models: Settings):  # type: ignore[no-untyped-def]
    from pgpt.runtime.llm.embeddings import default_embedder

    return default_embedder(default_models)


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    """A folder with every supported format, odd encodings, and files that must be skipped."""
    from docx import Document

    root = tmp_path / "docs"
    root.mkdir()
    (root / "notes.txt").write_text("The launch code of project Zephyr is 7341.\n\nKeep it in the red binder.\n")
    (root / "gbk.txt").write_bytes(GBK_TEXT.encode("gbk"))
    (root / "menu.txt").write_bytes("Café crème brûlée, 4 €".encode("cp1252"))
    (root / "wide.txt").write_bytes("UTF-16 text about the lighthouse keeper.".encode("utf-16"))
    (root / "guide.md").write_text("# Guide\n\nIntro text.\n\n## Install\n\nRun the installer with --quiet.\n")
    (root / "page.html").write_text("<html><head><script>alert(1)</script></head><body><h1>Harbour</h1>"
                                    "<p>The ferry leaves at <b>noon</b> every Tuesday.</p></body></html>")
    make_pdf(root / "report.pdf", ["Quarterly revenue grew by eleven percent", "The audit found tantivy logs"])
    make_pdf(root / "scan.pdf", ["", ""])
    document = Document()
    document.add_heading("Travel policy", level=1)
    document.add_paragraph("Employees book trains for trips under five hundred kilometres.")
    table = document.add_table(rows=1, cols=2)  # a table among the paragraphs (it has no .text)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "Per diem", "forty-two euros"
    document.save(str(root / "policy.docx"))
    (root / "tool.py").write_text("def greet():\n    return 'hello from the greeting tool'\n")
    (root / "image.bin").write_bytes(bytes(range(256)) * 8)
    (root / "outside").symlink_to("/etc/hostname")
    os.mkfifo(root / "pipe")
    return root


def run(settings: Settings, embedder, *paths: Path, **options):  # type: ignore[no-untyped-def]
    return ingest(settings, list(paths), embedder, **options)


def test_every_format_is_read_and_every_skip_is_explained(settings: Settings, embedder, corpus: Path) -> None:  # type: ignore[no-untyped-def]
    report = run(settings, embedder, corpus)
    added = {Path(p).name for p in report.added}
    assert added == {"notes.txt", "gbk.txt", "menu.txt", "wide.txt", "guide.md", "page.html", "report.pdf",
                     "policy.docx", "tool.py"}
    reasons = {Path(p).name: r for p, r in report.skipped}
    assert "scanned PDF" in reasons["scan.pdf"] and "binary" in reasons["image.bin"]
    assert "outside the folder" in reasons["outside"] and "special file" in reasons["pipe"]
    assert report.chunks >= 9 and not report.failed and "9 added" in report.summary()
    texts = {Path(r["path"]).name: r for r in open_store(settings, embedder)._rows(
        ["path", "text", "heading", "page"], None)}
    assert "首都" in texts["gbk.txt"]["text"] and "brûlée" in texts["menu.txt"]["text"]
    assert "lighthouse" in texts["wide.txt"]["text"] and "alert" not in texts["page.html"]["text"]
    assert "Per diem | forty-two euros" in texts["policy.docx"]["text"]


def test_search_finds_the_source_page_and_heading(settings: Settings, embedder, corpus: Path) -> None:  # type: ignore[no-untyped-def]
    run(settings, embedder, corpus)
    store = open_store(settings, embedder)
    [top, *_] = search(store, embedder, "What is the launch code of project Zephyr?", k=3)
    assert Path(top.source).name == "notes.txt" and "7341" in top.text
    pdf = [h for h in search(store, embedder, "tantivy audit logs", k=5) if h.source.endswith("report.pdf")]
    assert pdf and pdf[0].page == 2
    install = search(store, embedder, "installer quiet flag", k=1)[0]
    # the guide's two short sections share one chunk under their common heading
    assert install.heading == "Guide" and "--quiet" in install.text
    assert search(store, embedder, "train trips kilometres", k=1)[0].heading == "Travel policy"


def test_reingest_is_incremental(settings: Settings, embedder, corpus: Path) -> None:  # type: ignore[no-untyped-def]
    run(settings, embedder, corpus)
    again = run(settings, embedder, corpus)
    assert len(again.unchanged) == 9 and again.chunks == 0 and not again.added
    (corpus / "notes.txt").write_text("Project Zephyr was cancelled in March.\n")
    (corpus / "guide.md").rename(corpus / "manual.md")
    (corpus / "page.html").unlink()
    changed = run(settings, embedder, corpus, prune=True)
    assert [Path(p).name for p in changed.updated] == ["notes.txt"]
    assert [Path(p).name for p in changed.renamed] == ["manual.md"] and changed.chunks == 1  # notes only
    # the two paths apart (`--json` wrote "OLD -> NEW", which a name may hold, t50)
    assert [(Path(a).name, Path(b).name) for a, b in changed.moved] == [("guide.md", "manual.md")]
    assert [Path(p).name for p in changed.removed] == ["page.html"]
    store = open_store(settings, embedder)
    paths = {Path(d.path).name: d for d in store.documents()}
    assert "guide.md" not in paths and "page.html" not in paths and paths["manual.md"].chunks >= 1
    texts = " ".join(h.text for h in search(store, embedder, "Zephyr launch code", k=5))
    assert "cancelled" in texts and "7341" not in texts


def test_a_gone_file_is_named_with_the_way_to_forget_it(settings: Settings, embedder, corpus: Path) -> None:  # type: ignore[no-untyped-def]
    """Without --prune a deleted file kept answering and the summary said "0 removed", nothing else."""
    run(settings, embedder, corpus)
    (corpus / "notes.txt").unlink()
    report = run(settings, embedder, corpus)
    assert [Path(p).name for p in report.gone] == ["notes.txt"] and not report.removed
    assert report.summary().endswith("; 1 indexed file under these paths is gone but still answers "
                                     "(--prune forgets it)")
    assert report.summary("Ctrl+G forgets").endswith("(Ctrl+G forgets it)")  # the app's way
    assert not run(settings, embedder, corpus, prune=True).gone
    # emptied (a sync cut it short) or damaged: "skipped" while its old text answered, without a word (t47)
    (corpus / "menu.txt").write_text("")
    report = run(settings, embedder, corpus)
    assert (str((corpus / "menu.txt").resolve()), "no text in the file (it is empty)" + STALE) in report.skipped
    assert not [reason for _, reason in report.skipped + report.failed if reason.endswith(STALE)][1:]  # it alone


def test_a_folder_made_unreadable_after_it_was_indexed_is_not_gone_and_stops_nothing(  # type: ignore[no-untyped-def]
        settings: Settings, embedder, corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A shared folder's permissions changed: Path.exists raised PermissionError, the whole ingest stopped
    with advice about PGPT_HOME, and the app's Docs list came up empty (t47)."""
    import os

    run(settings, embedder, corpus)
    (corpus / "notes.txt").write_text("Project Zephyr was renamed Boreas.\n")  # changed, to be read again
    real_stat = os.stat

    def no_access(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if Path(path).name == "guide.md":  # as "chmod 000" on its folder does for a user who is not root
            raise PermissionError(13, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", no_access)
    store = open_store(settings, embedder)
    assert gone_documents(store.documents()) == []  # not gone: it cannot be looked at
    report = run(settings, embedder, corpus)
    assert [Path(p).name for p in report.updated] == ["notes.txt"] and not report.gone
    assert "guide.md" in {Path(d.path).name for d in open_store(settings, embedder).documents()}


def test_forget_gone_forgets_what_prune_would_without_reading_the_files(settings: Settings, embedder,  # type: ignore[no-untyped-def]
                                                                       corpus: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("The night ferry was withdrawn in 1998.\n")
    run(settings, embedder, corpus)
    run(settings, embedder, elsewhere)
    (corpus / "notes.txt").unlink()
    elsewhere.unlink()  # gone too, but not under the folder asked for: it stays
    store = open_store(settings, embedder)
    assert sorted(Path(d.path).name for d in gone_documents(store.documents())) == ["elsewhere.txt", "notes.txt"]
    assert [Path(d.path).name for d in forget_gone(settings, embedder, [corpus])] == ["notes.txt"]
    assert [Path(d.path).name for d in gone_documents(open_store(settings, embedder).documents())] == ["elsewhere.txt"]
    assert forget_gone(settings, embedder, [corpus]) == []


def test_another_embedding_model_is_refused_with_an_offer_to_reindex(settings: Settings, embedder,
                                                                     corpus: Path) -> None:  # type: ignore[no-untyped-def]
    run(settings, embedder, corpus / "notes.txt")
    with pytest.raises(IndexModelMismatchError, match=DEFAULT_EMBEDDER):
        DocumentStore(settings, "another-model-id", "bge-small", 384)
    other = copy.copy(embedder)  # the same model under another id, as a changed model would be
    other.model_id = "changed"
    with pytest.raises(IndexModelMismatchError):
        run(settings, other, corpus / "notes.txt")
    rebuilt = run(settings, other, corpus / "notes.txt", reindex=True)
    assert len(rebuilt.added) == 1


def test_a_second_writer_is_refused_while_reading_goes_on(settings: Settings, embedder, corpus: Path) -> None:  # type: ignore[no-untyped-def]
    run(settings, embedder, corpus / "notes.txt")
    with writer_lock(settings):
        with pytest.raises(IngestLockedError, match="pid"):
            run(settings, embedder, corpus / "guide.md")
        assert search(open_store(settings, embedder), embedder, "launch code", k=1)
        from pgpt.runtime.documents.index_folder import index_state

        assert f", an ingestion is running (pid {os.getpid()})" in index_state(settings)  # `doctor` says who


def test_a_command_is_refused_before_it_loads_anything_while_another_writes(settings: Settings) -> None:
    """`pgpt-tui ingest` and `forget` were refused only after loading the embedder (5-6 s, tester t43)."""
    from pgpt.runtime.documents.index_folder import index_dir, refuse_if_writing

    refuse_if_writing(settings)  # no index yet: nothing to ask
    index_dir(settings).mkdir(parents=True)
    refuse_if_writing(settings)  # nobody writes
    with writer_lock(settings), pytest.raises(IngestLockedError, match="Another ingestion"):
        refuse_if_writing(settings)


def test_unknown_encodings_decode() -> None:
    assert decode_text(GBK_TEXT.encode("gbk")) == GBK_TEXT
    assert decode_text("naïve café".encode("cp1252")) == "naïve café"
    # A tester's files: cp1252 with a few accents read as a Chinese code page ("Coru鎙"), French as
    # cp1250 ("ŕ" for "à"), and 4 MB of UTF-8 with 8 stray Latin-1 bytes read whole as another page.
    thanks = "Docutils thanks. " * 200 + "University of A Coruña, Günter Milde, Félix." + " More text." * 100
    for text, page in ((thanks, "cp1252"), (thanks[-300:], "cp1252"), ("Merci à tous, voilà. " * 40, "cp1252"),
                       ("Dziękujemy za pomoc w tłumaczeniu na język polski. " * 40, "cp1250"),
                       ("Türkçe belge için teşekkür ederiz, ışık ve güneş. " * 30, "cp1254"),
                       ("Привет, это русский текст. " * 40, "cp1251"), ("日本語のテキストです。" * 30, "shift_jis")):
        assert decode_text(text.encode(page)) == text, page
    # short files of a tester's (t50): German with two high bytes side by side ("Grüße" was "Gre", a GBK
    # reading), Russian read as cp1252 ("Ïðàâèëà"), Greek, and Japanese read as GBK; Chinese stays GBK
    for text, pages in (("Viele Grüße aus der Hauptstraße, süß und Fußgängerzone.", ("cp1252",)),
                        ("Правила доступа к серверной. Ключ у Сергея Петрова.", ("cp1251", "koi8_r")),
                        ("Κανόνες πρόσβασης στο δωμάτιο. Το κλειδί έχει ο Γιώργος.", ("cp1253",)),
                        ("東京サーバー室の規則。鍵は受付の田中さんが管理しています。", ("shift_jis", "euc_jp")),
                        ("北京是中华人民共和国的首都。", ("gbk",)), ("Name: 张三, city: 上海.", ("gbk",)),
                        ("上海 is the city", ("gbk",)),
                        ("Klucz do serwerowni ma pan Michał Wójcik. Zażółć gęślą jaźń.", ("cp1250",)),
                        ("Server v Brně spravuje paní Řeháková. Záloha probíhá každý čtvrtek.", ("cp1250", "iso8859_2")),
                        ("A kulcsot Kovács Árpád őrzi. A mentés minden hétfőn történik.", ("cp1250",)),
                        ("As opções de configuração estão em português, não é?", ("cp1252",))):
        for page in pages:
            assert decode_text(text.encode(page)) == text, page
    # an HTML page's declared charset wins over detection (Shift_JIS, Big5, KOI8-R pages were mojibake, t50)
    from pgpt.runtime.documents.encodings import decode_html

    for page, label, words in (("shift_jis", 'http-equiv="Content-Type" content="text/html; charset=shift_jis"',
                                "鍵は受付の田中さんが管理しています。"), ("big5", 'charset="big5"', "伺服器位於台北資料中心。"),
                               ("koi8_r", 'charset="koi8-r"', "Сервер находится в Новосибирске."),
                               ("cp1252", 'charset="iso-8859-1"', "Grüße aus Köln, 5 €.")):
        html = f"<html><head><meta {label}></head><body><p>{words}</p></body></html>"
        assert decode_html(html.encode(page)) == html, page
    xml = '<?xml version="1.0" encoding="windows-1251"?><html><p>Пароль меняется каждый месяц.</p></html>'
    assert decode_html(xml.encode("cp1251")) == xml
    liar = '<meta charset="utf-8"><p>Grüße aus Köln, voilà.</p>'  # says UTF-8, is cp1252: detection reads it
    assert decode_html(liar.encode("cp1252")) == liar
    # a short UTF-8 note with one pasted cp1252 byte stays UTF-8 (it became "BÃ¼ro", t50)
    note = "Der Drucker im Büro heißt Brother. Preis: 120 € Grüße von Jörg."
    assert decode_text(note.encode().replace("€".encode(), b"\x80")) == note.replace("€", "\ufffd")
    mostly = "© 2025 Günter Milde. " * 5000
    assert decode_text(mostly.encode() + b"caf\xe9 " + mostly.encode()) == f"{mostly}caf\ufffd {mostly}"
    assert decode_text("\ufeffBOM".encode("utf-8")) == "BOM"
    assert decode_text("wide".encode("utf-16")) == "wide"
    # a Windows export without its byte-order mark was a "binary file" (t47); binary data stays binary
    wide = "The ferry leaves at 7:15 from pier 3.\n\u00c9milie keeps the keys.\n"
    assert decode_text(wide.encode("utf-16-le")) == decode_text(wide.encode("utf-16-be")) == wide
    with pytest.raises(Skipped):
        decode_text(bytes(range(256)) * 16)


def test_windows_line_ends_are_read_as_line_ends(tmp_path: Path) -> None:
    """A CRLF file's "\r" reached `search --json` and the server's passages."""
    text = "La biblioteca abrió en 1964.\r\nLa directora es Begoña.\r\n\r\nOld Mac\rline"
    (tmp_path / "espanol.txt").write_bytes(text.encode("cp1252"))
    (text,) = [section.text for section in read_document(tmp_path / "espanol.txt")]
    assert text == "La biblioteca abrió en 1964.\nLa directora es Begoña.\n\nOld Mac\nline"


def test_chunks_fit_the_model_overlap_and_point_into_the_text() -> None:
    words = " ".join(f"w{i}" for i in range(1000))
    sections = [Section("Short intro.\n\n" + words, heading="H")]
    chunks = chunk_sections(sections, lambda t: len(t.split()), max_tokens=100, overlap_tokens=20)
    assert all(len(c.text.split()) <= 100 for c in chunks) and chunks[0].text == "Short intro."
    assert chunks[1].text.split()[-20:] == chunks[2].text.split()[:20]  # overlapping windows
    assert all(sections[0].text[c.start:c.end] == c.text for c in chunks)


def test_one_long_document_can_fill_the_top_five(settings: Settings, embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # The former cap of 3 passages per document kept the 4th and 5th best of the only relevant file out.
    docs = tmp_path / "docs"
    docs.mkdir()
    topics = ["boarding the ferry with a bicycle", "ferry tickets for children", "the ferry timetable in winter",
              "dogs on the ferry deck", "ferry cancellations in storms", "lost property on the ferry"]
    (docs / "ferry.md").write_text("\n\n".join(f"## {t.title()}\n\nThis part covers {t}. " + "Details follow. " * 60
                                               for t in topics))
    (docs / "bakery.md").write_text("# Bakery\n\nThe bakery sells rye bread and cakes.\n")
    ingest(settings, [docs], embedder)
    hits = search(open_store(settings, embedder), embedder, "What are the ferry rules?", k=5)
    assert [Path(h.source).name for h in hits] == ["ferry.md"] * 5


def test_a_chunk_that_only_full_text_search_finds_still_ranks(settings: Settings, embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Reciprocal rank fusion put a chunk that BM25 ranked first, clearly, below chunks both legs
    # ranked middling; the score fusion keeps BM25's sure hit in the top results.
    docs = tmp_path / "docs"
    docs.mkdir()
    parts = [f"## Setting {i}\n\nThe harbour configuration value number {i} changes the harbour settings." for i in range(12)]
    parts.append("## SERVER_NAME\n\nInform the application what host and port it is bound to.")
    (docs / "config.md").write_text("# Harbour configuration\n\n" + "\n\n".join(parts))
    ingest(settings, [docs], embedder)
    hits = search(open_store(settings, embedder), embedder, "Which harbour configuration setting tells the app "
                                                               "what host and port it is bound to?", k=3)
    assert any("SERVER_NAME" in h.text for h in hits)


def test_on_a_tie_the_passage_with_the_query_word_ranks_first() -> None:
    """A newcomer's `search libevent` ranked a passage without the word first: the best cosine and the
    best BM25 both fuse to 0.5."""
    from pgpt.runtime.documents.retrieval import _fuse

    def row(chunk: str, similarity: float, **more: float) -> dict[str, object]:
        return {"chunk_id": f"{chunk}:0", "doc_id": chunk, "path": f"{chunk}.txt", "text": chunk, "heading": "",
                "page": 0, "similarity": similarity, **more}

    vector_leg = [row("authors", 0.62), row("readme", 0.41)]
    text_leg = [row("readme", 0.41, _score=7.5)]
    for legs in ([vector_leg, text_leg], [text_leg, vector_leg]):
        hits = _fuse(legs, 2, None)
        assert [h.source for h in hits] == ["readme.txt", "authors.txt"] and hits[0].score == hits[1].score


def test_copies_of_a_passage_in_other_files_are_shown_once_naming_the_copies() -> None:
    """A team folder's "Copy of report.md" and "report (1).md" (tester t42): each copy of a passage
    took one of the few places of the results, where the model reads three."""
    from pgpt.runtime.documents.retrieval import _fuse

    def row(path: str, text: str, similarity: float) -> dict[str, object]:
        return {"chunk_id": f"{path}:0", "doc_id": path, "path": path, "text": text, "heading": "", "page": 0,
                "similarity": similarity}

    report = "The audit closed 17 findings in March."
    vector_leg = [row("team/report (1).md", report, 0.8), row("team/Copy of report.md", report, 0.8),
                  row("infra/report.md", report, 0.8), row("infra/budget.md", "The budget grew by 4%.", 0.5),
                  row("infra/plan.md", "The plan starts in May.", 0.3)]
    hits = _fuse([vector_leg], 3, None)
    assert [h.source for h in hits] == ["infra/report.md", "infra/budget.md", "infra/plan.md"]  # the same one each time
    assert hits[0].also_in == ("team/report (1).md", "team/Copy of report.md") and hits[1].also_in == ()
    assert hits[0].as_json()["also_in"] == ["team/report (1).md", "team/Copy of report.md"]


def test_a_long_text_without_blank_lines_is_chunked_to_fit_the_embedder(settings: Settings, embedder,
                                                                        tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # The chunker counted tokens with the embedder's truncating tokenizer: every long paragraph
    # counted as 256, so 1,200 words became two chunks and a fact past the first 256 word pieces
    # was never embedded.
    docs = tmp_path / "docs"
    docs.mkdir()
    filler = [f"Report {i} lists the river, the mountain and the cloud systems of region {i}." for i in range(90)]
    filler.insert(60, "The museum guard on duty in the west wing is named Ingrid Solberg.")
    (docs / "onepara.txt").write_text("\n".join(filler) + "\n")
    (docs / "words.txt").write_text(" ".join(f"harbour{i}" for i in range(1500)))  # no sentence, no line
    ingest(settings, [docs], embedder)
    store = open_store(settings, embedder)
    hits = search(store, embedder, "Who is the guard on duty in the museum's west wing?", k=1)
    assert "Ingrid Solberg" in hits[0].text
    every = search(store, embedder, "harbour", k=40)
    assert len({h.source for h in every}) == 2
    assert all(embedder.count_tokens(h.text) <= embedder.max_tokens for h in every)


def test_a_file_named_as_typed_is_reported_by_its_absolute_path(settings: Settings, embedder, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """`ingest docs/rel.txt docs/empty.txt --json` gave "added" absolute and "skipped" as typed (t50)."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "rel.txt").write_text("The ferry leaves at noon.\n")
    (tmp_path / "docs" / "empty.txt").write_text("")
    monkeypatch.chdir(tmp_path)
    report = run(settings, embedder, Path("docs/rel.txt"), Path("docs/empty.txt"))
    assert report.added == [str(tmp_path / "docs" / "rel.txt")]
    assert [path for path, _ in report.skipped] == [str(tmp_path / "docs" / "empty.txt")]


def test_one_folder_that_cannot_be_entered_costs_that_folder_only(tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """`chmod 000` on one subfolder failed the whole add, blamed on the folder above it: nothing new was
    indexed from a shared tree with one private folder (t66). Root passes any mode, so the kernel's
    answer to another user is played here."""
    import os

    from pgpt.runtime.documents.discovery import collect_files

    docs = tmp_path / "docs"
    (docs / "secret").mkdir(parents=True)
    (docs / "secret" / "a.txt").write_text("hidden\n")
    (docs / "new1.html").write_text("<p>new content</p>\n")
    real_stat, real_scandir = os.stat, os.scandir

    def stat(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if Path(path).parent.name == "secret":  # what is inside cannot be looked at
            raise PermissionError(13, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)

    def scandir(path="."):  # type: ignore[no-untyped-def]
        if Path(path).name == "secret":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.setattr(os, "scandir", scandir)
    files, left_out = collect_files([docs])
    assert [f.name for f in files] == ["new1.html"]
    assert left_out == [(str(docs / "secret"), "a folder that cannot be listed (Permission denied)")]
