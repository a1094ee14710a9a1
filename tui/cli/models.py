"""`pgpt-tui models`: list, choose, version, roll back and delete exported models."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from pgpt.runtime.arg_types import non_negative_int
from pgpt.runtime.sanitize import dumps_json, strip_controls
from pgpt.tui.cli.text_bar import terminal_width


def add_parser(sub: Any) -> None:
    """The `models` subcommand."""
    models = sub.add_parser("models", help="list, choose, version and delete exported models")
    models.add_argument("--json", action="store_true", help="print JSON (the list, or what --versions/--delete did)")
    choice = models.add_mutually_exclusive_group()
    choice.add_argument("--use", metavar="NAME[@VERSION]",
                        help="make NAME the active chat model; with @VERSION also its active version (a running "
                        "pgpt-serve switches to it without a restart)")
    choice.add_argument("--versions", metavar="NAME", help="list the versions of NAME kept on disk")
    choice.add_argument("--rollback", metavar="NAME", help="make the version of NAME that was active before the "
                        "current one active again")
    choice.add_argument("--delete", metavar="NAME[@VERSION]", help="delete the exported model NAME (all its versions), "
                        "or NAME@VERSION: that one kept version")
    models.add_argument("--wait", type=non_negative_int, default=60, metavar="SECONDS",
                        help="with --use/--rollback: how long to wait for running servers to load the version "
                        "(default 60; 0: do not wait)")


def run_models(settings: Any, args: argparse.Namespace) -> int:
    """Handle `pgpt-tui models`; the exit code is 1 when a running server could not load the version."""
    if args.use:
        return _use(settings, args)
    if args.rollback:
        return _rollback(settings, args)
    if args.versions:
        return _versions(settings, args)
    if args.delete is not None:
        return _delete(settings, args)
    return _list(settings, args)


def _use(settings: Any, args: argparse.Namespace) -> int:
    from pgpt.runtime.models import find_model, set_active_model
    from pgpt.runtime.versions import parse_ref, use_version

    name, version = parse_ref(args.use)
    since = time.time()
    if version:
        chosen = find_model(settings, args.use)
        use_version(settings, name, chosen.version)  # a damaged version is refused before anyone switches
    model = set_active_model(settings, name)
    print(f"active chat model: {model.ref}")
    return _report_servers(settings, model.name, model.version, since, args.wait, version_changed=bool(version),
                           now_default=True)


def _rollback(settings: Any, args: argparse.Namespace) -> int:
    from pgpt.runtime.versions import rollback

    since = time.time()
    restored = rollback(settings, args.rollback)
    print(f"{restored.name} is back at version {restored.version} ({restored.created})")
    return _report_servers(settings, restored.name, restored.version, since, args.wait)


def _report_idle_servers(settings: Any, name: str, version: str, version_changed: bool, now_default: bool) -> int:
    """What changes for the running servers of this home that have ``name`` not loaded (none to wait
    for): an unpinned one's ``default`` follows ``--use`` at its next request. It said "no running
    pgpt-serve ... serves NAME" while the server's next `default` request got NAME (t49, t51)."""
    from pgpt.runtime.llm.serving.status_file import running_pools

    # most users run no server: what changes for them comes first
    # the version in use is the model cache's, the active model each home's own
    others = ("one with another PGPT_HOME over this model cache switches too: its log says how it went"
              if version_changed else "one with another PGPT_HOME keeps its own active model")
    pools = running_pools(settings)
    if not pools:
        print(f"chat, ask and the app use it from their next start; no running pgpt-serve with "
              f"PGPT_HOME={settings.home} serves {name} ({others})")
    for pool in pools:
        pinned = pool.get("pinned") or {}
        pid, pin = pool.get("pid"), str(pinned.get("name", ""))
        if now_default and not (pin and pin.partition("@")[0] != name):
            print(f"server (pid {pid}): its default is now {name}@{version}, loaded at its next request")
        elif now_default:
            print(f"server (pid {pid}) was started with {_pin(pin, str(pinned.get('by', '')))}: its default "
                  f"stays {pin}; {name}@{version} is served to requests that name it")
        else:
            print(f"server (pid {pid}): {name} is not loaded there; it loads {name}@{version} at its first request")
    return 0


