"""Benchmark commands of `pgpt-tui`: bench, bench-chat, bench-docs, bench-serve (the measuring lives in pgpt.bench)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pgpt.bench.bandwidth import ARRAY_MB
from pgpt.bench.chat import QUESTIONS as CHAT_QUESTIONS
from pgpt.runtime.arg_types import int_between, non_negative_int, positive_int, positive_ints


def add_parsers(sub: Any, add_embedder_option: Any) -> None:
    """Register bench / bench-chat / bench-docs on the subcommand parser."""
    bench = sub.add_parser(
        "bench", help="benchmark the default model (or --model NAME) against Optimum, PyTorch and llama.cpp",
        description="Decode speed, time to first token, peak memory and load time of the default chat model "
                    "in each dtype, side by side with the other engines on the same prompt. The exports it "
                    "compares are made first when missing (it asks on a terminal). With --model, the named "
                    "exports instead, beside llama.cpp on the GGUF file they were exported from. Each row is "
                    "also set against the decode speed this machine's memory bandwidth allows.")
    bench.add_argument("--json", action="store_true", help="print the rows as JSON")
    bench.add_argument("--model", action="append", default=[], metavar="NAME",
                       help="an exported chat model to time instead of the default model's dtypes (repeat it or "
                            "give a comma-separated list: the exports of one model, e.g. its int8 and int4); "
                            "llama.cpp runs the GGUF file it was exported from")
    bench.add_argument("--dtypes", default="fp32,int8,int4",
                       help="comma-separated dtypes of the default chat model to compare: fp32, fp16, int8, int4 "
                            "(default fp32,int8,int4)")
    bench.add_argument("--engines", default="",
                       help="comma-separated engines: pgpt, optimum, torch, llama.cpp, onnxruntime-genai "
                            "(default: every one that can run here, pgpt and llama.cpp with --model; the others "
                            "are named under the table)")
    bench.add_argument("--prompt-tokens", type=positive_int, default=1000,
                       help="prompt length in tokens, chat template included; TTFT is for this length (default 1000)")
    bench.add_argument("--new-tokens", type=positive_int, default=128,
                       help="tokens generated per timed run, end of text ignored (default 128)")
    bench.add_argument("--repeats", type=positive_int, default=3,
                       help="timed runs per row after one warm-up; medians are reported (default 3)")
    bench.add_argument("--bandwidth-mb", type=non_negative_int, default=ARRAY_MB,
                       help="array size of the memory-bandwidth measurement that sets each row's limit, far above "
                            f"the CPU's last-level cache; 0 skips it (default {ARRAY_MB})")
    choice = bench.add_mutually_exclusive_group()
    choice.add_argument("--yes", action="store_true", help="export the missing models without asking")
    choice.add_argument("--no-export", action="store_true",
                        help="measure only what is exported; the other rows say how to export them")
    bench_chat = sub.add_parser("bench-chat", help="time a multi-turn chat with and without the kept KV buffer")
    bench_chat.add_argument("--json", action="store_true", help="print the results as JSON")
    bench_chat.add_argument("--model", default="", help="exported chat model (default: the active one)")
    turns = len(CHAT_QUESTIONS)  # --turns 7 ran 6 without a word
    bench_chat.add_argument("--turns", type=int_between(1, turns, f"the chat benchmark has {turns} questions"),
                            default=turns, help=f"user messages, 1 to {turns} (default {turns})")
    bench_chat.add_argument("--new-tokens", type=positive_int, default=128,
                            help="tokens generated per turn, end of text ignored (default 128)")
    bench_chat.add_argument("--repeats", type=positive_int, default=3, help="passes per mode (default 3)")
    bench_docs = sub.add_parser("bench-docs", help="benchmark retrieval, answers and ingestion on real documents")
    bench_docs.add_argument("--json", action="store_true", help="print the results as JSON")
    bench_docs.add_argument("--set", dest="sets", action="append", metavar="NAME",
                            help="question set: named, paraphrased, manuals-dev, manuals-test, cjk-test "
                                 "(repeatable or comma-separated; default: all)")
    bench_docs.add_argument("--model", default="", help="exported chat model that answers (default: the default one)")
    bench_docs.add_argument("--questions", type=non_negative_int, default=0,
                            help="answer only the first N questions of each set (default: all; retrieval "
                                 "scores every question)")
    bench_docs.add_argument("--retrieval-only", action="store_true",
                            help="ingest and search only: no answers, no embedder comparison")
    bench_docs.add_argument("--own", nargs=2, metavar=("FOLDER", "QUESTIONS"),
                            help="also (without --set: only) your own documents and questions: a folder and a JSON "
                                 "list of questions in bench-docs' format (README), scored as a held-out set \"own\"")
    add_embedder_option(bench_docs)
    add_serve_parser(sub)


def add_serve_parser(sub: Any) -> None:
    """`bench-serve`: concurrent clients against real servers."""
    serve = sub.add_parser(
        "bench-serve", help="concurrent clients against a real pgpt-serve (and llama.cpp's server)",
        description="Starts pgpt-serve (and llama.cpp's server on the model's GGUF, where installed) and runs "
                    "1, 2, 4, 8 and 16 concurrent clients: each sends chats of a unique prompt with a fixed "
                    "number of new tokens, then one documents question. Reports aggregate tokens/s, its ratio "
                    "to one client, and p50/p95 time to first token and total latency.")
    serve.add_argument("--json", action="store_true", help="print the rows as JSON")
    serve.add_argument("--clients", type=positive_ints, default=(1, 2, 4, 8, 16),
                       help="comma-separated numbers of concurrent clients, one level each (default 1,2,4,8,16)")
    serve.add_argument("--rounds", type=positive_int, default=2, help="chats per client per level (default 2)")
    serve.add_argument("--prompt-tokens", type=positive_int, default=200,
                       help="tokens of each chat prompt, chat template included (default 200)")
    serve.add_argument("--new-tokens", type=positive_int, default=128,
                       help="new tokens per chat, end of text ignored (default 128)")
    serve.add_argument("--parallel", type=positive_int, default=8,
                       help="sequences each server runs at once (pgpt-serve and llama-server --parallel; default 8)")
    serve.add_argument("--engines", default="pgpt,llama.cpp",
                       help="comma-separated servers: pgpt, llama.cpp (default both; llama.cpp where installed)")
    serve.add_argument("--chats-only", action="store_true",
                       help="no documents question after the chats (pgpt asks one per client by default; "
                            "llama.cpp never does), so both servers get the same load")
    serve.add_argument("--model", default="", help="exported chat model (default: the active one)")


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_bench(settings: Any, args: argparse.Namespace) -> int:
    """`pgpt-tui bench`: export what the rows compare (asking first on a terminal), measure, print the table."""
    import dataclasses

    from pgpt.bench.engines import BenchOptions, format_table, missing_exports, not_measured
    from pgpt.bench.engines import run_bench as measure_rows
    from pgpt.runtime.llm.session import cpu_summary, describe_cpu

    engines = tuple(e for e in args.engines.split(",") if e)
    models = tuple(name for value in args.model for name in value.split(",") if name)
    options = BenchOptions(dtypes=tuple(args.dtypes.split(",")), engines=engines, prompt_tokens=args.prompt_tokens,
                           new_tokens=args.new_tokens, repeats=args.repeats, export_missing=not args.no_export,
                           models=models, bandwidth_mb=args.bandwidth_mb)
    needs = missing_exports(settings, options) if options.export_missing else []
    if needs and not args.yes and not _confirmed([need.folder for need in needs]):
        options = dataclasses.replace(options, export_missing=False)
    rows = measure_rows(settings, options, progress=_progress)
    machine = cpu_summary()  # int8 speeds depend on the CPU's int8 unit (AMX or VNNI) above all
    skipped = not_measured(options)
    if args.json:
        print(json.dumps({"machine": machine, "results": rows, "not_measured": skipped}, indent=2))
        return 0
    print(f"machine: {describe_cpu(machine)}\n")
    print(format_table(rows))
    if skipped:
        print("\nNot measured: " + "; ".join(f"{engine}: {why}" for engine, why in skipped.items()))
    return 0


def _confirmed(folders: list[str]) -> bool:
    """Ask on a terminal before exporting; a script (stdin not a terminal) gets the exports it asked for."""
    _progress(f"bench: {len(folders)} of the exports it compares are not in the model cache: {', '.join(folders)}.\n"
              "bench: each takes about a minute on 2 cores and 0.3-0.8 GB of disk.")
    if not sys.stdin.isatty():
        return True
    try:
        answer = input("Export them now? [Y/n] ").strip().lower()
    except EOFError:
        return False
    return answer in ("", "y", "yes")


def run_bench_chat(settings: Any, args: argparse.Namespace) -> int:
    """`pgpt-tui bench-chat`."""
    from pgpt.bench.chat import format_results, run_chat_bench

    results = run_chat_bench(settings, args.model, args.turns, args.repeats, args.new_tokens, progress=_progress)
    print(json.dumps(results, indent=2) if args.json else format_results(results))
    return 0


def run_bench_docs(settings: Any, args: argparse.Namespace) -> int:
    """`pgpt-tui bench-docs`."""
    from pathlib import Path

    from pgpt.bench.corpora import QUESTION_SETS, own_set
    from pgpt.bench.documents import DocBenchOptions, format_results, run_doc_bench

    sets = tuple(dict.fromkeys(name.strip() for value in args.sets or [] for name in value.split(",") if name.strip()))
    unknown = [name for name in sets if name not in QUESTION_SETS]
    if unknown:
        print(f"error: bench-docs: no question set named {', '.join(unknown)}; the sets are "
              f"{', '.join(QUESTION_SETS)}.", file=sys.stderr)
        return 2
    own = own_set(Path(args.own[0]), Path(args.own[1])) if args.own else None  # UsageError: exit 2, one paragraph
    options = DocBenchOptions(sets=sets or (() if own else tuple(QUESTION_SETS)), model=args.model,
                              questions=args.questions, answers=not args.retrieval_only, own=own)
    results = run_doc_bench(settings, progress=_progress, options=options)
    print(json.dumps(results, indent=2) if args.json else format_results(results))
    return 0


def run_bench_serve(settings: Any, args: argparse.Namespace) -> int:
    """`pgpt-tui bench-serve`."""
    from pgpt.bench.serve import ServeBenchOptions, format_results, run_serve_bench
    from pgpt.runtime.llm.session import cpu_summary, describe_cpu

    options = ServeBenchOptions(clients=args.clients, rounds=args.rounds, prompt_tokens=args.prompt_tokens,
                                new_tokens=args.new_tokens, parallel=args.parallel,
                                engines=tuple(e for e in args.engines.split(",") if e), model=args.model,
                                documents=not args.chats_only)
    results = run_serve_bench(settings, options, progress=_progress)
    results["machine"] = cpu_summary()
    print(json.dumps(results, indent=2) if args.json
          else f"machine: {describe_cpu(results['machine'])}\n{format_results(results)}")
    return 0
