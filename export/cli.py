"""`pgpt-export`: parse arguments, run the export pipeline, map errors to messages and exit codes."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from pgpt.runtime.arg_types import VersionAction, fraction, positive_float, positive_int
from pgpt.runtime.footprint import human_mb


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (kept separate so --help needs no heavy import)."""
    parser = argparse.ArgumentParser(
        prog="pgpt-export",
        description="Convert a Hugging Face model (repo id, local folder or .gguf file) to ONNX, "
        "measure the quality it lost against the original, and record it in manifest.json.",
    )
    parser.add_argument("source", nargs="?", help="repo id, local HF folder, or .gguf file")
    parser.add_argument("--default", action="store_true",
                        help="prepare the embedded default chat and embedding models from the installed packages")
    parser.add_argument("-o", "--output", type=Path, help="output folder (default: <model cache>/<name>-<dtype>)")
    parser.add_argument("--dtype", choices=("fp32", "fp16", "int8", "int4"), default=None,
                        help="weight type (default: fp32; int8 with --default); int4 keeps a GGUF's own blocks of "
                        "up to 4 bits (Q4_0, Q4_1, Q4_K, Q2_K, Q3_K) exactly and re-rounds wider ones to 4 bits "
                        "(an 8-bit embedding or output table keeps 8 bits); int8 keeps Q8_0/Q4_0/Q5_0 exactly")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="device for export and validation")
    parser.add_argument("--graph", choices=("auto", "fused", "optimum"), default="auto",
                        help="ONNX graph: fused (GroupQueryAttention, fast; Llama, Mistral, Qwen2, Qwen3, Gemma 3), optimum "
                        "(Optimum's exporter, any causal LM), auto = fused where supported (default)")
    parser.add_argument("--prefill", choices=("auto", "int8", "none"), default="auto",
                        help="auto: int8/int4 fused exports of models up to 500M parameters also get an "
                        "int8-compute prefill graph that reads long prompts faster on the CPU (kept only if it "
                        "passes the quality check); int8: larger models get one too, made from the decode "
                        "graph's weights (measured at 1.5B: prompts 1.6-1.8x faster, 0.75 byte per weight more "
                        "memory); none: skip it (less disk and memory)")
    parser.add_argument("--revision", help="branch, tag or commit of a Hub repo")
    parser.add_argument("--name", default="", help="model name in the cache, before the dtype that is added to it "
                        "(--name my-model --dtype int4 makes my-model-int4; default: from the source's name)")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="allow models that ship their own Python code (read it first)")
    parser.add_argument("--accept-quality-loss", action="store_true",
                        help="keep the export even when it fails the quality threshold")
    parser.add_argument("--min-agreement", type=fraction, default=0.9,
                        help="top-1 agreement with the original required to keep the export (default 0.9)")
    parser.add_argument("--keep-versions", type=positive_int, default=None,
                        help="exporting a name again into the model cache adds a version and keeps the newest N "
                        "(default: PGPT_KEEP_VERSIONS or 3); `pgpt-tui models --versions NAME` lists them")
    parser.add_argument("--max-memory", type=positive_float, default=None, metavar="GB",
                        help="refuse, before any work, an export that needs more memory than this (default: "
                        "what the machine has available)")
    parser.add_argument("--version", action=VersionAction)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `pgpt-export`."""
    from pgpt.runtime.sanitize import tolerant_streams
    from pgpt.runtime.telemetry import telemetry_off

    tolerant_streams()  # a latin-1 terminal: names it cannot show as escapes, not a crash
    telemetry_off()  # ONNX Runtime's usage events: none, before anything imports it
    args = build_parser().parse_args(argv)
    if not args.source and not args.default:
        build_parser().error("give a SOURCE or --default")
    if args.default and args.output is not None:
        build_parser().error("-o cannot be used with --default: the default models go into the model cache "
                             "(set PGPT_MODEL_CACHE=DIR to keep them elsewhere)")
    from pgpt.runtime.errors import user_message
    from pgpt.runtime.logs import setup_logging
    from pgpt.runtime.models import is_plain_name
    from pgpt.runtime.settings import Settings

    if args.name and not is_plain_name(args.name):  # "../../evil" wrote /evil-int8 outside the cache
        from pgpt.runtime.models import plain_name

        # repr, not ascii: "Café" read "Caf\xe9" (t62); repr still escapes control characters
        such = plain_name(args.name) if plain_name(args.name) and ".." not in args.name else "qwen2.5-1.5b-instruct"
        build_parser().error(f"--name {args.name!r} is not a model name: use letters, digits and ._+- "
                             f"(no path, no '..'), such as {such}")
    from pgpt.runtime.signals import terminate_as_interrupt

    logging_ready = False  # before the log file is set up, logging would print the traceback on stderr
    try:
        terminate_as_interrupt()  # a `kill` cleans up as Ctrl-C does (it left a 300 MB temporary folder)
        settings = Settings.from_env()
        setup_logging(settings)
        logging_ready = True
        quiet_libraries()
        if args.default:
            return _prepare_default(settings, args)
        from pgpt.export.sources import is_gguf_file

        if args.dtype is None and is_gguf_file(Path(args.source).expanduser()):
            # a quantized file widened to fp32 takes 4-8x its size on disk and in memory
            print("note: no --dtype, so this exports fp32 weights (4 bytes each); a quantized GGUF is usually "
                  "exported with --dtype int4 (Q4 files) or --dtype int8", file=sys.stderr, flush=True)
        _run_export(settings, args, args.source, args.dtype or "fp32", args.output, args.name)
        return 0
    except (Exception, KeyboardInterrupt) as exc:  # every failure becomes one paragraph, no traceback
        import logging

        log = logging.getLogger("pgpt.export")
        if isinstance(exc, KeyboardInterrupt) and logging_ready:  # a stop, not a fault: one line in the log
            log.warning("export stopped: %s", type(exc).__name__)
        elif logging_ready:  # else a bad setting (PGPT_THREADS=abc): its paragraph says all (t63)
            log.exception("export failed")
        message = user_message(exc)
        stop = isinstance(exc, KeyboardInterrupt)  # Ctrl-C or SIGTERM: a stop asked for, no error
        print(message.text if stop else message.line(), file=sys.stderr)
        return message.exit_code


def quiet_libraries() -> None:
    """Send the libraries' warnings and progress bars to the log file, not the terminal."""
    import logging
    import os

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    logging.captureWarnings(True)
    for name in ("transformers", "optimum", "onnxruntime", "torch"):
        logging.getLogger(name).propagate = True
    # pgpt prints its own stage lines; transformers' GGUF tqdm bar would interleave with them.
    os.environ.setdefault("TQDM_DISABLE", "1")


