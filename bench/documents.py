"""`pgpt-tui bench-docs`: retrieval by passage, CRAG-scored answers and ingestion on real documents.

Each corpus (bench/corpora.py) is built in a temporary folder and indexed in a fresh home; each
question set is then searched and, unless ``answers`` is off, asked with a chat model. Retrieval
is scored by passage (strict: the evidence span in a top chunk of the right file; lenient: the
span or an accepted answer; file: any chunk of the right file), answers CRAG-style (+1 right,
0 "not found", -1 wrong), every rate with its Wilson 95 % interval and broken down by format and
tag (bench/scoring.py). Also timed: ingestion, one search, `ask` end to end, similar-question
cache hits, and the embedder against sentence-transformers.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pgpt.bench import scoring
from pgpt.bench.corpora import QUESTION_SETS, QuestionSet, build
from pgpt.bench.documents_report import format_results
from pgpt.runtime.settings import Settings

__all__ = ["DocBenchOptions", "format_results", "run_doc_bench"]

CACHE_REPEATS = 5
FIXED_LENGTH_ASKS = 10  # asks that decode exactly 128 tokens (the target's definition)
SEARCH_K = 5


@dataclasses.dataclass(frozen=True)
class DocBenchOptions:
    """What one bench-docs run measures."""

    sets: tuple[str, ...] = tuple(QUESTION_SETS)
    model: str = ""  # chat model for the answers ("" = the default one)
    questions: int = 0  # ask only the first N questions of each set (0 = all)
    answers: bool = True  # False: ingestion and retrieval only
    own: QuestionSet | None = None  # a user's own folder and questions (corpora.own_set), after ``sets``


def run_doc_bench(settings: Settings, progress: Callable[[str], None] = print,
                  options: DocBenchOptions = DocBenchOptions()) -> dict[str, Any]:
    """Run everything on fresh indexes in a temporary folder; the results as one JSON-ready dict."""
    from pgpt.runtime.documents.ingest import ingest, open_store
    from pgpt.runtime.llm.embeddings import default_embedder
    from pgpt.runtime.llm.session import cpu_summary

    sets = [QUESTION_SETS[name] for name in options.sets] + ([options.own] if options.own else [])
    results: dict[str, Any] = {"machine": cpu_summary(), "corpora": {}, "retrieval": {}}
    with tempfile.TemporaryDirectory(prefix="pgpt-bench-docs-") as tmp:
        stores: dict[str, Any] = {}
        files: dict[str, list[Path]] = {}
        embedder = None
        for corpus in dict.fromkeys(s.corpus for s in sets):
            files[corpus] = build(corpus, Path(tmp) / corpus)
            home_settings = dataclasses.replace(settings, home=Path(tmp) / f"home-{corpus}")
            embedder = embedder or default_embedder(home_settings)
            progress(f"bench-docs: ingesting the {corpus} corpus ({len(files[corpus])} files)")
            report = ingest(home_settings, [Path(tmp) / corpus], embedder)
            stores[corpus] = open_store(home_settings, embedder)
            results["corpora"][corpus] = {
                "files": len(files[corpus]), "formats": sorted({f.suffix for f in files[corpus]}),
                "characters": sum(_characters(f) for f in files[corpus]), "chunks": report.chunks,
                "skipped": report.skipped, "ingest_s": round(report.seconds, 2),
                "chunks_per_s": round(report.chunks_per_s, 1)}
        for qs in sets:
            progress(f"bench-docs: retrieval, {qs.name}")
            results["retrieval"][qs.name] = retrieval_scores(stores[qs.corpus], embedder, qs, files[qs.corpus])
        if options.answers:
            ask_settings = dataclasses.replace(settings, home=Path(tmp) / f"home-{sets[0].corpus}")
            results["ask"] = ask_scores(ask_settings, stores, embedder, sets, files, options, progress)
            progress("bench-docs: embedder against sentence-transformers on ~256-token chunks")
            from pgpt.bench.embedding_speed import embedding_speed

            results["embedding"] = embedding_speed(embedder, files[sets[0].corpus])
    return results


def _characters(path: Path) -> int:
    from pgpt.runtime.documents.readers import Skipped, read_document

    try:
        return sum(len(s.text) for s in read_document(path))
    except Skipped:
        return 0


def formats_of(files: list[Path]) -> dict[str, str]:
    """File name -> its format (suffix), for the breakdowns."""
    return {f.name: f.suffix for f in files}


def retrieval_scores(store: Any, embedder: Any, qs: QuestionSet, files: list[Path]) -> dict[str, Any]:
    """Passage hit@1 and hit@5 (strict, lenient) and file hit@5 over the answerable questions,
    with intervals, per format and tag, the median search time and each question's ranks."""
    from pgpt.runtime.documents.retrieval import search

    questions = [q for q in qs.load() if not q.get("unanswerable")]
    ranks, times, shown = [], [], []
    for item in questions:
        started = time.perf_counter()
        hits = search(store, embedder, item["question"], k=SEARCH_K)
        times.append(time.perf_counter() - started)
        ranks.append(scoring.passage_rank(item, [(Path(h.source).name, h.text) for h in hits]))
        shown.append(_closest_shows_it(item, hits, embedder))
    strict = any(q.get("evidence") for q in questions)
    out = {"role": qs.role, "questions": len(questions), "search_ms_median": round(statistics.median(times) * 1000, 1),
           **_hit_rates(ranks, strict), "closest_shown": scoring.rate(sum(shown), len(shown)), "by_group": {}}
    for group, indices in scoring.groups(questions, formats_of(files)).items():
        out["by_group"][group] = _hit_rates([ranks[i] for i in indices], strict)
    out["per_question"] = [{"id": q.get("id", str(i)), "strict": r.strict, "lenient": r.lenient, "file": r.file}
                           for i, (q, r) in enumerate(zip(questions, ranks))]
    return out


