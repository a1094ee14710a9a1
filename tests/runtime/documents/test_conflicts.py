"""Sources that disagree are said (conflicts.py): a shared folder held "The gym code is 1234." and,
written by someone else, "The gym code is 9292."; each answer cited one of them alone (t65)."""

from __future__ import annotations

from pathlib import Path

from grounding_support import grounder_over
from pgpt.runtime.documents.answers import AskStream
from pgpt.runtime.documents.conflicts import DIFFERING, differing
from pgpt.runtime.documents.grounding import RELEVANCE_MIN, SourceSentence
from pgpt.runtime.documents.ingest import ingest, open_store
from pgpt.runtime.llm.chat import ChatEngine
from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.settings import Settings
from pgpt.tui.chat.library import describe_quotes
from pgpt.tui.cli.answer_steps import describe_answer


def _differing(embedder, question: str, sentences: list[SourceSentence],  # type: ignore[no-untyped-def]
               quoted: int) -> list[str]:
    grounder = grounder_over(embedder, question, sentences)
    return [s.text for s in differing(grounder, [grounder.sentences[quoted]], RELEVANCE_MIN)]


def test_another_files_other_number_for_the_same_thing_is_found(embedder) -> None:  # type: ignore[no-untyped-def]
    sentences = [SourceSentence(1, "office.txt", 0, "The gym code is 1234."),
                 SourceSentence(1, "office.txt", 0, "The gym opens at 6 in the morning."),
                 SourceSentence(2, "notice.txt", 0, "The gym code is 9292."),
                 SourceSentence(3, "pool.txt", 0, "The pool code is 5555.")]  # another thing: shares "code" only
    assert _differing(embedder, "What is the gym code?", sentences, 0) == ["The gym code is 9292."]


def test_no_disagreement_where_there_is_none(embedder) -> None:  # type: ignore[no-untyped-def]
    question = "What is the budget code for project Larkspur-7?"
    things = [SourceSentence(1, "a.txt", 0, "The budget code for project Larkspur-7 is 1007."),
              SourceSentence(2, "b.txt", 0, "The budget code for project Larkspur-19 is 1019.")]  # two projects
    assert _differing(embedder, question, things, 0) == []
    copies = [SourceSentence(1, "a.txt", 0, "The gym code is 1234."),
              SourceSentence(2, "b.txt", 0, "The gym code is 1234.")]
    assert _differing(embedder, "What is the gym code?", copies, 0) == []  # the same passage in two files
    one_file = [SourceSentence(1, "a.txt", 0, "The gym code is 1234."),
                SourceSentence(1, "a.txt", 0, "The gym code was 4321.")]
    assert _differing(embedder, "What is the gym code?", one_file, 0) == []  # a document's own history
    words = [SourceSentence(1, "a.txt", 0, "The gym is on the first floor."),
             SourceSentence(2, "b.txt", 0, "The gym is on the second floor.")]
    assert _differing(embedder, "Where is the gym?", words, 0) == []  # no number in the quote: not this rule
    years = [SourceSentence(1, "report-2024.html", 0, "In 2024 Northwind had revenue of 8.2 million, 14% over 2023."),
             SourceSentence(2, "report-2025.html", 0, "In 2025 Northwind had revenue of 9.7 million, 18% over 2024.")]
    # the question's year is the quote's: another year's figure is no disagreement (t79); without a year it is
    assert _differing(embedder, "What was Northwind's revenue in 2024?", years, 0) == []
    assert _differing(embedder, "What was Northwind's revenue?", years, 0) == [years[1].text]
    places = [SourceSentence(1, "annual_report_2024.html", 0, "Office electricity came 70% from renewable sources."),
              SourceSentence(2, "annual_report_2025.html", 0, "Office electricity came 92% from renewable sources.")]
    # the year in the file's name only (t81)
    assert _differing(embedder, "What share of office electricity was renewable in 2024?", places, 0) == []


def test_ask_shows_the_other_sources_sentence_under_its_own_title(settings: Settings, tmp_path: Path) -> None:
    from pgpt.runtime.llm.embeddings import default_embedder

    docs = tmp_path / "shared"
    docs.mkdir()
    (docs / "office.txt").write_text("Office rules\n\nThe gym code is 1234.\n")
    (docs / "notice.txt").write_text("Notice\n\nThe gym code is 9292.\n")
    embedder = default_embedder(settings)
    ingest(settings, [docs], embedder)
    engine = ChatEngine(settings)
    try:
        stream = AskStream(engine, open_store(settings, embedder), embedder, "What is the gym code?",
                           SamplingOptions(max_new_tokens=32))
        list(stream)
    finally:
        engine.close()
    result = stream.result.as_json()
    assert result["kind"] in {"answer", "quote"}, result
    supporting = [q for q in result["quotes"] if not q.get("differs")]
    others = [q for q in result["quotes"] if q.get("differs")]
    assert len(supporting) == 1 and len(others) == 1, result["quotes"]
    assert {Path(supporting[0]["file"]).name, Path(others[0]["file"]).name} == {"office.txt", "notice.txt"}
    assert {supporting[0]["sentence"], others[0]["sentence"]} == {"The gym code is 1234.", "The gym code is 9292."}
    for shown in (describe_answer(result), describe_quotes(result)):  # `ask`, and the app
        # a quote answer's sentence is the answer itself: not repeated as a supporting quote
        assert ("Supporting quotes:" in shown) == (result["kind"] == "answer") and f"{DIFFERING}:" in shown
        assert shown.index(DIFFERING) < shown.index(others[0]["sentence"])
    shown = describe_answer(result).split("\nSources:")[0]  # the sources' opening words aside
    assert shown.index(supporting[0]["sentence"]) < shown.index(DIFFERING) and shown.count("The gym code is 1234.") == 1


def test_a_quote_answer_does_not_show_its_quote_twice() -> None:
    """A quote answer printed its sentence as the answer and again under "Supporting quotes" (t84);
    an answer in the model's words keeps its supporting quote."""
    quote = {"file": "/docs/suppliers.txt", "page": None, "sentence": "Lead time: 7 working days", "source": 1}
    sources = [{"source": "/docs/suppliers.txt", "text": "Greenbine Hop Merchants\nLead time: 7 working days"}]
    quoted = {"answer": "Quote from the documents: \u201cLead time: 7 working days\u201d [1]", "kind": "quote",
              "quotes": [quote], "sources": sources, "not_found": False, "cached": False}
    for shown in (describe_answer(quoted).split("\nSources:")[0], describe_quotes(quoted)):
        assert shown.count("Lead time: 7 working days") == (1 if shown.startswith("Quote") else 0), shown
        assert "Supporting quotes" not in shown
    worded = {**quoted, "answer": "The lead time is 7 working days. [1]", "kind": "answer"}
    for shown in (describe_answer(worded), describe_quotes(worded)):
        assert "Supporting quotes:" in shown and "suppliers.txt: \u201cLead time: 7 working days\u201d" in shown
