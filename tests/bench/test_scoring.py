"""bench-docs scoring: span matching, passage ranks, CRAG scores, Wilson intervals, markup."""

from __future__ import annotations

import pytest

from pgpt.bench.scoring import (
    answer_is_right, contains_answer, contains_span, crag_score, has_markup, mean_interval, passage_rank, wilson,
)


def test_spans_match_across_line_breaks_hyphenation_and_quotes() -> None:
    pdf_text = "the free-\ndom to change, a “general-\npurpose” tool; Every-\none"
    assert contains_span(pdf_text, 'the freedom to change, a "general-purpose" tool')
    assert contains_span(pdf_text, "Everyone")
    assert not contains_span(pdf_text, "freedom to share")


def test_answers_match_whole_words_only() -> None:
    assert contains_answer("Licensed under MIT.", "mit") and not contains_answer("we permit it", "MIT")
    assert contains_answer("saves 25% of memory", "25%")
    assert contains_answer("enable the loopcontrols-extension", "loopcontrols")
    assert not contains_answer("use loop.revindex0", "loop.revindex")
    assert contains_answer("passes nargs=-1? no: not -1.", "-1")


def test_wilson_interval_matches_published_values() -> None:
    low, high = wilson(25, 50)  # 50 % of 50: 37-63 % (rag-quality.md, section 4)
    assert round(low, 2) == 0.37 and round(high, 2) == 0.63
    low, high = wilson(5, 50)  # 10 % of 50: 4-21 %
    assert round(low, 2) == 0.04 and round(high, 2) == 0.21
    assert wilson(0, 0) == (0.0, 1.0) and wilson(10, 10)[1] == pytest.approx(1.0)


def test_score_interval_is_symmetric_and_clipped() -> None:
    summary = mean_interval([1, 1, 0, -1])
    assert summary["mean"] == 0.25 and summary["ci95"][0] >= -1 and summary["ci95"][1] <= 1
    assert mean_interval([])["mean"] is None


def test_passage_rank_needs_the_right_file_and_the_span() -> None:
    question = {"source": "a.md", "evidence": "The default is 88.", "answers": ["88"]}
    hits = [("b.md", "The default is 88."), ("a.md", "line length 88 here"), ("a.md", "x. The default is\n88. y")]
    rank = passage_rank(question, hits)
    assert (rank.strict, rank.lenient, rank.file) == (3, 2, 2)
    assert passage_rank(question, [("b.md", "88")]).file == 0


def test_crag_scores_right_wrong_and_declined() -> None:
    question = {"source": "a.md", "evidence": "e", "answers": ["88", "eighty-eight"]}
    assert crag_score(question, "It is 88 [1].", False) == 1
    assert crag_score(question, "It is 80 [1].", False) == -1
    assert crag_score(question, "I could not find it.", True) == 0
    unanswerable = {"source": "a.md", "related": "r", "answers": [], "unanswerable": True}
    assert crag_score(unanswerable, "Not found.", True) == 1 and crag_score(unanswerable, "It is 9.", False) == -1
    older = {"source": "a.md", "answer": ["Deque", "Index"]}  # the first corpus: every keyword
    assert answer_is_right(older, "Deque and Index") and not answer_is_right(older, "Deque only")


@pytest.mark.parametrize("answer", ['<source id="4" file="x.md">', "Question: what? Answer: 3", "ok <|im_end|>",
                                    "see </source>"])
def test_prompt_markup_is_detected(answer: str) -> None:
    assert has_markup(answer)


def test_plain_answers_have_no_markup() -> None:
    assert not has_markup("The questions in the FAQ [1] cover sources of error.")
