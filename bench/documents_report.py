"""The README's tables for one `pgpt-tui bench-docs` run (its JSON is the full record)."""

from __future__ import annotations

from typing import Any


def cell(rate: dict[str, Any]) -> str:
    """A rate with its Wilson 95 % interval: "0.83 [0.72-0.90] (n 60)"."""
    if rate.get("rate") is None:
        return "- (n 0)"
    low, high = rate["ci95"]
    return f"{rate['rate']:.2f} [{low:.2f}-{high:.2f}] (n {rate['n']})"


def score_cell(score: dict[str, Any]) -> str:
    """The mean CRAG score with its 95 % interval."""
    if score.get("mean") is None:
        return "-"
    low, high = score["ci95"]
    return f"{score['mean']:+.2f} [{low:+.2f}, {high:+.2f}]"


def format_results(results: dict[str, Any]) -> str:
    """Markdown tables: corpora and speed, retrieval per set, answers per set, breakdowns."""
    from pgpt.runtime.llm.session import describe_cpu

    rows = [("machine", describe_cpu(results["machine"]))]
    for name, c in results["corpora"].items():
        rows.append((f"corpus {name}", f"{c['files']} files ({', '.join(c['formats'])}), {c['characters']:,} characters, "
                                       f"{c['chunks']} chunks; ingestion {c['chunks_per_s']:.1f} chunks/s "
                                       f"({c['ingest_s']:.1f} s, read + chunk + embed + write)"))
    for name, r in results["retrieval"].items():
        strict = (f"strict {cell(r['strict_hit_at_1'])} / {cell(r['strict_hit_at_5'])}; "
                  if "strict_hit_at_1" in r else "")
        rows.append((f"retrieval hit@1 / hit@5, {name} ({r['role']})",
                     f"{strict}lenient {cell(r['lenient_hit_at_1'])} / {cell(r['lenient_hit_at_5'])}; "
                     f"file hit@5 {cell(r['file_hit_at_5'])}; search median {r['search_ms_median']:.0f} ms"
                     + (f"; a not-found answer's 3 closest passages show it {cell(r['closest_shown'])}"
                        if "closest_shown" in r else "")))
    if "ask" in results:
        rows += _ask_rows(results["ask"])
    if "embedding" in results:
        rows.append(("embedder, ~256-token chunks", _embedding_cell(results["embedding"])))
    out = ["| measure | result |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    for name, r in results["retrieval"].items():
        out += ["", *breakdown(name, r, results.get("ask", {}).get("sets", {}).get(name))]
    return "\n".join(out)


def _ask_rows(a: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for name, s in a["sets"].items():
        text = f"accuracy {cell(s['accuracy'])}, false abstentions {cell(s['false_abstention'])}"
        if s["unanswerable"]:
            text += f", abstention on unanswerables {cell(s['abstention_on_unanswerable'])}"
        text += f"; CRAG score {score_cell(s['score'])}; answers with prompt markup: {s['markup_leaks']}"
        if "drafts_right" in s:  # the model's drafts before the check: what the check kept or refused
            text += f"; drafts holding the answer {cell(s['drafts_right'])}"
        rows.append((f"answers, {name} ({s['role']}, {a['model']})", text))
    c = a["cache"]
    rows += [("ask end to end", f"median {a['total_s_median']:.2f} s, max {a['total_s_max']:.2f} s "
                                f"(TTFT median {a['ttft_s_median']:.2f} s, {a['questions']} questions, "
                                "answers up to 128 tokens)"),
             ("ask with a 128-token answer", f"median {a['fixed_128_total_s_median']:.2f} s, max "
                                             f"{a['fixed_128_total_s_max']:.2f} s ({a['fixed_128_questions']} "
                                             "questions, no cache, end of text ignored)"),
             ("similar-question cache hit", f"median {c['hit_s_median'] * 1000:.0f} ms, max {c['hit_s_max'] * 1000:.0f} ms "
                                            f"({c['hits']} of {c['repeats']} reworded questions hit)")]
    return rows


def breakdown(name: str, retrieval: dict[str, Any], answers: dict[str, Any] | None) -> list[str]:
    """One set's table by format and tag: passage hit@5 (strict where the set has evidence spans) and accuracy."""
    kind = "strict" if "strict_hit_at_5" in retrieval else "lenient"
    lines = [f"{name}: by format and tag | {kind} hit@1 | {kind} hit@5 | answer accuracy",
             "|---|---|---|---|"]
    lines[0] = "| " + lines[0] + " |"
    for group, r in retrieval["by_group"].items():
        accuracy = answers["by_group"].get(group, {}).get("accuracy") if answers else None
        lines.append(f"| {group} | {cell(r[f'{kind}_hit_at_1'])} | {cell(r[f'{kind}_hit_at_5'])} | "
                     f"{cell(accuracy) if accuracy else '-'} |")
    return lines


def _embedding_cell(e: dict[str, Any]) -> str:
    if "skipped" in e:
        return f"not measured: {e['skipped']}"
    if "speedup" not in e:
        return f"pgpt {e['pgpt_chunks_per_s']:.1f} chunks/s; sentence-transformers {e.get('sentence_transformers')}"
    rounds = ", ".join(f"{x:.2f}x" for x in e["speedups"])
    return (f"pgpt {e['pgpt_chunks_per_s']:.1f} chunks/s, sentence-transformers {e['sentence_transformers_chunks_per_s']:.1f} "
            f"(**{e['speedup']:.2f}x**, medians of {e['rounds']} alternated runs; per run {rounds}), "
            f"min cosine {e['min_cosine']:.4f}")
