"""bench-docs scores a real index and a real model: passage ranks, CRAG scores, the report, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pgpt.bench.corpora import QuestionSet
from pgpt.bench.documents import DocBenchOptions, answer_scores, ask_scores, format_results, retrieval_scores
from pgpt.runtime.settings import Settings

DOCS = {
    "ferry.md": "# Ferry\n\nThe ferry to Inselby leaves at noon every Tuesday.\n\n## Fares\n\nA return ticket costs 14 euros.\n",
    "bakery.txt": "The bakery on Hafenweg opens at six in the morning.\n\nIt closes on Mondays.\n",
}
QUESTIONS = [
    {"id": "t1", "question": "When does the boat to Inselby go?", "source": "ferry.md",
     "evidence": "leaves at noon every Tuesday", "answers": ["noon"], "tags": ["paraphrase"]},
    {"id": "t2", "question": "How much is a return ticket for the ferry?", "source": "ferry.md",
     "evidence": "A return ticket costs 14 euros.", "answers": ["14 euros"], "tags": []},
    {"id": "t3", "question": "On which day is the bakery on Hafenweg closed?", "source": "bakery.txt",
     "evidence": "It closes on Mondays.", "answers": ["Mondays", "Monday"], "tags": []},
    {"id": "t4", "question": "Who owns the bakery on Hafenweg?", "source": "bakery.txt",
     "related": "The bakery on Hafenweg opens at six", "answers": [], "unanswerable": True, "tags": []},
]


@pytest.fixture()
def small_bench(settings: Settings, tmp_path: Path):  # type: ignore[no-untyped-def]
    from pgpt.runtime.documents.ingest import ingest, open_store
    from pgpt.runtime.llm.embeddings import default_embedder

    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    file = tmp_path / "questions.json"
    file.write_text(json.dumps(QUESTIONS), encoding="utf-8")
    embedder = default_embedder(settings)
    ingest(settings, [docs], embedder)
    return settings, open_store(settings, embedder), embedder, QuestionSet("small", "small", file, "test"), \
        sorted(docs.iterdir())


def test_retrieval_is_scored_by_passage_with_intervals_and_groups(small_bench) -> None:  # type: ignore[no-untyped-def]
    _, store, embedder, qs, files = small_bench
    scores = retrieval_scores(store, embedder, qs, files)
    assert scores["questions"] == 3 and scores["role"] == "test"  # the unanswerable one has no passage
    assert scores["strict_hit_at_5"]["rate"] == 1.0 and scores["file_hit_at_5"]["hits"] == 3
    low, high = scores["strict_hit_at_5"]["ci95"]
    assert 0.0 < low < 1.0 and high == pytest.approx(1.0)
    assert set(scores["by_group"]) == {"format:.md", "format:.txt", "tag:paraphrase"}
    assert [q["id"] for q in scores["per_question"]] == ["t1", "t2", "t3"]
    # what a "not found" answer would show of its three closest passages holds the answer too
    assert scores["closest_shown"]["hits"] == 3 and scores["closest_shown"]["n"] == 3


def test_answers_are_scored_crag_style() -> None:
    qs = QuestionSet("small", "small", Path("unused"), "dev")
    answers = ["It leaves at noon [1].", "It costs 12 euros.", "I could not find that in the documents.",
               "The baker, Mr. Hansen [1]."]
    scores = answer_scores(qs, QUESTIONS, answers, {"ferry.md": ".md", "bakery.txt": ".txt"})
    assert [q["score"] for q in scores["per_question"]] == [1, -1, 0, -1]
    assert scores["accuracy"]["hits"] == 1 and scores["false_abstention"]["hits"] == 1
    assert scores["abstention_on_unanswerable"]["rate"] == 0.0 and scores["score"]["mean"] == -0.25
    assert scores["by_group"]["format:.txt"]["accuracy"]["n"] == 1 and scores["markup_leaks"] == 0


@pytest.mark.slow
def test_the_default_model_answers_and_the_report_shows_every_rate(small_bench) -> None:  # type: ignore[no-untyped-def]
    settings, store, embedder, qs, files = small_bench
    asked = ask_scores(settings, {"small": store}, embedder, [qs], {"small": files}, DocBenchOptions(sets=("small",)))
    small = asked["sets"]["small"]
    assert small["answerable"] == 3 and small["unanswerable"] == 1 and len(small["per_question"]) == 4
    for row in small["per_question"]:  # what the check made of each draft, for reading a run
        assert row["kind"] in ("answer", "quote", "not_found") and isinstance(row["draft"], str)
        assert row["kind"] != "answer" or row["answer"] == row["answer"].strip() != ""
    assert small["drafts_right"]["n"] == 3 and 0 <= small["drafts_right"]["hits"] <= 3
    assert asked["fixed_128_questions"] == 3 and asked["cache"]["repeats"] == 3
    from pgpt.runtime.llm.session import cpu_summary

    results = {"machine": cpu_summary(), "corpora": {}, "ask": asked,
               "retrieval": {"small": retrieval_scores(store, embedder, qs, files)}}
    report = format_results(results)
    assert "answers, small (test" in report and "strict 1.00" in report and "| tag:paraphrase |" in report
    assert "drafts holding the answer" in report and "3 closest passages show it 1.00" in report


def test_an_unknown_question_set_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    from pgpt.tui.cli.main import main

    assert main(["bench-docs", "--set", "manuals-test,nope"]) == 2
    error = capsys.readouterr().err
    assert "no question set named nope" in error and "manuals-dev" in error


def test_saved_drafts_checked_again_give_the_same_answers(small_bench, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """pgpt.bench.grounding_drafts: drafts saved once and checked again reproduce the run, so two
    versions of the check can be compared on the same drafts."""
    from pgpt.bench.grounding_drafts import drafts, rechecked, save, summary
    from pgpt.runtime.llm.chat import ChatEngine

    settings, store, embedder, qs, _ = small_bench
    engine = ChatEngine(settings)
    try:
        records = drafts(engine, store, embedder, qs.name, qs.load())
    finally:
        engine.close()
    save(tmp_path / "drafts.json", "default", records)
    again = rechecked(settings, tmp_path / "drafts.json")
    assert [(kind, answer) for _, answer, kind in again] == [(r["kind"], r["answer"]) for r in records]
    drafted = [r for r in records if "draft" in r]  # the others: nothing close enough to ask the model
    assert drafted and all(len(r["sentences"]) == len(r["vectors"]) > 0 for r in drafted)
    scores = summary(again)
    assert scores["questions"] == 4 and scores["accuracy"]["n"] == 3 and scores["abstention_on_unanswerable"]["n"] == 1
    assert sum(scores["kinds"].values()) == 4
    assert scores["wrong"] == sum(n for kind, n in scores["kinds"].items() if kind.endswith("-1"))


def _own_folder(tmp_path: Path) -> tuple[Path, Path]:
    """DOCS in a folder with a link to a file outside it, and QUESTIONS in a file beside it."""
    docs = tmp_path / "own"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    (tmp_path / "secret.md").write_text("The vault code is 4711.\n", encoding="utf-8")
    (docs / "secret.md").symlink_to(tmp_path / "secret.md")
    file = tmp_path / "questions.json"
    file.write_text(json.dumps(QUESTIONS), encoding="utf-8")
    return docs, file


def test_own_documents_and_questions_are_scored_as_a_held_out_set(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`bench-docs --own FOLDER QUESTIONS`: a user measures retrieval on their own documents; a link
    out of the folder is neither copied nor read."""
    from pgpt.tui.cli.main import main

    docs, file = _own_folder(tmp_path)
    monkeypatch.setenv("PGPT_HOME", str(settings.home))
    monkeypatch.setenv("PGPT_MODEL_CACHE", str(settings.model_cache))
    assert main(["bench-docs", "--own", str(docs), str(file), "--retrieval-only", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert list(results["retrieval"]) == ["own"]  # without --set, only the user's own set
    own = results["retrieval"]["own"]
    assert own["role"] == "test" and own["questions"] == 3 and own["strict_hit_at_5"]["hits"] == 3
    (corpus,) = results["corpora"].values()
    assert corpus["files"] == 2 and corpus["formats"] == [".md", ".txt"]  # secret.md, a link, left out


@pytest.mark.parametrize(("questions", "expected"), [
    ("not json", "cannot read the questions file"),
    ('{"question": "x"}', "holds no JSON list of questions"),
    ('[{"id": "q7", "question": "When?", "source": "nope.md", "answers": ["noon"]}]',
     "question 1 (q7): its source 'nope.md' is no file of the folder"),
    ('[{"question": "When?", "source": "secret.md", "answers": ["4711"]}]', "its source 'secret.md' is no file"),
    ('[{"question": "When?", "source": "ferry.md"}]', "question 1 has no \"answers\" and is not marked"),
])
def test_own_questions_that_cannot_be_scored_are_refused_before_any_work(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], questions: str, expected: str) -> None:
    from pgpt.tui.cli.main import main

    docs, file = _own_folder(tmp_path)
    file.write_text(questions, encoding="utf-8")
    assert main(["bench-docs", "--own", str(docs), str(file)]) == 2
    error = capsys.readouterr().err
    assert expected in error and "Traceback" not in error and len(error.strip().splitlines()) == 1
    assert main(["bench-docs", "--own", str(tmp_path / "nowhere"), str(file)]) == 2
    assert "is no folder" in capsys.readouterr().err


def test_a_corpus_too_small_for_the_embedder_timing_says_so(small_bench) -> None:  # type: ignore[no-untyped-def]
    """A small own folder has no ~256-token chunk to time: the row says so ("0.0 chunks/s" read as broken)."""
    from pgpt.bench.documents_report import format_results
    from pgpt.bench.embedding_speed import embedding_speed

    _, _, embedder, _, files = small_bench
    row = embedding_speed(embedder, files)
    assert row["chunks"] == 0 and "180 words" in row["skipped"]
    from pgpt.runtime.llm.session import cpu_summary

    report = format_results({"machine": cpu_summary(), "corpora": {}, "retrieval": {}, "embedding": row})
    assert "| embedder, ~256-token chunks | not measured: the corpus holds no 180 words" in report
