"""The export pipeline: resolve, load, export, quantize, validate, then publish atomically."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from pgpt.export.publish import publish
from pgpt.export.sources import ModelSource, check_architecture, resolve_source, safetensors_parameters
from pgpt.runtime.errors import (
    Cancelled,
    DiskFullError,
    DiskSpaceError,
    MemoryNeedError,
    OutputExistsError,
    PgptError,
    QualityError,
    UnsupportedModelError,
)
from pgpt.runtime.manifest import write_manifest
from pgpt.runtime.models import ModelInfo
from pgpt.runtime.versions import can_publish

DTYPES = ("fp32", "fp16", "int8", "int4")
GRAPHS = ("auto", "fused", "optimum")
EXPORT_DISK_FACTOR = 1.6  # work files at their peak, per byte of fp32 weights (see export_space_needed)
TIED_DISK_FACTOR = 1.3  # the same per fp32 byte written, a tied table counted twice (see export_space_needed)
# int4 asks as much as int8: an 8-bit table, or the second try with 5-8-bit blocks at 8 bits
# (causal_lm._retry_wide), writes up to int8's size (Gemma 3 270M Q4_K_M: 1.28 and 1.42 B/weight).
FUSED_DISK_PER_WEIGHT = {"int8": 1.4, "int4": 1.4}
COPIED_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                "generation_config.json", "config.json")
Progress = Callable[[str, str], None]


@dataclass(frozen=True)
class ExportOptions:
    """What `pgpt-export` was asked to do."""

    source: str
    output: Path | None = None
    model_cache: Path | None = None
    dtype: str = "fp32"
    device: str = "cpu"
    revision: str | None = None
    trust_remote_code: bool = False
    accept_quality_loss: bool = False
    min_agreement: float = 0.9
    min_cosine: float = 0.99
    name: str = ""
    graph: str = "auto"
    prefill: str = "auto"  # "none": no int8 prefill graph; "int8": also above 500M (prefill_stream.wanted)
    max_memory_gb: float = 0.0  # 0: what the machine has available
    keep_versions: int = 3  # versions of a name kept in the model cache (see pgpt.runtime.versions)


def default_output(options: ExportOptions, source: ModelSource) -> Path:
    """``<model cache>/<name>-<dtype>`` unless -o was given."""
    if options.output is not None:
        return options.output.expanduser().resolve()
    if options.model_cache is None:
        raise ValueError("either output or model_cache is required")
    suffix = "-optimum" if options.graph == "optimum" else ""
    return options.model_cache / f"{options.name or source.name}-{options.dtype}{suffix}"


def export_model(options: ExportOptions, progress: Progress | None = None,
                 cancel: threading.Event | None = None) -> ModelInfo:
    """Export SOURCE to an ONNX folder with a manifest and a measured quality.

    The result appears only through the final rename of a temporary folder, so a crash,
    a refusal or a cancel leaves nothing that looks usable. Into the model cache, the result is
    a new version of its name (the previous versions stay, the newest ``keep_versions``);
    to an explicit ``output`` folder, it is a plain folder that must not exist yet.

    Raises:
        SourceError, OutputExistsError, DiskSpaceError, MemoryNeedError, QualityError, Cancelled.
    """
    started = time.perf_counter()
    report = _Reporter(progress, started, cancel)
    # Before a download of minutes: a target folder that cannot be written failed only at the end.
    from pgpt.runtime.storage_faults import require_writable

    if options.output is not None:
        require_writable(Path(options.output).parent, "the output folder's parent (-o)")
    elif options.model_cache is not None:
        require_writable(options.model_cache, "the model cache (PGPT_MODEL_CACHE)")
    report.check()
    # a line every 3 s meanwhile: reading a GGUF's tensor table (and the libraries it needs) took
    # 8 s on a busy machine without a word after the first line (t53)
    with report.heartbeat("resolve", f"resolving {options.source}"):
        source = resolve_source(options.source, options.revision, options.trust_remote_code,
                                progress=_download_lines(report), cancel=cancel)
    final = default_output(options, source)
    if options.output is None:
        refuse_another_kind(final, "embedding" if _is_sentence_transformer(source.folder) and not source.gguf_file
                            else "llm")
    damaged = replaceable_damage(final, options.model_cache)
    if final.exists() and not damaged and (options.output is not None or not can_publish(final.parent, final.name)):
        raise OutputExistsError(f"The output folder {final} already exists.")
    if damaged:
        report("replace", f"{final} is damaged ({damaged}); the new export replaces it")
    final.parent.mkdir(parents=True, exist_ok=True)
    check_disk(source, final.parent, options.dtype, options.graph, options.prefill)
    remove_stale_temporaries(final, options.model_cache)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        out = tmp / "out"
        out.mkdir(parents=True)
        manifest = _export_kind(source, options, tmp, report)
        manifest["export_seconds"] = round(time.perf_counter() - started, 1)
        manifest = write_manifest(out, manifest)
        if damaged:  # renamed first: a hidden name is never listed or loaded
            os.replace(final, tmp / "damaged")
        if options.output is None:
            version = publish(final.parent, final.name, out, options.keep_versions, report)
            report("done", f"wrote {final} (version {version.version})")
            return ModelInfo(final.name, version.path, manifest)
        os.replace(out, final)
    except OSError as exc:
        fault = _full_disk(exc, final, options.output is not None)
        if fault is None:
            raise
        raise fault from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report("done", f"wrote {final}")
    return ModelInfo(final.name, final, manifest)


def _full_disk(error: OSError, final: Path, explicit: bool) -> DiskFullError | None:
    """A disk that filled up during the export, naming the folder being written and, for -o, another
    -o as the way out (the generic message said "a data folder" and PGPT_HOME); None for other faults."""
    from pgpt.runtime.storage_faults import storage_fault

    if isinstance(error, PgptError) or not isinstance(storage_fault(error, final), DiskFullError):
        return None
    where = "choose another -o on a disk with room" if explicit else \
        "point PGPT_MODEL_CACHE (or -o) to a folder on another disk"
    return DiskFullError(f"Writing the export to {final} failed: the disk is full.", folder=final,
                         hint=f"Free some space on that disk (df -h shows how much is left), or {where}; "
                              "nothing was left half-written.")


def _export_kind(source: ModelSource, options: ExportOptions, tmp: Path, report: _Reporter) -> dict[str, Any]:
    """The embedder or causal-LM export into ``tmp/out``; a MemoryError names the stage it hit."""
    try:
        if _is_sentence_transformer(source.folder) and not source.gguf_file:
            from pgpt.export.embedding import export_embedding

            return export_embedding(source, options, tmp, report)
        from pgpt.export.causal_lm import export_causal_lm

        return export_causal_lm(source, options, tmp, report)
    except MemoryError as exc:
        if isinstance(exc, MemoryNeedError):
            raise
        from pgpt.export.memory import available_memory

        raise MemoryNeedError(f"The export ran out of memory in its {report.stage} stage "
                              f"({available_memory() / 1e9:.1f} GB were available when it failed).") from None


def refuse_another_kind(final: Path, kind: str) -> None:
    """Refuse a new version of a name in the model cache that holds another kind of model: a chat
    model exported as `--name all-minilm-l6-v2` became the embedder's active version, and search,
    ask and ingest failed, sent to --embedder, until a rollback nothing named (t62)."""
    from pgpt.runtime.errors import ModelIntegrityError, UsageError
    from pgpt.runtime.manifest import read_manifest

    try:
        held = str(read_manifest(final).get("kind", "llm"))
    except (ModelIntegrityError, OSError):  # nothing there, or damaged: replaceable_damage decides
        return
    if held != kind:
        words = {"llm": "a chat model", "embedding": "an embedding model"}
        raise UsageError(f"{final.name} in the model cache is {words.get(held, held)}, and this export is "
                         f"{words.get(kind, kind)}: a new version of that name would replace it. Nothing was "
                         "exported.", hint="Give the export another name with --name NAME.")


def replaceable_damage(final: Path, model_cache: Path | None) -> str:
    """Why the existing export ``final`` is damaged, when an export may replace it; else ''.

    Only a folder of the model cache with a manifest.json is replaced (a model pgpt exported):
    a folder elsewhere (``-o``) might be anything, and a whole export is never overwritten.
    """
    from pgpt.runtime.manifest import MANIFEST, folder_problem

    if model_cache is None or final.parent != model_cache or final.is_symlink() or not (final / MANIFEST).is_file():
        return ""
    return folder_problem(final)


def remove_stale_temporaries(final: Path, model_cache: Path | None = None) -> None:
    """Delete what killed exports left (their process is gone): in the model cache, those of every
    name (a never repeated export's leftovers stayed for good); in a folder given with -o, only
    those of ``final``'s name, as the folder may hold anything else."""
    from pgpt.runtime.models import stale_exports

    for stale in stale_exports(final.parent, "" if final.parent == model_cache else final.name):
        shutil.rmtree(stale, ignore_errors=True)


def percent(fraction: float) -> str:
    """0.9 -> "90%", 0.995 -> "99.5%" (a threshold printed as 100% would be wrong)."""
    return f"{fraction * 100:.4g}%"


def check_quality(quality: dict[str, Any], options: ExportOptions, kind: str) -> None:
    """Refuse a model below the threshold unless the user accepted the loss."""
    if options.accept_quality_loss:
        return
    # the types that keep more than the one refused (an int8 export was told to try --dtype int8)
    wider = {"int4": "--dtype int8 or fp32", "int8": "--dtype fp32", "fp16": "--dtype fp32"}.get(options.dtype)
    hint = {"hint": f"Try a wider type ({wider}), or pass --accept-quality-loss to keep it anyway."} if wider else {}
    if kind == "llm" and quality["top1_agreement"] < options.min_agreement:
        raise QualityError(
            f"The {options.dtype} export agrees with the original on only "
            f"{quality['top1_agreement']:.1%} of next tokens (threshold {percent(options.min_agreement)}; "
            f"perplexity x{quality['perplexity_ratio']:.2f}); nothing was written.", **hint
        )
    if kind == "embedding" and quality["min_cosine"] < options.min_cosine:
        raise QualityError(
            f"The {options.dtype} embeddings reach cosine {quality['min_cosine']:.4f} to the original "
            f"(threshold {options.min_cosine}); nothing was written.", **hint
        )


def export_space_needed(source: ModelSource, dtype: str = "fp32", graph: str = "auto", prefill: str = "none") -> int:
    """Bytes an export of ``source`` may write at its peak.

    int8/int4 fused exports without a prefill graph write their weights once, already quantized:
    1.4 bytes per weight and 50 MB are above what they use (int8 1.13, int4 0.75-1.42 bytes per
    weight, plus the rotary tables), and one byte per weight more with a prefill graph made from
    them (``--prefill int8`` above ``prefill_graph.MAX_PARAMETERS``); with the calibrated prefill
    graph (up to that size) an fp32 graph is written first. Everything else gets 1.6x the weights
    in fp32: the peak under the target, measured on SmolLM2-135M (538 MB in fp32) for every dtype
    and graph, ran from 0.33 GB (fused fp16) to 0.77 GB (Optimum's fp16, which writes fp32 first),
    at most 1.43x.
    """
    from pgpt.export.prefill_graph import MAX_PARAMETERS
    from pgpt.export.sources import tied_table

    parameters = source.parameters or safetensors_parameters(source.folder)

    with_prefill = prefill in ("auto", "int8") and parameters <= MAX_PARAMETERS
    if graph != "optimum" and dtype in FUSED_DISK_PER_WEIGHT and not with_prefill:
        # --prefill int8 above that size: one more byte per weight, the prefill graph's int8 codes
        streamed = parameters if prefill == "int8" else 0
        return int(parameters * FUSED_DISK_PER_WEIGHT[dtype]) + streamed + 50_000_000
    # A tied table is written twice in these graphs (the embedding and the output layer): a model whose
    # table is most of its weights (49k x 256 of 13.8M) wrote 109 MB for the 88 MB asked (t62). 1.3x the
    # fp32 bytes written covers SmolLM2-135M's measured peak (1.43x its 538 MB, with its table twice: 1.18x).
    tied = source.tied if source.gguf_file else tied_table(source.folder)
    return int(max(parameters * 4 * EXPORT_DISK_FACTOR, (parameters + tied) * 4 * TIED_DISK_FACTOR))


def check_disk(source: ModelSource, target: Path, dtype: str = "fp32", graph: str = "auto",
               prefill: str = "none") -> None:
    """Refuse early when the target disk cannot hold the work files (``export_space_needed``)."""
    from pgpt.runtime.footprint import human_bytes

    needed = export_space_needed(source, dtype, graph, prefill)
    free = shutil.disk_usage(target).free
    if free < needed:
        raise DiskSpaceError(
            f"Exporting needs about {human_bytes(needed)} in {target} but only {human_bytes(free)} are free."
        )


def base_manifest(source: ModelSource, options: ExportOptions, kind: str, task: str) -> dict[str, Any]:
    """The fields every manifest has (files and quality are added later)."""
    return {
        "name": options.name or source.name,
        "kind": kind,
        "task": task,
        "dtype": options.dtype,
        "source": source.record,
        # the model's weights: a tied table that a GGUF stores twice counts once (disk checks count both)
        "parameters": (source.parameters - source.repeated) or safetensors_parameters(source.folder),
        "tools": tool_versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def tool_versions() -> dict[str, str]:
    """Versions of the tools that shaped the graph."""
    versions = {}
    for dist in ("pgpt-terminal", "optimum-onnx", "optimum", "transformers", "torch", "onnx",
                 "onnxruntime-gpu", "onnxruntime"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return versions


def copy_model_files(src: Path, dst: Path) -> None:
    """Copy tokenizer, chat template and configs next to the graph."""
    for name in COPIED_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)


def graph_opset(path: Path) -> int:
    """The default-domain opset of an ONNX file."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def require_task(model_type: str, task: str) -> None:
    """check_architecture with a friendlier message for unknown types."""
    if not model_type:
        raise UnsupportedModelError("config.json names no model_type.", hint="Use a standard transformers model.")
    check_architecture(model_type, task)


def _is_sentence_transformer(folder: Path) -> bool:
    return (folder / "modules.json").is_file() or (folder / "sentence_bert_config.json").is_file()


class _Reporter:
    """Calls the progress callback with elapsed time and checks the cancel event between stages."""

    def __init__(self, progress: Progress | None, started: float, cancel: threading.Event | None) -> None:
        self._progress, self._started, self._cancel = progress, started, cancel
        self.stage = "resolve"
        self._last_line = started

    def __call__(self, stage: str, message: str) -> None:
        self.check()
        self.note(stage, message)

    def check(self) -> None:
        """Raise Cancelled when the export was told to stop."""
        if self._cancel is not None and self._cancel.is_set():
            raise Cancelled("The export was cancelled; nothing was written.")

    def note(self, stage: str, message: str) -> None:
        """Report without the cancel check (for callbacks on other threads, such as downloads)."""
        self.stage = stage
        self._last_line = time.perf_counter()
        if self._progress is not None:
            self._progress(stage, f"[{self._last_line - self._started:6.1f}s] {message}")

    @contextmanager
    def heartbeat(self, stage: str, message: str | Callable[[], str], every: float = 3.0,
                  clock: bool = True) -> Iterator[None]:
        """Within the block, a line every ``every`` seconds when nothing else was reported (for
        steps that report nothing themselves: parsing a tokenizer, converting one large tensor).
        ``message`` may be a function, called for each line; ``clock=False``: it gives its own time
        (the block's seconds beside a step's own were two clocks in one line)."""
        stop = threading.Event()
        started = time.perf_counter()

        def text() -> str:
            return message() if callable(message) else message

        self.note(stage, text())

        def beat() -> None:
            while not stop.wait(every / 3):
                if time.perf_counter() - self._last_line >= every:
                    self.note(stage, f"{text()} ({time.perf_counter() - started:.0f}s)" if clock else text())

        thread = threading.Thread(target=beat, name="export-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def _download_lines(report: _Reporter) -> Callable[[Any], None]:
    """A stage line per tenth of a Hub download: bytes, speed, ETA, current file."""
    last_step = [-1]

    def tick(p: Any) -> None:
        step = int(10 * p.done_bytes / max(p.total_bytes, 1))
        if step != last_step[0]:
            last_step[0] = step
            eta = f", ETA {p.eta_s:.0f}s" if p.eta_s is not None else ""
            report.note("download", f"{p.done_bytes / 1e6:.1f}/{p.total_bytes / 1e6:.1f} MB, "
                                    f"{p.bytes_per_s / 1e6:.1f} MB/s{eta} ({p.file})")
    return tick


def read_config(folder: Path) -> dict[str, Any]:
    """config.json of a HF folder as a dict."""
    from pgpt.runtime.llm.text import read_json

    return read_json(folder / "config.json")
