"""Drafts saved once, checked again: compare versions of the grounding check on the same answers.

The grounding check (pgpt.runtime.documents.grounding) does not change what the model writes, so
two versions of it can be compared on the very same drafts, without the minutes of generation and
without the noise of a second run. ``capture`` asks every question of some bench-docs sets as
`ask` does and saves, per question, the draft with what the check saw (question vector, the
sources' sentences and their vectors); ``score`` checks the saved drafts again with the check of
the code it runs from and prints bench-docs' answer scores (bench/scoring.py).

    python -m pgpt.bench.grounding_drafts capture manuals-dev,named drafts.json [--model NAME] [--own DIR QS]
    python -m pgpt.bench.grounding_drafts score drafts.json

To compare two versions of the check, run ``score`` from each: for a version older than this
file, a folder ``pgpt/`` whose ``runtime`` links to that version's (a ``git worktree``) and whose
``bench`` links to this one's, put first on PYTHONPATH. The file is JSON, never pickled.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from pgpt.bench import scoring
from pgpt.bench.corpora import QUESTION_SETS, QuestionSet, build, own_set
from pgpt.runtime.settings import Settings


def capture(settings: Settings, sets: list[QuestionSet], out: Path, model: str = "") -> None:
    """Ask every question of ``sets`` on fresh indexes of their corpora and save each draft
    with the check's inputs in ``out``."""
    from pgpt.runtime.documents.ingest import ingest, open_store
    from pgpt.runtime.llm.chat import ChatEngine
    from pgpt.runtime.llm.embeddings import default_embedder

    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pgpt-drafts-") as tmp:
        stores, embedder = {}, None
        for corpus in dict.fromkeys(s.corpus for s in sets):
            build(corpus, Path(tmp) / corpus)
            home = dataclasses.replace(settings, home=Path(tmp) / f"home-{corpus}")
            embedder = embedder or default_embedder(home)
            ingest(home, [Path(tmp) / corpus], embedder)
            stores[corpus] = open_store(home, embedder)
        engine = ChatEngine(dataclasses.replace(settings, home=Path(tmp) / "home-ask"), model)
        try:
            for qs in sets:
                records += drafts(engine, stores[qs.corpus], embedder, qs.name, qs.load())
        finally:
            engine.close()
    save(out, model or "default", records)


