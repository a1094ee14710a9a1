"""Rows of `pgpt-tui bench --model NAME`: any exported chat models, and llama.cpp on the GGUF file
they were exported from (the manifest records it), side by side on the same prompt.

Every named export runs on pgpt (and on Optimum's runtime when it has Optimum's graph). Each
distinct GGUF source runs once on llama.cpp (and on PyTorch when asked): the file pgpt's export
was made from, so both engines start from the same quantized weights.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from pgpt.bench.loaders import Job
from pgpt.runtime.errors import ModelNotFoundError, UsageError
from pgpt.runtime.models import ModelInfo, find_model
from pgpt.runtime.settings import Settings

# With --model and no --engines: the exports on pgpt and their GGUF on llama.cpp. PyTorch (the
# whole model in fp32) and Optimum (its own graph only) run when named.
DEFAULT_ENGINES = ("pgpt", "llama.cpp")
Plan = list[tuple[dict[str, Any], Job | None]]


def named_models(settings: Settings, names: tuple[str, ...]) -> list[ModelInfo]:
    """The exported chat models called ``names``, which must share one tokenizer (one prompt for all).

    Raises:
        ModelNotFoundError: a name is not an exported model, or not a chat model.
        UsageError: two of them tokenize differently (a choice of models, not a bad setting).
    """
    infos = [find_model(settings, name) for name in names]
    for info in infos:
        if info.kind != "llm":
            raise ModelNotFoundError(f"{info.name} is an {info.kind} model; bench times chat models.",
                                     hint="Name a model of kind llm (`pgpt-tui models` lists them).")
    tokenizers = {_tokenizer_hash(info) for info in infos}
    if len(tokenizers) > 1:
        raise UsageError(f"{', '.join(names)} have different tokenizers, so they cannot share one prompt.",
                         hint="Bench exports of one model together (e.g. its int8 and int4), others in another run.")
    return infos


def _tokenizer_hash(info: ModelInfo) -> str:
    return next((str(f["sha256"]) for f in info.manifest["files"] if f["path"] == "tokenizer.json"), info.name)


def gguf_source(info: ModelInfo) -> Path | None:
    """The GGUF file ``info`` was exported from, when its manifest names one that is still there."""
    source = info.manifest.get("source", {})
    path = Path(str(source.get("path", ""))) if source.get("type") == "gguf" else None
    return path if path is not None and path.is_file() else None


def gguf_quant(path: Path) -> str:
    """The file's quantization as llama.cpp names it (``q4_k_m``), read from its header."""
    try:
        import gguf

        field = gguf.GGUFReader(str(path)).fields["general.file_type"]
        return gguf.LlamaFileType(int(field.parts[field.data[0]][0])).name.removeprefix("MOSTLY_").lower()
    except (ImportError, KeyError, ValueError, IndexError):
        return "gguf"


def plan_named(infos: list[ModelInfo], engines: tuple[str, ...], job: Job, row: Any, missing: Any) -> Plan:
    """Rows for the named exports on pgpt/Optimum, then one per GGUF source on llama.cpp/PyTorch.

    ``row(engine, dtype, status, quality=, graph=)`` makes an empty row and ``missing(engine)`` says
    why an engine cannot run here (pgpt.bench.engines).
    """
    from pgpt.bench.engines import graph_of, row_quality

    plan: Plan = []
    for engine in engines:
        if reason := missing(engine):
            plan.append((row(engine, "-", reason), None))
        elif engine in ("pgpt", "optimum"):
            for info in infos:
                if engine == "optimum" and graph_of(info) != "optimum":
                    plan.append((_named(row(engine, info.dtype, f"{info.name} has pgpt's fused graph; Optimum runs "
                                                                 "exports made with --graph optimum"), info.name), None))
                    continue
                quality, graph = row_quality(info, engine)
                plan.append((_named(row(engine, info.dtype, "ok", quality=quality, graph=graph), info.name),
                             replace(job, engine=engine, model=info)))
        elif engine in ("llama.cpp", "torch"):
            plan += _gguf_rows(infos, engine, job, row)
        else:
            plan.append((row(engine, "-", "not with --model (runs the default model only)"), None))
    return plan


def _gguf_rows(infos: list[ModelInfo], engine: str, job: Job, row: Any) -> Plan:
    """One row per distinct GGUF source; a row naming the exports that have none."""
    sources = {path: info for info in infos if (path := gguf_source(info)) is not None}
    plan: Plan = []
    for path, info in sources.items():
        dtype = gguf_quant(path) if engine == "llama.cpp" else "fp32"
        plan.append((_named(row(engine, dtype, "ok"), path.name), replace(job, engine=engine, gguf=path)))
    without = [info.name for info in infos if gguf_source(info) is None]
    if without:
        plan.append((row(engine, "-", f"no GGUF source for {', '.join(without)}: it runs the GGUF file an export "
                                      f"was made from (the manifest's source)"), None))
    return plan


def _named(row: dict[str, Any], model: str) -> dict[str, Any]:
    return {**row, "model": model}
