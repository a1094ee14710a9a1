"""`pgpt-tui`: the app with no arguments; headless subcommands for scripts and servers."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pgpt.runtime.arg_types import non_negative_int, positive_int
from pgpt.runtime.sanitize import dumps_json, strip_controls


def build_parser() -> argparse.ArgumentParser:
    """Arguments of pgpt-tui and its subcommands (no heavy imports: --help stays instant)."""
    parser = argparse.ArgumentParser(prog="pgpt-tui", description="Private chat with your documents, in the terminal.")
    parser.add_argument("--provider", choices=("auto", "cpu", "cuda"), help="execution provider (default: PGPT_PROVIDER or auto)")
    from pgpt.tui.cli import bench as bench_commands, documents as doc_commands, hub as hub_commands

    doc_commands.add_embedder_option(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chat = sub.add_parser("chat", help="answer one prompt, streamed to stdout")
    chat.add_argument("prompt", help="the prompt, or - to read it from standard input")
    chat.add_argument("--model", default="", help="exported model name (default: the active one)")
    chat.add_argument("--max-tokens", type=positive_int, default=256)
    chat.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    chat.add_argument("--top-p", type=float, default=1.0)
    chat.add_argument("--top-k", type=non_negative_int, default=0)
    chat.add_argument("--repetition-penalty", type=float, default=1.0)
    chat.add_argument("--seed", type=int, default=0)
    chat.add_argument("--no-cache", action="store_true", help="do not read or write the answer cache")
    chat.add_argument("--json", action="store_true", help="print one JSON object instead of streaming")
    models = sub.add_parser("models", help="list exported models")
    models.add_argument("--json", action="store_true")
    choice = models.add_mutually_exclusive_group()
    choice.add_argument("--use", metavar="NAME", help="make NAME the active chat model")
    choice.add_argument("--delete", metavar="NAME", help="delete the exported model NAME from the model cache")
    doctor = sub.add_parser("doctor", help="check onnxruntime, GPU, threads, folders and the Hub connection")
    doctor.add_argument("--json", action="store_true")
    doctor.add_argument("--offline", action="store_true", help="skip the network section")
    bench_commands.add_parsers(sub, doc_commands.add_embedder_option)
    hub_commands.add_parsers(sub)
    doc_commands.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `pgpt-tui`."""
    args = build_parser().parse_args(argv)
    from pgpt.runtime.errors import user_message

    try:
        settings = _settings(args)
        if args.command is None:
            from pgpt.tui.chat.launch import run_app

            return run_app(settings)
        from pgpt.runtime.logs import setup_logging

        setup_logging(settings)
        from pgpt.tui.cli import bench as bench_commands, documents as doc_commands, hub as hub_commands

        handler = {"chat": _chat, "models": _models, "doctor": _doctor, "bench": bench_commands.run_bench,
                   "token": hub_commands.run_token, "check": hub_commands.run_check,
                   "download": hub_commands.run_download, "ingest": doc_commands.run_ingest,
                   "docs": doc_commands.run_docs, "forget": doc_commands.run_forget,
                   "search": doc_commands.run_search, "ask": doc_commands.run_ask,
                   "bench-docs": bench_commands.run_bench_docs,
                   "bench-chat": bench_commands.run_bench_chat}[args.command]
        return handler(settings, args)
    except (Exception, KeyboardInterrupt) as exc:  # one paragraph to stderr, details in the log
        import logging

        logging.getLogger("pgpt").exception("command failed")
        message = user_message(exc)
        print(f"error: {message.title}: {message.text}", file=sys.stderr)
        return message.exit_code


def _settings(args: argparse.Namespace) -> Any:
    import dataclasses

    from pgpt.runtime.settings import Settings

    settings = Settings.from_env()
    if args.provider:
        settings = dataclasses.replace(settings, provider=args.provider)
    if getattr(args, "embedder", None):
        settings = dataclasses.replace(settings, embedder=args.embedder)
    return settings


def _chat(settings: Any, args: argparse.Namespace) -> int:
    from pgpt.runtime.llm.chat import ChatEngine
    from pgpt.runtime.llm.sampling import SamplingOptions
    from pgpt.tui.cli.inputs import text_argument

    prompt = text_argument(args.prompt, "prompt")
    options = SamplingOptions(max_new_tokens=args.max_tokens, temperature=args.temperature, top_p=args.top_p,
                              top_k=args.top_k, repetition_penalty=args.repetition_penalty, seed=args.seed)
    engine = ChatEngine(settings, args.model, use_cache=not args.no_cache)
    print_warnings(engine.take_warnings())
    stream = engine.stream([{"role": "user", "content": prompt}], options)
    try:
        for piece in stream:
            if not args.json:
                sys.stdout.write(strip_controls(piece))
                sys.stdout.flush()
    finally:
        print_warnings(engine.take_warnings())
        engine.close()
    if args.json:
        print(dumps_json(stream.result.as_json()))
    else:
        sys.stdout.write("\n")
    return 0


def print_warnings(warnings: list[str]) -> None:
    """Warnings go to stderr, one paragraph each, so stdout keeps only the answer."""
    for warning in warnings:
        print(f"warning: {strip_controls(warning)}", file=sys.stderr)


def _models(settings: Any, args: argparse.Namespace) -> int:
    import dataclasses

    from pgpt.runtime.models import damaged_models, list_models, set_active_model
    from pgpt.tui.jobs import delete_exported, describe_deletion, quality_cell

    if args.use:
        chosen = set_active_model(settings, args.use)
        print(f"active chat model: {chosen.name}")
        return 0
    if args.delete is not None:
        deleted, now = delete_exported(settings, args.delete)
        print(dumps_json({**dataclasses.asdict(deleted), "active_model": now}, indent=2) if args.json
              else describe_deletion(deleted, now))
        return 0
    models = [m.summary() for m in list_models(settings)]
    damaged = damaged_models(settings)
    if args.json:
        print(dumps_json({"models": models, "damaged": [{"name": n, "reason": r} for n, r in damaged]}, indent=2))
        return 0
    if not models and not damaged:
        print(strip_controls(f"No exported models in {settings.model_cache}. Run `pgpt-export --default`."))
        return 0
    if models:
        print(f"{'name':<34} {'kind':<9} {'dtype':<5} {'size':>8}  quality")
    for m in models:
        print(strip_controls(f"{m['name']:<34} {m['kind']:<9} {m['dtype']:<5} {m['size_mb']:>6.0f}MB  "
                             f"{quality_cell(m['quality'])}"))
    for name, reason in damaged:
        print(" ".join(strip_controls(f"damaged: {name}: {reason} Remove it with `pgpt-tui models --delete {name}` "
                                      "and export it again.").split()))
    return 0


def _doctor(settings: Any, args: argparse.Namespace) -> int:
    from pgpt.runtime.doctor import run_checks

    report = run_checks(settings, network=not args.offline)
    if args.json:
        print(dumps_json(report, indent=2))
    else:
        for section, items in report.items():
            print(f"[{section}]")
            for key, value in items.items():
                print(strip_controls(f"  {key:<22} {value}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
