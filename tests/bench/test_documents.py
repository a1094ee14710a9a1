"""The document benchmark's corpus and questions are sound (the run itself is `pgpt-tui bench-docs`)."""

from __future__ import annotations

from pathlib import Path

from pgpt.bench.documents import _contains_word, build_corpus, load_question_sets
from pgpt.runtime.documents.readers import read_document


def test_corpus_builds_in_five_formats_and_every_question_is_answerable(tmp_path: Path) -> None:
    files = build_corpus(tmp_path)
    assert {f.suffix for f in files} == {".md", ".rst", ".html", ".pdf", ".docx"} and len(files) == 11
    texts = {f.name: " ".join(" ".join(s.text for s in read_document(f)).split()) for f in files}
    assert len(read_document(tmp_path / "apache-2.0.pdf")) >= 4  # real pages with a text layer
    for name, questions in load_question_sets().items():
        assert len(questions) >= 30 and {q["source"] for q in questions} == set(texts), name
        for q in questions:  # as whole words, the way answers are scored
            assert all(_contains_word(texts[q["source"]], word) for word in q["answer"]), q


def test_paraphrased_questions_name_neither_their_document_nor_their_answer() -> None:
    names = ["diskcache", "hugging", "rich", "tqdm", "charset", "lancedb", "pypdf", "urllib3", "textual",
             "apache"]
    for q in load_question_sets()["paraphrased"]:
        question = q["question"].lower()
        assert not any(_contains_word(question, name) for name in names), q["question"]
        assert not any(_contains_word(question, word) for word in q["answer"]), q["question"]


def test_answer_keywords_match_whole_words_only() -> None:
    assert _contains_word("Licensed under MIT.", "mit") and not _contains_word("we permit it", "MIT")
    assert _contains_word("saves 25% of memory", "25%")