def _run_export(settings, args, source: str, dtype: str, output: Path | None, name: str):  # type: ignore[no-untyped-def]
    from pgpt.export.pipeline import ExportOptions, export_model

    options = ExportOptions(
        source=source, output=output, model_cache=settings.model_cache, dtype=dtype, device=args.device,
        revision=args.revision, trust_remote_code=args.trust_remote_code,
        accept_quality_loss=args.accept_quality_loss, min_agreement=args.min_agreement, name=name,
        graph=args.graph, prefill=args.prefill, max_memory_gb=args.max_memory or 0.0,
        keep_versions=args.keep_versions or settings.keep_versions,
    )
    info = export_model(options, progress=_print_progress, cancel=threading.Event())
    print(f"ready: {info.path} ({info.dtype}, {human_mb(info.size_bytes / 1e6)}; {quality_line(info.manifest)})")
    agreement = info.manifest.get("quality", {}).get("top1_agreement")
    if agreement is not None and agreement < args.min_agreement:  # kept by --accept-quality-loss, said (t51)
        from pgpt.export.pipeline import percent

        print(f"note: its top-1 agreement is below the {percent(args.min_agreement)} threshold; --accept-quality-loss "
              "kept it: its answers may differ from the original's", file=sys.stderr)
    return info


def quality_line(manifest: dict) -> str:  # type: ignore[type-arg]
    """The measured quality in a few words."""
    quality = manifest.get("quality", {})
    if "min_cosine" in quality:
        return f"cosine to the original >= {quality['min_cosine']:.4f}"
    if "top1_agreement" not in quality:
        return "quality not measured"
    line = f"top-1 agreement {quality['top1_agreement']:.1%}, perplexity x{quality['perplexity_ratio']:.3f}"
    prefill = quality.get("prefill")
    if prefill and not prefill.get("dropped"):
        line += f"; with the prefill graph {prefill['top1_agreement']:.1%}"
    if manifest.get("weights", {}).get("first_try"):  # "int4" alone hid int8's size (t62)
        line += "; its 5-8-bit blocks stay 8-bit (at 4 bits they missed the quality check), so it is near int8's size"
    return line


def _prepare_default(settings, args) -> int:  # type: ignore[no-untyped-def]
    """Export the embedded default LLM and embedder unless they are already in the model cache."""
    from pgpt.export.defaults import DEFAULT_LLM_DTYPE, default_models, missing_defaults, prepare_defaults

    dtype = args.dtype or DEFAULT_LLM_DTYPE
    missing = missing_defaults(settings.model_cache, dtype, args.graph)
    for model in default_models(dtype, args.graph):
        if model not in missing:
            print(f"ready: {settings.model_cache / model.folder} (already exported)")
    for info in prepare_defaults(settings, _print_progress, threading.Event(), dtype, models=missing,
                                 device=args.device, graph=args.graph, prefill=args.prefill,
                                 max_memory_gb=args.max_memory or 0.0):
        print(f"ready: {info.path} ({info.dtype}, {human_mb(info.size_bytes / 1e6)}; {quality_line(info.manifest)})")
    return 0


def _print_progress(stage: str, message: str) -> None:
    print(f"{stage:>9}: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
