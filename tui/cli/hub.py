"""Headless Hugging Face commands of `pgpt-tui`: token, check, download (the TUI calls the same core)."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from pgpt.runtime.sanitize import dumps_json, strip_controls
from pgpt.tui.cli.text_bar import TextBar


def add_parsers(sub: Any) -> None:
    """Register token / check / download on the subcommand parser."""
    token = sub.add_parser("token", help="set, show or clear the Hugging Face token")
    token_sub = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    token_set = token_sub.add_parser("set", help="store a token (hidden prompt, or one line on stdin)")
    token_set.add_argument("--stdin", action="store_true", help="read the token from stdin (for scripts)")
    status = token_sub.add_parser("status", help="which token is in effect, from where, for whom")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    token_sub.add_parser("clear", help="delete the token stored by pgpt")
    check = sub.add_parser("check", help="can this repo be downloaded? (gated, token, network, size)")
    check.add_argument("repo", help="Hugging Face repo id, e.g. HuggingFaceTB/SmolLM2-135M-Instruct")
    check.add_argument("--revision", help="branch, tag or commit (default: main)")
    check.add_argument("--json", action="store_true", help="print one JSON object")
    download = sub.add_parser("download", help="download a repo's safetensors, verified and resumable")
    download.add_argument("repo", help="Hugging Face repo id, e.g. HuggingFaceTB/SmolLM2-135M-Instruct")
    download.add_argument("--revision", help="branch, tag or commit (default: main)")
    download.add_argument("--export", metavar="DTYPE", choices=("fp32", "fp16", "int8", "int4"),
                          help="then export it with pgpt-export and make it ready to chat with")
    download.add_argument("--prefill", choices=("auto", "int8", "none"), default="auto",
                          help="with --export: pgpt-export's --prefill (int8: an int8 prefill graph for models over "
                          "500M parameters too, prompts about 2x faster for about 1 byte per weight more memory)")


def run_token(settings: Any, args: argparse.Namespace) -> int:
    """`pgpt-tui token set|status|clear`."""
    from pgpt.runtime.hub.token import checked_token, clear_token, find_token, store_token

    if args.token_command == "set":
        if args.stdin or not sys.stdin.isatty():
            value = sys.stdin.readline()
        else:
            value = getpass.getpass("Hugging Face token (input hidden): ")
        checked = _hub_refusal(checked_token(value))  # as F2 does: a token the Hub rejects is not stored
        path = store_token(settings, value)
        print(f"stored in {path} (mode 0600)" + (f", not verified: {checked}" if checked else ""))
        return _print_status(settings, find_token(settings), as_json=False)
    if args.token_command == "clear":
        print("token removed" if clear_token(settings) else "no token was stored by pgpt")
        return 0
    return _print_status(settings, find_token(settings), as_json=args.json)


def _hub_refusal(token: str) -> str:
    """"" when the Hub knows ``token``, why it could not be asked when it is unreachable (the token
    is kept, unverified).

    Raises:
        HubAccessError: the Hub rejected the token (invalid or expired); nothing is stored.
    """
    from pgpt.runtime.errors import HubAccessError
    from pgpt.runtime.hub.access import shown_endpoint
    from pgpt.runtime.hub.identity import REJECTED, whoami
    from pgpt.runtime.hub.token import TokenChoice, mask

    identity = whoami(TokenChoice(token, "typed"))
    if identity.get("whoami_error") == REJECTED:
        raise HubAccessError(f"The Hub at {shown_endpoint()} rejected the token you gave ({mask(token)}) as invalid "
                             "or expired, so it was not stored.", status="unauthorized",
                             hint="Create a new read token at https://huggingface.co/settings/tokens and run "
                                  "`pgpt-tui token set` again.")
    return str(identity.get("whoami_error", ""))


def _print_status(settings: Any, choice: Any, as_json: bool) -> int:
    from pgpt.runtime.hub.access import shown_endpoint
    from pgpt.runtime.hub.identity import REJECTED, whoami

    identity = whoami(choice) if choice.token else {}
    status = {"source": choice.source, "token": choice.masked, "overrides": choice.overridden,
              "warnings": choice.warnings, "unreadable": choice.unreadable, "endpoint": shown_endpoint(), **identity}
    # a stored token nobody can read must not pass for "none"; one the Hub rejects is no token either
    failed = 1 if choice.unreadable or choice.malformed or identity.get("whoami_error") == REJECTED else 0
    if as_json:
        print(dumps_json(status, indent=2))
        return failed
    # "(none) from none" without a token
    shown = (f"{choice.masked} from {choice.source}" if choice.token else "none that can be read"
             if choice.unreadable else "none (set one with `pgpt-tui token set`, or HF_TOKEN)")
    print(strip_controls(f"token:     {shown}"))
    for name in choice.overridden:
        print(strip_controls(f"overrides: {name} (also holds a token, not used)"))
    if identity.get("whoami_error"):  # rejected, or the Hub could not be asked: say which
        print(strip_controls(f"account:   unknown: {identity['whoami_error']}"))
    elif identity:
        print(strip_controls(f"account:   {identity.get('user') or '?'} ({identity.get('role_text')})"))
    for warning in choice.warnings:
        print(strip_controls(f"warning:   {warning}"))
    for problem in choice.unreadable:
        print(strip_controls(f"error: Token file unreadable: {problem}. Check its owner and mode (ls -l), "
                             "or store the token again with `pgpt-tui token set`."), file=sys.stderr)
    return failed


def run_check(settings: Any, args: argparse.Namespace) -> int:
    """`pgpt-tui check REPO`: exit 0 when the repo can be downloaded, 1 otherwise."""
    from pgpt.tui.jobs import check_repo

    report = check_repo(settings, args.repo, args.revision)
    if args.json:
        print(dumps_json(report.as_json(), indent=2))
        return 0 if report.status == "ok" else 1
    print(f"{report.status}: {report.message}")
    if report.status == "ok":
        arch = report.architecture or "?"
        support = {True: "exportable", False: "NOT exportable by pgpt-export", None: "unknown"}
        print(f"license {report.license or '?'}; architecture {arch} ({support[report.architecture_supported]})")
        for entry in report.files:
            print(f"  {entry['size'] / 1e6:10.1f} MB  {entry['path']}")
    if report.alternatives:
        print("ungated models of a similar size: " + ", ".join(report.alternatives))
    return 0 if report.status == "ok" else 1


def run_download(settings: Any, args: argparse.Namespace) -> int:
    """`pgpt-tui download REPO [--export DTYPE]`."""
    import threading

    from pgpt.tui.jobs import download_repo

    if args.export:  # the export's folder is checked before the download, not after it
        from pgpt.runtime.storage_faults import require_writable

        require_writable(settings.model_cache, "the model cache (PGPT_MODEL_CACHE)")
    bar = TextBar(sys.stderr)

    def draw(tick: Any) -> None:
        megabytes = f"{tick.done_bytes / 1e6:8.1f}/{max(tick.total_bytes, 1) / 1e6:.1f} MB"
        this_file = f"{tick.file} {tick.file_done_bytes / 1e6:.1f}/{tick.file_total_bytes / 1e6:.1f} MB"
        bar.draw(tick.done_bytes, tick.total_bytes, f"{megabytes} {tick.bytes_per_s / 1e6:6.1f} MB/s", tick.eta_s,
                 this_file)

    folder = download_repo(settings, args.repo, args.revision, progress=draw, cancel=threading.Event())
    bar.close()
    print(f"ready: {folder} (every file matches the Hub's checksum)")
    if args.export:
        return _export(settings, args.repo, str(folder), args.export, args.prefill)
    return 0


def _export(settings: Any, repo: str, folder: str, dtype: str, prefill: str) -> int:
    from pgpt.tui.jobs import export_download

    info, active = export_download(settings, repo, folder, dtype, prefill,
                                   progress=lambda stage, msg: print(f"{stage:>9}: {msg}", file=sys.stderr))
    if active:
        print(f"ready to chat: {info.name} is the active model (pgpt-tui chat \"...\")")
    else:
        print(f"ready: {info.name} ({info.kind})")
    return 0