def _closest_shows_it(item: dict[str, Any], hits: list[Any], embedder: Any) -> bool:
    """Whether a "not found" answer's closest passages, as shown (each around its sentence closest
    to the question), show the answer: a snippet of the right file with the evidence span or an
    accepted answer."""
    from pgpt.runtime.documents.grounding import CLOSEST_CHARS, CLOSEST_PASSAGES
    from pgpt.runtime.documents.passage_view import matching_sentences, sentence_window

    closest = hits[:CLOSEST_PASSAGES]
    vector = embedder.embed([item["question"]])[0]
    sentences = matching_sentences(item["question"], vector, [h.text for h in closest], embedder.embed)
    for hit, sentence in zip(closest, sentences):
        snippet = "".join(sentence_window(hit.text, sentence, CLOSEST_CHARS))
        if Path(hit.source).name == item["source"] and (
                (item.get("evidence") and scoring.contains_span(snippet, item["evidence"]))
                or any(scoring.contains_answer(snippet, a) for a in scoring.accepted_answers(item))):
            return True
    return False


def _hit_rates(ranks: list[scoring.PassageHit], strict: bool) -> dict[str, Any]:
    rates = {}
    kinds = ("strict", "lenient", "file") if strict else ("lenient", "file")
    for kind in kinds:
        values = [getattr(r, kind) for r in ranks]
        rates[f"{kind}_hit_at_1"] = scoring.rate(sum(v == 1 for v in values), len(values))
        rates[f"{kind}_hit_at_5"] = scoring.rate(sum(v > 0 for v in values), len(values))
    return rates


def ask_scores(settings: Settings, stores: dict[str, Any], embedder: Any, sets: list[QuestionSet],
               files: dict[str, list[Path]], options: DocBenchOptions,
               progress: Callable[[str], None] = print) -> dict[str, Any]:
    """CRAG scores per set, `ask` end-to-end times over all, cache hits and 128-token asks on the first set.

    A line of progress per question (with a 1.5B model a set takes most of an hour)."""
    from pgpt.runtime.llm.chat import ChatEngine

    engine = ChatEngine(settings, options.model)
    totals: list[float] = []
    ttfts: list[float] = []
    out: dict[str, Any] = {"model": engine.model.info.name, "sets": {}}
    try:
        for qs in sets:
            questions = qs.load()[:options.questions or None]
            results = []
            for number, q in enumerate(questions, 1):
                progress(f"bench-docs: ask, {qs.name} {number}/{len(questions)} ({engine.model.info.name})")
                results.append(_ask(engine, stores[qs.corpus], embedder, q["question"], totals, ttfts))
            out["sets"][qs.name] = answer_scores(qs, questions, [r.answer for r in results],
                                                 formats_of(files[qs.corpus]), results)
        asked = sets[0].load()[:options.questions or None]  # --questions N: the rest of the run keeps to N too
        first = [q for q in asked if not q.get("unanswerable")] or asked
        out["cache"] = _cache_hits(engine, stores[sets[0].corpus], embedder, first[:CACHE_REPEATS])
        fixed = _fixed_length_asks(engine, stores[sets[0].corpus], embedder, first[:FIXED_LENGTH_ASKS])
    finally:
        engine.close()
    out.update(questions=len(totals), total_s_median=round(statistics.median(totals), 2),
               total_s_max=round(max(totals), 2), ttft_s_median=round(statistics.median(ttfts), 3),
               fixed_128_questions=len(fixed), fixed_128_total_s_median=round(statistics.median(fixed), 2),
               fixed_128_total_s_max=round(max(fixed), 2))
    return out


