"""`pgpt-tui`: the app with no arguments; headless subcommands for scripts and servers."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pgpt.runtime.arg_types import VersionAction, non_negative_int, positive_int
from pgpt.runtime.settings import CHAT_MAX_TOKENS
from pgpt.runtime.sanitize import dumps_json, strip_controls
from pgpt.tui.cli.usage_errors import ParseError, Parser, unknown_arguments, usage_error


SERVER_USES = {"ingest": "upload the files to its index", "docs": "list its documents",
               "forget": "remove documents from its index"}


def add_server_option(parser: argparse.ArgumentParser, after_command: str = "") -> None:
    """``--server URL``, global and after the commands that can use a server (there SUPPRESS: when
    absent it leaves the global one), as users of other CLIs put it after the command; its help
    says what it does for ``after_command`` (for ingest it uploads: "instead of loading the model" misled)."""
    use = SERVER_USES.get(after_command, "")
    parser.add_argument("--server", metavar="URL", **({"default": argparse.SUPPRESS} if after_command else {}),
                        help=f"use a running pgpt-serve (e.g. http://127.0.0.1:8642): {use} (default: PGPT_SERVER)"
                        if use else "use a running pgpt-serve (e.g. http://127.0.0.1:8642) for the app, chat, ask "
                                    "and search instead of loading the model here (default: PGPT_SERVER)")


def build_parser() -> argparse.ArgumentParser:
    """Arguments of pgpt-tui and its subcommands (no heavy imports: --help stays instant)."""
    parser = Parser(
        prog="pgpt-tui", description="Private chat with your documents, in the terminal. Settings are PGPT_ "
                                     "environment variables (PGPT_HOME, PGPT_MODEL, ...) or PGPT_ lines of the .env "
                                     "file of the working folder (the environment wins); see README, Configuration.")
    parser.add_argument("--provider", choices=("auto", "cpu", "cuda"), help="execution provider (default: PGPT_PROVIDER or auto)")
    # the app's model (`pgpt-tui --model NAME`), as PGPT_MODEL; chat, ask and bench take their own after the command
    parser.add_argument("--model", dest="app_model", metavar="NAME", default="",
                        help="exported chat model the app starts on (default: PGPT_MODEL or the active one)")
    add_server_option(parser)
    parser.add_argument("--version", action=VersionAction)
    from pgpt.tui.cli import bench as bench_commands, documents as doc_commands, hub as hub_commands
    from pgpt.tui.cli import models as model_commands

    doc_commands.add_embedder_option(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chat = sub.add_parser("chat", help="answer one prompt, streamed to stdout")
    chat.add_argument("prompt", help="the prompt, or - to read it from standard input")
    chat.add_argument("--model", default="", help="exported model name (default: the active one)")
    chat.add_argument("--max-tokens", type=positive_int, default=CHAT_MAX_TOKENS,
                      help=f"most tokens in the answer (default {CHAT_MAX_TOKENS}, as the app; prompt and answer "
                           "must fit the model's context)")
    chat.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    chat.add_argument("--top-p", type=float, default=1.0,
                      help="sample only from the likeliest tokens holding this much probability, above 0 to 1 "
                           "(default 1: off)")
    chat.add_argument("--top-k", type=non_negative_int, default=0,
                      help="sample only from the K likeliest tokens (default 0: off)")
    chat.add_argument("--repetition-penalty", type=float, default=1.0,
                      help="above 1 makes tokens already in the text less likely, e.g. 1.1 (default 1: off)")
    chat.add_argument("--seed", type=int, default=None,
                      help="seed of the sampler, any whole number: the same seed gives the same answer with "
                           "--temperature above 0 (default: a fresh sample each time, never from the cache)")
    chat.add_argument("--no-cache", action="store_true", help="do not read or write the answer cache")
    chat.add_argument("--json", action="store_true", help="print one JSON object instead of streaming")
    add_server_option(chat, after_command="chat")
    model_commands.add_parser(sub)
    doctor = sub.add_parser("doctor", help="check onnxruntime, GPU, threads, folders and the Hub connection")
    doctor.add_argument("--json", action="store_true", help="print one JSON object")
    doctor.add_argument("--offline", action="store_true", help="skip the network section")
    bench_commands.add_parsers(sub, doc_commands.add_embedder_option)

    hub_commands.add_parsers(sub)
    doc_commands.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `pgpt-tui`."""
    from pgpt.runtime.sanitize import tolerant_streams
    from pgpt.runtime.telemetry import telemetry_off

    stdout_closed = _closed_streams()
    tolerant_streams()
    telemetry_off()  # ONNX Runtime's usage events: none, before anything imports it
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(argv)
    except ParseError as refused:  # argparse's own line, and its JSON under --json
        return usage_error(f"{refused.prog}: {refused.text}", "--json" in (sys.argv[1:] if argv is None else argv))
    if unknown:
        return unknown_arguments(parser, args, unknown)
    if stdout_closed and args.command is not None:  # exit 0 and no output hid a script's broken redirection (t71)
        return usage_error(f"standard output is closed (>&-), so what `pgpt-tui {args.command}` prints would be "
                           "lost; nothing was done. Send it to a file, or to /dev/null to run without it "
                           "(>/dev/null).", False)
    from pgpt.runtime.errors import user_message

    try:
        settings, setting_warnings = _settings(args)
        if args.command is None:
            from pgpt.tui.chat.launch import run_app

            return run_app(settings, setting_warnings)
        from pgpt.runtime.logs import setup_logging
        from pgpt.runtime.signals import terminate_as_interrupt

        setup_logging(settings)
        terminate_as_interrupt()
        from pgpt.tui.cli import bench as bench_commands, documents as doc_commands, hub as hub_commands
        from pgpt.tui.cli import forget as forget_command, models as model_commands

        handler = {"chat": _chat, "models": model_commands.run_models, "doctor": _doctor, "bench": bench_commands.run_bench,
                   "token": hub_commands.run_token, "check": hub_commands.run_check,
                   "download": hub_commands.run_download, "ingest": doc_commands.run_ingest,
                   "docs": doc_commands.run_docs, "forget": forget_command.run_forget,
                   "search": doc_commands.run_search, "ask": doc_commands.run_ask,
                   "bench-docs": bench_commands.run_bench_docs, "bench-chat": bench_commands.run_bench_chat,
                   "bench-serve": bench_commands.run_bench_serve}[args.command]
        from pgpt.tui.cli.first_use import prepare_built_in

        prepare_built_in(settings, args.command)  # a first `ingest` on a new machine (t84), as the app's first start
        code = handler(settings, args)
        sys.stdout.flush()  # here, where a reader that went away (| head) is caught below
        return code
    except BrokenPipeError:
        return _reader_gone()
    except (Exception, KeyboardInterrupt) as exc:  # one paragraph to stderr, details in the log
        import logging

        from pgpt.runtime.errors import Cancelled, PgptError

        log = logging.getLogger("pgpt")
        message = _output_fault(exc) or user_message(exc)
        stop = isinstance(exc, (KeyboardInterrupt, Cancelled))
        if log.hasHandlers():  # none before setup_logging (a bad setting): logging would print the traceback
            if stop:  # no failure: a log watched for warnings counted every Ctrl-C as a failed command (t53)
                from pgpt.runtime.signals import terminated

                # SIGTERM is timeout's, systemd's or kill's, not the user's: the log said "the user" (t71)
                log.info("stopped by %s: %s", "SIGTERM" if terminated(exc) else "the user",
                         " ".join(message.text.split())[:300])
            elif isinstance(exc, PgptError):  # a named cause: a line, no traceback
                log.warning("command failed: %s (%s)", message.title, type(exc).__name__)
            else:
                log.exception("command failed")
        # Ctrl+C mostly lands mid-answer: the error starts its own line, not the answer's.
        start = "\n" if stop and sys.stderr.isatty() else ""
        if stop and getattr(args, "command", None) == "chat" and not sys.stdout.isatty():
            print(flush=True)  # the streamed answer's line ends: "...Pollyerror: Stopped" in one file
        # a stop the user asked for is no error: its paragraph alone says where things stand
        print(f"{start}{message.text}" if stop else message.line(), file=sys.stderr)
        if getattr(args, "json", False):  # a script reading stdout got nothing at all (tester t43)
            try:
                error = {"title": message.title, "code": message.code, "message": message.text,
                         "exit_code": message.exit_code}
                if isinstance(getattr(exc, "retry_after_s", None), int):  # a busy server's Retry-After
                    error["retry_after_s"] = exc.retry_after_s
                print(dumps_json({"error": {**error, **getattr(exc, "details", {})}}), flush=True)
            except OSError:  # stdout itself fails (a full disk): stderr has said it
                _discard_stdout()
        return message.exit_code