def _report_servers(settings: Any, name: str, version: str, since: float, wait_s: int,
                    version_changed: bool = True, now_default: bool = False) -> int:
    """Wait for running servers (their pools) to switch ``name``; 1 when one could not.
    ``version_changed``: a model's version changed (every home over this model cache sees it), not
    only this home's choice of active model; ``now_default``: ``name`` became this home's active model."""
    from pgpt.runtime.llm.serving.status_file import wait_for_switch

    if not wait_s:
        return 0
    failed = 0
    outcomes = wait_for_switch(settings, name, version, since, wait_s)
    if not outcomes:  # servers announce themselves under their PGPT_HOME/run
        return _report_idle_servers(settings, name, version, version_changed, now_default)
    for outcome in outcomes:
        if outcome.state == "ok" and outcome.pinned and outcome.pinned.partition("@")[0] != name:
            # its `default` does not follow --use: "now serving" read as the switch clients get
            print(f"server (pid {outcome.pid}) was started with {_pin(outcome.pinned, outcome.pinned_by)}: "
                  f"its default stays {outcome.pinned}; {name}@{version} is served to requests that name it")
        elif outcome.state == "ok":
            print(f"server (pid {outcome.pid}): now serving {name}@{version}")
        elif outcome.state == "failed":
            failed += 1
            print(f"server (pid {outcome.pid}): could not load {name}@{version} and keeps serving the previous "
                  f"version: {outcome.reason}")
        else:
            print(f"server (pid {outcome.pid}): has not switched after {wait_s} s (still loading?)")
    return 1 if failed else 0


def _pin(model: str, setting: str) -> str:
    """How a server's default was pinned: "--model NAME", or "PGPT_MODEL=NAME" (from "PGPT_MODEL (set in ...)")."""
    return f"{setting} {model}" if setting.startswith("--") else f"{setting.partition(' ')[0] or 'PGPT_MODEL'}={model}"


def _versions(settings: Any, args: argparse.Namespace) -> int:
    from pgpt.runtime.errors import UsageError
    from pgpt.runtime.footprint import human_mb
    from pgpt.runtime.versions import list_versions

    if "@" in args.versions:  # it said "There is no exported model called 'NAME@VERSION'"
        raise UsageError(f"--versions takes a model's name, not {args.versions[:80]!r}.",
                         hint=f"Run `pgpt-tui models --versions {args.versions.partition('@')[0]}`.")
    versions = [v.summary() for v in list_versions(settings, args.versions)]
    if args.json:
        print(json.dumps({"name": args.versions, "versions": versions}, indent=2))
        return 0
    print(f"  {'version':<13} {'created':<21} {'dtype':<5} {'prefill':<7} {'size':>8}  source")
    for v in versions:
        mark = "*" if v["active"] else " "  # the source tells apart versions from X-Q4_K_M.gguf and X-Q8_0.gguf
        print(f"{mark} {v['version']:<13} {v['created']:<21} {v['dtype']:<5} {v['prefill'] or '-':<7} "
              f"{human_mb(v['size_bytes'] / 1e6, ''):>8}  {v['source']}")
    return 0


def _delete(settings: Any, args: argparse.Namespace) -> int:
    import dataclasses

    from pgpt.tui.jobs import delete_exported, describe_deletion

    if "@" in args.delete:  # one kept version (a damaged one too); the active one stays
        from pgpt.runtime.versions import delete_version, parse_ref

        name, version = parse_ref(args.delete)
        gone = delete_version(settings, name, version)
        print(dumps_json(gone, indent=2) if args.json
              else f"deleted version {gone['version']} of {name} ({gone['size_mb']:.0f} MB)")
        return 0
    deleted, now = delete_exported(settings, args.delete)
    print(dumps_json({**dataclasses.asdict(deleted), "active_model": now}, indent=2) if args.json
          else describe_deletion(deleted, now))
    return 0