def drafts(engine: Any, store: Any, embedder: Any, set_name: str,
           questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each question asked as `ask` asks it (no answer cache: the model drafts every one): the
    question, the answer and its kind, and what the check saw (draft, question vector, the
    sources' sentences and their vectors)."""
    from pgpt.runtime.documents import answers
    from pgpt.runtime.llm.sampling import SamplingOptions

    seen: dict[str, Any] = {}

    class Recording(answers.Grounder):  # what AskStream hands the check, kept for later
        def __init__(self, question: str, vector: Any, sentences: Any, vectors: Any, embed: Any) -> None:
            super().__init__(question, vector, sentences, vectors, embed)
            seen.update(question_vector=np.asarray(vector).tolist(), vectors=np.asarray(vectors).tolist(),
                        sentences=[dataclasses.asdict(s) for s in sentences])

        def check(self, draft: str, abstained: bool) -> Any:
            seen.update(draft=draft, abstained=abstained)
            return super().check(draft, abstained)

    records = []
    original, answers.Grounder = answers.Grounder, Recording  # type: ignore[misc]
    cache, engine.cache = engine.cache, None
    try:
        for number, item in enumerate(questions, 1):
            seen.clear()
            engine.model.release_kv()  # as `pgpt-tui ask` runs: no earlier question's KV buffer
            stream = answers.AskStream(engine, store, embedder, item["question"], SamplingOptions(max_new_tokens=128))
            "".join(stream)
            records.append({"set": set_name, "item": item, "kind": stream.result.kind,
                            "answer": stream.result.answer, **seen})
            print(f"{set_name} {number}/{len(questions)}: {stream.result.kind}", flush=True)
    finally:
        answers.Grounder, engine.cache = original, cache  # type: ignore[misc]
    return records


def save(path: Path, model: str, records: list[dict[str, Any]]) -> None:
    """Write the drafts as JSON (what ``rechecked`` reads)."""
    path.write_text(json.dumps({"model": model, "records": records}), encoding="utf-8")


def rechecked(settings: Settings, path: Path) -> list[tuple[dict[str, Any], str, str]]:
    """(record, answer, kind) for each saved draft, checked again with this code's check; a
    question answered "not found" before the model ran (nothing close enough) stays so."""
    from pgpt.runtime.documents.answers import NOT_FOUND
    from pgpt.runtime.documents.grounding import Grounder, SourceSentence
    from pgpt.runtime.llm.embeddings import default_embedder

    embed = default_embedder(settings).embed
    out = []
    for record in json.loads(path.read_text(encoding="utf-8"))["records"]:
        if "draft" not in record:
            out.append((record, record["answer"], record["kind"]))
            continue
        grounder = Grounder(record["item"]["question"], np.asarray(record["question_vector"], dtype=np.float32),
                            [SourceSentence(**s) for s in record["sentences"]],
                            np.asarray(record["vectors"], dtype=np.float32).reshape(len(record["sentences"]), -1),
                            embed)
        result = grounder.check(record["draft"], record["abstained"])
        out.append((record, result.text or NOT_FOUND, result.kind))
    return out


def summary(rows: list[tuple[dict[str, Any], str, str]]) -> dict[str, Any]:
    """Accuracy, false abstentions, unanswerables "not found", wrong answers and CRAG score, with
    the kinds of answer (answer / quote / not_found) by outcome."""
    from pgpt.runtime.documents.abstention import is_abstention

    scores, kinds = [], Counter()
    for record, answer, kind in rows:
        score = scoring.crag_score(record["item"], answer, is_abstention(answer))
        scores.append(score)
        kinds[f"{kind} {'unanswerable' if record['item'].get('unanswerable') else 'answerable'} {score:+d}"] += 1
    answerable = [s for (r, *_), s in zip(rows, scores) if not r["item"].get("unanswerable")]
    unanswerable = [s for (r, *_), s in zip(rows, scores) if r["item"].get("unanswerable")]
    return {"questions": len(rows), "accuracy": scoring.rate(answerable.count(1), len(answerable)),
            "false_abstention": scoring.rate(answerable.count(0), len(answerable)),
            "abstention_on_unanswerable": scoring.rate(unanswerable.count(1), len(unanswerable)),
            "wrong": scores.count(-1), "score": scoring.mean_interval(scores), "kinds": dict(sorted(kinds.items()))}


def main(argv: list[str] | None = None) -> None:
    """The command line (module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m pgpt.bench.grounding_drafts", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    take = sub.add_parser("capture", help="ask the questions, save drafts and what the check saw")
    take.add_argument("sets", help=f"comma-separated question sets: {', '.join(QUESTION_SETS)} (\"\": none)")
    take.add_argument("out", type=Path)
    take.add_argument("--own", nargs=2, type=Path, metavar=("FOLDER", "QUESTIONS"),
                      help="also a folder of documents and its questions (bench-docs --own)")
    take.add_argument("--model", default="", help="an exported chat model (default: the active one)")
    again = sub.add_parser("score", help="check saved drafts again with this code and score them")
    again.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.command == "capture":
        names = [n for n in args.sets.split(",") if n]
        unknown = [n for n in names if n not in QUESTION_SETS]
        if unknown:
            parser.error(f"unknown question set {unknown[0]!r}; the sets are {', '.join(QUESTION_SETS)}")
        own = [own_set(*args.own)] if args.own else []
        capture(settings, [QUESTION_SETS[n] for n in names] + own, args.out, args.model)
        return
    rows = rechecked(settings, args.file)
    by_set: dict[str, list[tuple[dict[str, Any], str, str]]] = {}
    for row in rows:
        by_set.setdefault(row[0]["set"], []).append(row)
    print(json.dumps({"all": summary(rows), **{name: summary(part) for name, part in by_set.items()}}, indent=1))


if __name__ == "__main__":
    main()
