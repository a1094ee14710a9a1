"""The first use from the command line: pgpt's built-in models prepared before a command needs them,
as the app's first start does (tui/chat/first_run.py), with a line per export stage on stderr.

A new user on a server over SSH ran `pgpt-tui ingest docs` first and was told to run `pgpt-export
--default` (t84); now that command prepares them itself, once (about a minute on 2 cores).
"""

from __future__ import annotations

import sys
import threading

from pgpt.runtime.settings import Settings

# the commands that read documents with the embedder, and those of them that also run the chat model
EMBEDDER_COMMANDS = frozenset({"ingest", "search", "ask", "chat"})
CHAT_COMMANDS = frozenset({"ask", "chat"})


def prepare_built_in(settings: Settings, command: str) -> None:
    """Export the built-in models ``command`` needs and the model cache lacks (nothing for a server's
    client, or where the user chose other models); where they cannot be exported here, nothing: the
    command's own error then names what is missing."""
    from pgpt.export.defaults import cannot_prepare_reason, prepare_defaults

    models = to_prepare(settings, command)
    if not models or cannot_prepare_reason():
        return
    from pgpt.export.cli import quiet_libraries

    names = " and ".join(f"{m.name} ({m.dtype})" for m in models)
    print(f"pgpt: first use: preparing the built-in {names} in {settings.model_cache} (about a minute on "
          "2 CPU cores, only this once; Ctrl-C stops, and the next command starts again)", file=sys.stderr, flush=True)
    quiet_libraries()  # the libraries' warnings go to the log file, pgpt's stage lines to stderr
    prepare_defaults(settings, _stage_line, threading.Event(), models=models)
    print("pgpt: the built-in models are ready", file=sys.stderr, flush=True)


def to_prepare(settings: Settings, command: str) -> list:  # type: ignore[type-arg]
    """The built-in models (export.defaults.DefaultModel) that ``command`` needs and a first use lacks."""
    from pgpt.tui.chat.first_run import models_to_prepare

    if settings.server or command not in EMBEDDER_COMMANDS:
        return []
    stage = first_use(settings)
    return [m for m in models_to_prepare(settings) if (m.kind == "llm" and command in CHAT_COMMANDS and stage)
            or (m.kind == "embedding" and not settings.embedder and stage == "new")]


def first_use(settings: Settings) -> str:
    """"new" for a new installation (the model cache holds no model, the home no index), "begun" after
    a first `ingest` (the cache holds the built-in embedder alone: `ask` next lacked its chat model,
    t85), else "". Anything else is an existing setup looking in the wrong place (a cron job without
    PGPT_MODEL_CACHE, t71): exporting the models again there would hide that, so its command's error
    names where pgpt looked instead."""
    from pgpt.runtime.documents.index_folder import index_dir
    from pgpt.runtime.models import DEFAULT_EMBEDDER, list_models

    models = list_models(settings)
    # every folder counts, a damaged one too: a chat model whose manifest broke is named, not exported
    # again over it (probe 4.12)
    folders = sorted(p.name for p in settings.model_cache.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if settings.model_cache.is_dir() else []
    if not models and not folders:
        return "" if index_dir(settings).exists() else "new"
    return "begun" if [m.name for m in models] == folders == [DEFAULT_EMBEDDER] else ""


def _stage_line(stage: str, message: str) -> None:
    print(f"{stage:>9}: {message}", file=sys.stderr, flush=True)