def _closed_streams() -> bool:
    """A command started with standard input or output closed (``<&-``, ``>&-``, as a daemon or a cron
    job may be) reads an empty input: Python's None streams failed as a bug in pgpt (t50), where
    ``search -`` now says that standard input was empty. Returns whether standard output was closed
    (it then writes nowhere, and main() refuses a command: its output would be lost)."""
    import os

    if sys.stdin is None:
        sys.stdin = open(os.devnull, encoding="utf-8")  # for the whole process
    closed = sys.stdout is None
    if closed:
        sys.stdout = open(os.devnull, "w", encoding="utf-8")
    return closed


def _output_fault(error: BaseException) -> Any:
    """The message for a write to standard output that failed (``> /dev/full``, a full disk under a
    cron job's log), or None: it was "Disk full" about PGPT_HOME and the model cache (t50)."""
    import errno
    import os

    if not isinstance(error, OSError) or error.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    try:
        out = sys.stdout.fileno()
        full = os.fstatvfs(out).f_bavail == 0 or os.fstat(out).st_rdev == os.stat("/dev/full").st_rdev != 0
    except (OSError, ValueError, AttributeError):
        return None
    if not full:
        return None
    from pgpt.runtime.errors import UserMessage

    _discard_stdout()
    return UserMessage("Cannot write the output", f"Standard output could not be written: {error.strerror}. "
                       "The disk it goes to is full: free some space there, or send the output elsewhere.", 1)


