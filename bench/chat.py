"""`pgpt-tui bench-chat`: a multi-turn conversation timed with the KV buffer kept between turns
(pgpt's default) and with every turn's whole conversation read again (what a stateless
generate() call does), in one process, on the same prompts.

The conversation is recorded once (greedy, buffer kept); every later pass sends the same
messages, so both modes read the same prompts. The modes alternate pass by pass, and each
number is the median over the passes of that mode.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from pgpt.runtime.settings import Settings

QUESTIONS = (
    "I run a small team that keeps its documents on a Linux server. What should we think about first?",
    "How should we back those documents up?",
    "Which of those steps can we automate, and how?",
    "How do we check that a backup can really be restored?",
    "Write a short checklist of everything you suggested.",
    "Which item of that checklist matters most, and why?",
)
MODES = ("kept", "full")


def run_chat_bench(settings: Settings, model_name: str = "", turns: int = len(QUESTIONS), repeats: int = 3,
                   new_tokens: int = 128, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Time each turn in both modes; returns per-turn medians and a summary (see format_results)."""
    from pgpt.runtime.llm.chat import ChatEngine
    from pgpt.runtime.llm.sampling import SamplingOptions

    engine = ChatEngine(settings, model_name, use_cache=False)
    options = SamplingOptions(max_new_tokens=new_tokens)
    questions = QUESTIONS[:max(1, min(turns, len(QUESTIONS)))]
    answers: list[str] = []
    runs: dict[str, list[list[dict[str, float]]]] = {mode: [] for mode in MODES}
    for repeat in range(repeats):
        for mode in MODES if repeat % 2 == 0 else MODES[::-1]:
            if progress:
                progress(f"pass {repeat + 1}/{repeats}, KV buffer {mode}")
            runs[mode].append(_conversation(engine, questions, answers, options, keep=mode == "kept"))
    from pgpt.runtime.llm.session import cpu_summary

    return {"model": engine.model.info.name, "provider": engine.provider, "machine": cpu_summary(),
            "new_tokens": new_tokens, "repeats": repeats, "turns": _per_turn(runs), "summary": _summary(runs)}


def _conversation(engine: Any, questions: tuple[str, ...], answers: list[str], options: Any,
                  keep: bool) -> list[dict[str, float]]:
    """One pass; the first one records ``answers``, later ones send them back as they were."""
    engine.model.release_kv()
    messages: list[dict[str, str]] = []
    timings = []
    for turn, question in enumerate(questions):
        messages.append({"role": "user", "content": question})
        if not keep:
            engine.model.release_kv()
        stream = engine.stream(messages, options)
        answer = "".join(stream)
        if len(answers) <= turn:
            answers.append(answer)
        messages.append({"role": "assistant", "content": answers[turn]})
        timings.append(stream.result.timings)
    return timings


def _per_turn(runs: dict[str, list[list[dict[str, float]]]]) -> list[dict[str, Any]]:
    rows = []
    for turn, kept in enumerate(runs["kept"][0]):
        rows.append({"turn": turn + 1, "prompt_tokens": kept["prompt_tokens"],
                     "reused_prompt_tokens": kept["reused_prompt_tokens"],
                     **{key: {mode: _median(runs[mode], turn, key) for mode in MODES}
                        for key in ("ttft_s", "decode_tok_s", "new_tokens", "total_s")}})
    return rows


def _median(passes: list[list[dict[str, float]]], turn: int, key: str) -> float:
    return round(statistics.median(p[turn][key] for p in passes), 4)


def _summary(runs: dict[str, list[list[dict[str, float]]]]) -> dict[str, Any]:
    """Medians over the turns after the first (the first turn has nothing to reuse)."""
    later = range(1, len(runs["kept"][0]))
    if not later:
        return {}
    ttft = {mode: round(statistics.median(_median(runs[mode], t, "ttft_s") for t in later), 4) for mode in MODES}
    total = {mode: round(statistics.median(_median(runs[mode], t, "total_s") for t in later), 4) for mode in MODES}
    last = len(runs["kept"][0]) - 1
    return {"ttft_s": ttft, "total_s": total,
            "ttft_speedup": round(ttft["full"] / ttft["kept"], 2) if ttft["kept"] else None,
            "last_turn_ttft_s": {mode: _median(runs[mode], last, "ttft_s") for mode in MODES}}


def format_results(results: dict[str, Any]) -> str:
    """A plain-text table of ``run_chat_bench``'s results."""
    from pgpt.runtime.llm.session import describe_cpu

    passes = f"medians of {results['repeats']} passes per mode" if results["repeats"] > 1 else "one pass per mode"
    lines = [f"machine: {describe_cpu(results['machine'])}",
             f"model {results['model']} ({results['provider']}), answers up to {results['new_tokens']} tokens, "
             + passes,
             "turn  prompt  reused  TTFT kept / full   tok/s kept / full  answer tokens  total kept / full"]
    for row in results["turns"]:
        ttft, speed, new, total = (row[key] for key in ("ttft_s", "decode_tok_s", "new_tokens", "total_s"))
        lines.append(f"{row['turn']:>4}  {row['prompt_tokens']:>6}  {row['reused_prompt_tokens']:>6}  "
                     f"{ttft['kept']:>7.3f}s / {ttft['full']:.3f}s  {speed['kept']:>8.1f} / {speed['full']:<6.1f}"
                     f"  {new['kept']:>5.0f} / {new['full']:<5.0f}  {total['kept']:>7.2f}s / {total['full']:.2f}s")
    summary = results["summary"]
    if summary:
        lines.append(f"turns 2+: TTFT {summary['ttft_s']['kept']:.3f}s kept vs {summary['ttft_s']['full']:.3f}s "
                     f"full ({summary['ttft_speedup']}x); total {summary['total_s']['kept']:.2f}s vs "
                     f"{summary['total_s']['full']:.2f}s")
    return "\n".join(lines)