def _active_name(settings: Any) -> tuple[str, str]:
    """The active chat model's name ("" when there is none: the listing still shows the rest), and
    the message when the settings file that names it cannot be read ("" when it can): the listing
    said nothing about a damaged file, and marked no model."""
    from pgpt.runtime.errors import ConfigError, PgptError, StorageError, user_message
    from pgpt.runtime.models import active_chat_model

    try:
        return active_chat_model(settings).name, ""
    except (ConfigError, StorageError) as error:
        message = user_message(error)
        return "", f"{message.title}: {message.text}"
    except PgptError as error:  # PGPT_MODEL names no model: the listing marked none without a word (t51)
        message = user_message(error)
        return "", f"{message.title}: {message.text}" if settings.model else ""


def _list(settings: Any, args: argparse.Namespace) -> int:
    from pgpt.runtime.footprint import DEFAULT_CONTEXT, RUNTIME_MB
    from pgpt.runtime.models import damaged_models, list_models

    models = [m.summary() for m in list_models(settings)]
    damaged = damaged_models(settings)
    active, problem = _active_name(settings)
    for m in models:
        m["active"] = m["name"] == active
    if problem:
        print(f"warning: {problem}", file=sys.stderr)
    if args.json:
        extra = {"settings_problem": problem} if problem else {}
        print(dumps_json({"models": models, "damaged": [{"name": n, "reason": r} for n, r in damaged], **extra},
                         indent=2))
        return 0
    if not models and not damaged:
        print(strip_controls(f"No exported models in {settings.model_cache}. Run `pgpt-export --default`."))
        return 0
    if models:
        import textwrap

        for line in _table(models):
            print(strip_controls(line))
        print("\n" + textwrap.fill(
            f"* the active chat model (`pgpt-tui models --use NAME` switches); memory: expected RSS once loaded "
            f"(weights + KV buffer of {DEFAULT_CONTEXT} tokens + {RUNTIME_MB} MB of runtime); "
            "`pgpt-tui bench --model NAME` measures the peak.", terminal_width() or 10_000, break_on_hyphens=False))
    for name, reason in damaged:
        print(" ".join(strip_controls(f"damaged: {name}: {reason} Remove it with `pgpt-tui models --delete {name}` "
                                      "and export it again.").split()))
    return 0


# Columns a narrow terminal loses, in this order: a model's size on disk and in memory say more than
# its parameter count, its name says its dtype in the usual naming (...-int8), and the quality cell its
# kind ("top-1" for a chat model, "cosine" for an embedder).
_OPTIONAL_COLUMNS = ("params", "dtype", "kind")


def _table(models: list[dict[str, Any]]) -> list[str]:
    """The listing's lines, each column as wide as its widest cell; on a terminal narrower than that,
    without the optional columns (the table was 103 columns wide and wrapped mid-word at 80). The
    version is shown by its first 8 characters: a unique start names it everywhere a version is typed."""
    from pgpt.runtime.footprint import human_count, human_mb
    from pgpt.tui.jobs import quality_cell

    columns = {
        "name": [m["name"] for m in models], "version": [m["version"][:8] for m in models],
        "kind": [m["kind"] for m in models], "dtype": [m["dtype"] for m in models],
        "params": [human_count(m["parameters"]) for m in models],
        "disk": [human_mb(m["size_bytes"] / 1e6, "") for m in models],
        "memory": [f"{m['expected_memory_mb']:.0f}MB" for m in models],
        "quality": [quality_cell(m["quality"]) for m in models]}
    right = {"params", "disk", "memory"}
    widths = {name: max(len(name), *(len(cell) for cell in cells)) for name, cells in columns.items()}
    limit = terminal_width()
    for optional in _OPTIONAL_COLUMNS:
        if not limit or 2 + sum(widths.values()) + len(widths) - 1 <= limit:
            break
        del columns[optional], widths[optional]

    def line(mark: str, cells: dict[str, str]) -> str:
        return (mark + " " + " ".join(cells[name].rjust(widths[name]) if name in right
                                      else cells[name].ljust(widths[name]) for name in columns)).rstrip()

    rows = [line(" ", {name: name for name in columns})]
    rows += [line("*" if m["active"] else " ", {name: cells[n] for name, cells in columns.items()})
             for n, m in enumerate(models)]
    return rows