def _reader_gone() -> int:
    """The reader of the output went away (``pgpt-tui models | head -1``): quiet, as other tools
    are, with the exit status of a process a SIGPIPE ended (128 + 13). Standard output goes to
    /dev/null so that the interpreter's last flush does not fail again."""
    _discard_stdout()
    return 141


def _discard_stdout() -> None:
    """Point standard output at /dev/null, so that the interpreter's last flush does not fail again."""
    import os

    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _settings(args: argparse.Namespace) -> tuple[Any, tuple[str, ...]]:
    """The settings from the environment over the working folder's .env (as pgpt-serve reads
    them) and the options; a warning on stderr for each PGPT_ name that no pgpt program reads."""
    import dataclasses

    from pgpt.runtime.environment import read_environment
    from pgpt.runtime.errors import ConfigError
    from pgpt.runtime.settings import Settings

    env = read_environment()
    warnings = tuple(env.warnings())
    print_warnings(list(warnings))  # before a bad value stops the command: the misspelling may be why
    try:
        settings = Settings.from_env({**env.values, "PGPT_SERVER": args.server} if args.server else env.values)
    except ConfigError as exc:
        raise env.explain(exc) from None
    settings = dataclasses.replace(settings, sources=env.sources())
    if args.provider:
        settings = dataclasses.replace(settings, provider=args.provider)
    if args.app_model:  # it was refused as an unknown command: a user starting the app on another model
        settings = dataclasses.replace(settings, model=args.app_model, sources={**settings.sources, "PGPT_MODEL": "--model"})
    if getattr(args, "embedder", None):
        if settings.server:  # it was ignored: the server searches its index with its own embedder
            from pgpt.runtime.errors import UsageError

            raise UsageError("--embedder chooses the embedding model of this machine's index; the server "
                             f"at {settings.server} searches its own index with its own.",
                             hint="Leave out --embedder (GET /v1/models names the server's), or run without "
                                  "--server (PGPT_SERVER).")
        settings = dataclasses.replace(settings, embedder=args.embedder,
                                       sources={**settings.sources, "PGPT_EMBEDDER": "--embedder"})
    return settings, warnings


