"""The document benchmark's corpora and questions are sound (the run itself is `pgpt-tui bench-docs`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pgpt.bench.corpora import QUESTION_SETS, build_cjk, build_corpus, build_manuals
from pgpt.bench.scoring import contains_answer, normalize
from pgpt.runtime.documents.readers import read_document

# Words a paraphrased question may share with its evidence: function words, words too general to
# point at a passage, and the names of the documents (a user names the library they ask about).
_COMMON = set("""a an the and or but if of to in on at by for from with without as is are was were be been being
do does did done can could should would will may might must shall it its this that these those there here
what which who whom whose when where why how i me my we our you your he she they them their not no yes so than
then too very just only also into out up down over under about after before again all any each few more most
other some such own same both between through during above below off once get got give given make made use used
using default defaults way thing something one ones like much many set let new""".split())
_NAMES = {"gpl", "gplv3", "gnu", "lgpl", "mpl", "mozilla", "flask", "jinja", "click", "black", "coverage",
          "coverage.py", "paramiko", "pygments", "arrow", "sftp", "licence", "license", "version"}


def _words(text: str) -> set[str]:
    words = re.findall(r"[a-z0-9_]+(?:[.'][a-z0-9_]+)*", text.lower())
    return {_stem(w) for w in words if w not in _COMMON and w not in _NAMES and len(w) > 1}


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


@pytest.fixture(scope="module")
def manual_texts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    files = build_manuals(tmp_path_factory.mktemp("manuals"))
    return {f.name: "\n\n".join(s.text for s in read_document(f)) for f in files}


def test_first_corpus_builds_in_five_formats_and_every_question_is_answerable(tmp_path: Path) -> None:
    files = build_corpus(tmp_path)
    assert {f.suffix for f in files} == {".md", ".rst", ".html", ".pdf", ".docx"} and len(files) == 11
    texts = {f.name: " ".join(" ".join(s.text for s in read_document(f)).split()) for f in files}
    assert len(read_document(tmp_path / "apache-2.0.pdf")) >= 4  # real pages with a text layer
    for name in ("named", "paraphrased"):
        questions = QUESTION_SETS[name].load()
        assert len(questions) >= 30 and {q["source"] for q in questions} == set(texts), name
        for q in questions:  # as whole words, the way answers are scored
            assert all(contains_answer(texts[q["source"]], word) for word in q["answer"]), q


def test_first_corpus_paraphrased_questions_name_neither_their_document_nor_their_answer() -> None:
    names = ["diskcache", "hugging", "rich", "tqdm", "charset", "lancedb", "pypdf", "urllib3", "textual",
             "apache"]
    for q in QUESTION_SETS["paraphrased"].load():
        assert not any(contains_answer(q["question"], name) for name in names), q["question"]
        assert not any(contains_answer(q["question"], word) for word in q["answer"]), q["question"]


def test_manuals_corpus_is_long_documents_in_five_formats(manual_texts: dict[str, str]) -> None:
    assert {Path(name).suffix for name in manual_texts} == {".pdf", ".html", ".docx", ".md", ".txt"}
    assert sum(len(text) > 15_000 for text in manual_texts.values()) >= 8


@pytest.mark.parametrize("set_name", ["manuals-dev", "manuals-test"])
def test_every_evidence_span_is_in_its_document_and_no_other(set_name: str, manual_texts: dict[str, str]) -> None:
    texts = {name: normalize(text) for name, text in manual_texts.items()}
    for q in QUESTION_SETS[set_name].load():
        if q.get("unanswerable"):
            assert q["answers"] == [] and normalize(q["related"]) in texts[q["source"]], q["id"]
            continue
        span = normalize(q["evidence"])
        assert [name for name, text in texts.items() if span in text] == [q["source"]], q["id"]
        assert any(contains_answer(q["evidence"], answer) for answer in q["answers"]), q["id"]
        text = texts[q["source"]]
        deep = text.find(span) >= 10_000 and len(text) - text.find(span) - len(span) >= 1_000
        assert ("deep" in q["tags"]) == deep, q["id"]


def test_held_out_set_has_the_size_and_mix_the_issue_asks_for() -> None:
    test = QUESTION_SETS["manuals-test"].load()
    answerable = [q for q in test if not q.get("unanswerable")]
    assert len(answerable) >= 60 and len(test) - len(answerable) >= 15
    assert 0.4 <= sum("paraphrase" in q["tags"] for q in answerable) / len(answerable) <= 0.6
    assert all(sum(tag in q["tags"] for q in answerable) >= 5 for tag in ("table", "list", "deep"))
    dev = QUESTION_SETS["manuals-dev"].load()
    assert not {q["question"] for q in dev} & {q["question"] for q in test}
    assert len({q["id"] for q in dev + test}) == len(dev) + len(test)


@pytest.mark.parametrize("set_name", ["manuals-dev", "manuals-test"])
def test_paraphrased_questions_share_no_distinctive_word_with_their_evidence(set_name: str) -> None:
    for q in QUESTION_SETS[set_name].load():
        if "paraphrase" in q["tags"]:
            shared = _words(q["question"]) & _words(q["evidence"])
            assert not shared, (q["id"], shared)
            assert not any(contains_answer(q["question"], answer) for answer in q["answers"]), q["id"]


def test_cjk_set_is_held_out_and_every_span_is_in_its_document_and_no_other(tmp_path: Path) -> None:
    """The Chinese and Japanese set (32 questions, 8 unanswerable): its spans as the reader gives them."""
    texts = {f.name: normalize("\n\n".join(s.text for s in read_document(f))) for f in build_cjk(tmp_path)}
    questions = QUESTION_SETS["cjk-test"].load()
    assert QUESTION_SETS["cjk-test"].role == "test" and len(texts) == 6
    assert len(questions) == 32 and sum(bool(q.get("unanswerable")) for q in questions) == 8
    for q in questions:
        span = normalize(q.get("evidence") or q["related"])
        assert [name for name, text in texts.items() if span in text] == [q["source"]], q["id"]
        assert all(contains_answer(q["evidence"], answer) for answer in q["answers"]), q["id"]