def _ask(engine: Any, store: Any, embedder: Any, question: str, totals: list[float], ttfts: list[float]) -> Any:
    """One `ask` as the CLI runs it; its AskResult (``answer`` is what the user would see)."""
    from pgpt.runtime.documents.answers import AskStream
    from pgpt.runtime.llm.sampling import SamplingOptions

    engine.model.release_kv()  # as `pgpt-tui ask` runs: no earlier question's KV buffer
    stream = AskStream(engine, store, embedder, question, SamplingOptions(max_new_tokens=128))
    answer = "".join(stream)
    totals.append(stream.result.timings["total_s"])
    ttfts.append(stream.result.timings["ttft_s"])
    stream.result.answer = stream.result.answer or answer
    return stream.result


def answer_scores(qs: QuestionSet, questions: list[dict[str, Any]], answers: list[str],
                  formats: dict[str, str], results: list[Any] | None = None) -> dict[str, Any]:
    """Accuracy, abstention on unanswerables, false abstentions and the CRAG score, with intervals,
    overall and per format and tag; markup leaks; each question's answer and score, and with
    ``results`` (the AskResults) the answer's kind and the model's draft before the check, so a
    run shows what the check kept and what it refused."""
    from pgpt.runtime.documents.abstention import is_abstention

    abstained = [is_abstention(a) for a in answers]
    scores = [scoring.crag_score(q, a, x) for q, a, x in zip(questions, answers, abstained)]
    out = {"role": qs.role, **_answer_rates(questions, scores, abstained), "by_group": {},
           "markup_leaks": sum(scoring.has_markup(a) for a in answers)}
    for group, indices in scoring.groups(questions, formats).items():
        out["by_group"][group] = _answer_rates([questions[i] for i in indices], [scores[i] for i in indices],
                                               [abstained[i] for i in indices])
    out["per_question"] = [{"id": q.get("id", str(i)), "score": s, "abstained": x, "answer": a}
                           for i, (q, s, x, a) in enumerate(zip(questions, scores, abstained, answers))]
    for row, result in zip(out["per_question"], results or []):
        row.update(kind=result.kind, draft=result.draft,
                   differs=[q["sentence"] for q in result.quotes if q.get("differs")])
    if results:  # answers shown with a source that says otherwise (conflicts.py): a corpus without conflicts has none
        out["differing_sources"] = sum(any(q.get("differs") for q in r.quotes) for r in results)
    if results:
        out["drafts_right"] = scoring.rate(sum(scoring.answer_is_right(q, r.draft) for q, r in zip(questions, results)
                                               if not q.get("unanswerable")), out["answerable"])
    return out


def _answer_rates(questions: list[dict[str, Any]], scores: list[int], abstained: list[bool]) -> dict[str, Any]:
    answerable = [i for i, q in enumerate(questions) if not q.get("unanswerable")]
    unanswerable = [i for i, q in enumerate(questions) if q.get("unanswerable")]
    return {"answerable": len(answerable), "unanswerable": len(unanswerable),
            "accuracy": scoring.rate(sum(scores[i] == 1 for i in answerable), len(answerable)),
            "false_abstention": scoring.rate(sum(abstained[i] for i in answerable), len(answerable)),
            "abstention_on_unanswerable": scoring.rate(sum(abstained[i] for i in unanswerable), len(unanswerable)),
            "score": scoring.mean_interval(scores)}


def _cache_hits(engine: Any, store: Any, embedder: Any, questions: list[dict[str, Any]]) -> dict[str, Any]:
    """The first questions again, reworded (lower case, no "?"): hits of the similar-question cache."""
    from pgpt.runtime.documents.answers import AskStream
    from pgpt.runtime.llm.sampling import SamplingOptions

    hits = []
    for item in questions:
        repeat = AskStream(engine, store, embedder, item["question"].rstrip("?").lower(),
                           SamplingOptions(max_new_tokens=128))
        "".join(repeat)
        hits.append((repeat.result.cached, repeat.result.timings["total_s"]))
    return {"hits": sum(cached for cached, _ in hits), "repeats": len(hits),
            "hit_s_median": round(statistics.median(t for _, t in hits), 4), "hit_s_max": round(max(t for _, t in hits), 4)}


def _fixed_length_asks(engine: Any, store: Any, embedder: Any, questions: list[dict[str, Any]]) -> list[float]:
    """End-to-end seconds of asks whose answers are exactly 128 tokens: answers that end early
    (or that the loop guard cuts) would otherwise make the median look better than the target's
    "128-token answer". No cache: every ask retrieves and decodes."""
    from pgpt.runtime.documents.answers import AskStream
    from pgpt.runtime.llm.sampling import SamplingOptions

    options = SamplingOptions(max_new_tokens=128, ignore_eos=True)
    cache, engine.cache = engine.cache, None
    try:
        totals = []
        for item in questions:
            engine.model.release_kv()
            stream = AskStream(engine, store, embedder, item["question"], options)
            "".join(stream)
            totals.append(stream.result.timings["total_s"])
        return totals
    finally:
        engine.cache = cache
