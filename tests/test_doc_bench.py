"""The document benchmark's corpus and questions are sound (the run itself is `pgpt-tui bench-docs`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from pgpt.export.doc_bench import CORPUS, _contains_word, build_corpus
from pgpt.runtime.doc_readers import read_document


def test_corpus_builds_in_five_formats_and_every_question_is_answerable(tmp_path: Path) -> None:
    files = build_corpus(tmp_path)
    assert {f.suffix for f in files} == {".md", ".rst", ".html", ".pdf", ".docx"} and len(files) == 11
    texts = {f.name: " ".join(" ".join(s.text for s in read_document(f)).split()) for f in files}
    assert len(read_document(tmp_path / "apache-2.0.pdf")) >= 4  # real pages with a text layer
    questions = json.loads((CORPUS / "questions.json").read_text(encoding="utf-8"))
    assert len(questions) >= 30 and {q["source"] for q in questions} == set(texts)
    for q in questions:
        text = re.sub(r"\s+", " ", texts[q["source"]])
        assert all(word.lower() in text.lower() for word in q["answer"]), q


def test_answer_keywords_match_whole_words_only() -> None:
    assert _contains_word("Licensed under MIT.", "mit") and not _contains_word("we permit it", "MIT")
    assert _contains_word("saves 25% of memory", "25%")