def _chat(settings: Any, args: argparse.Namespace) -> int:
    from pgpt.runtime.llm.chat import ChatEngine
    from pgpt.runtime.llm.sampling import SamplingOptions
    from pgpt.tui.cli.inputs import refuse_no_cache_on_server, text_argument
    import threading

    from pgpt.tui.cli.interrupt import interruptible
    from pgpt.tui.cli.text_bar import status_line

    prompt = text_argument(args.prompt, "prompt")
    options = SamplingOptions(max_new_tokens=args.max_tokens, temperature=args.temperature, top_p=args.top_p,
                              top_k=args.top_k, repetition_penalty=args.repetition_penalty, seed=args.seed)
    # a terminal sees what happens before the first word: 14 s of a blank screen while a 1.5B model
    # loaded and read the prompt looked hung over SSH (t53); stderr only, cleared by the answer
    if settings.server:  # the server keeps the model loaded; its cache serves every client
        from pgpt.runtime.remote.client import connect

        refuse_no_cache_on_server(args.no_cache)
        status_line("asking the server…", args.json)
        engine: Any = _cleared(lambda: connect(settings, args.model), args.json)
    else:
        status_line("loading the model…", args.json)
        engine = _cleared(lambda: ChatEngine(settings, args.model, use_cache=not args.no_cache), args.json)
        print_warnings(engine.take_warnings())
    status_line("reading the prompt…", args.json)
    cancel = threading.Event()
    stream = engine.stream([{"role": "user", "content": prompt}], options, cancel)
    if hasattr(stream, "on_state"):  # a server's refusal as busy, asked again after its Retry-After
        from pgpt.tui.cli.answer_steps import say_step

        # (that only: a "waiting" heartbeat between two pieces would write over the answer's line)
        stream.on_state = lambda state: say_step(state, args.json) if state.startswith("busy ") else None
    written = False
    try:
        for piece in interruptible(stream, cancel, args.json):
            if not written:
                status_line("", args.json)
            if not args.json:
                sys.stdout.write(strip_controls(piece))
                sys.stdout.flush()
                written = written or bool(piece)
    except BaseException:
        status_line("", args.json)
        if written:  # a server that died mid-answer: its error starts a line of its own
            sys.stdout.write("\n")
            sys.stdout.flush()
        raise
    finally:
        print_warnings(engine.take_warnings())
        engine.close()
    if args.json:
        print(dumps_json(stream.result.as_json()))
    else:
        sys.stdout.write("\n")
        print_cut_note(stream.result)
    return 0


def _cleared(make: Any, quiet: bool) -> Any:
    """``make()``, with the status line cleared before its warning or error is printed."""
    from pgpt.tui.cli.text_bar import status_line

    try:
        return make()
    finally:
        status_line("", quiet)


def print_cut_note(result: Any) -> None:
    """On stderr (stdout keeps only the answer): that the answer was cut, and how to allow more."""
    from pgpt.runtime.llm.chat import cut_note

    if note := cut_note(result):
        # the answer's line ends first: where both streams go to one place (`2>&1 | less`, a captured log),
        # stdout's buffered "\n" came after the note ("...Paris(cut at ...)"); stdout's own bytes stay the same
        sys.stdout.flush()
        hint = "; --max-tokens allows a longer answer" if result.finish_reason == "length" else ""
        print(f"({note}{hint})", file=sys.stderr)


def print_warnings(warnings: list[str]) -> None:
    """Warnings go to stderr, one paragraph each, so stdout keeps only the answer."""
    for warning in warnings:
        print(f"warning: {strip_controls(warning)}", file=sys.stderr)


def _doctor(settings: Any, args: argparse.Namespace) -> int:
    from pgpt.runtime.doctor import notes, problems, run_checks, shown

    report = run_checks(settings, network=not args.offline)
    found, noted = problems(report), notes(report)
    if args.json:
        print(dumps_json({**report, "problems": found, "notes": noted}, indent=2))
    else:
        for section, items in report.items():
            print(f"[{section}]")
            for key, value in items.items():
                print(strip_controls(f"  {key:<22} {shown(value)}"))
    # Scripts and health checks read the exit status: 1 when something above needs action.
    if found:
        print(f"doctor: {len(found)} problem{'s' if len(found) > 1 else ''} found:", file=sys.stderr)
        for line in found:
            print(strip_controls(f"  {line}"), file=sys.stderr)
    for line in noted:  # said, but no failure: nothing here needs it now
        print(strip_controls(f"doctor: note: {line}"), file=sys.stderr)
    return 1 if found else 0


def run() -> None:
    """The `pgpt-tui` console script: main(), then exit with its code. A command stopped by Ctrl-C or
    SIGTERM (exit 130 or 143) has said what stays and settled the index when it gets here; it ends
    without the interpreter's teardown, in which a native library's thread still winding down (LanceDB's,
    ONNX Runtime's) made `timeout` of an `ingest --reindex` end in "terminate called without an active
    exception", exit 134, 2 runs in 20 (t71)."""
    code = main()
    if code in (130, 143):
        import logging
        import os

        logging.shutdown()  # the log file's last lines, as the normal exit would write them
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
