"""A Mistral-7B-shaped int4 export on this machine: peak RSS, disk and time (issue 19, section 1).

Writes a random-weight GGUF of Mistral-7B-Instruct-v0.2's shape (32 layers, hidden 4096, FFN
14336, 32 heads of 128 and 8 KV heads, 32k vocabulary, rope base 1e6): layers and embedding in
Q4_0 as in llama.cpp's Q4_0 files, the output in Q8_0 (llama.cpp writes Q6_K, which int4 also
keeps in 8 bits). Then runs ``pgpt-export FILE --dtype int4`` into a temporary model cache under
``/usr/bin/time -v`` and reports the GGUF's size and write time, the export's seconds per stage
(from its progress lines), peak RSS and disk, files, quality and the free disk. Random weights
give near-flat next-token distributions, so the quality gate (made for real models) is lifted
with ``--accept-quality-loss`` and the numbers are reported as measured.

    python -m pgpt.bench.synthetic_7b [--out DIR] [--layers N] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pgpt.bench.synthetic_gguf import GGUFModel, Vocabulary, stored_bytes, train_vocabulary, write_gguf

GB = 1e9
VOCAB = 32000
TYPES = {"output": "Q8_0"}  # the rest Q4_0
STAGE_LINE = re.compile(r"^\s*(\w+): \[\s*([\d.]+)s\] (.*)$")
COMMAND = ["--dtype", "int4", "--accept-quality-loss"]
QUALITY = ("top1_agreement", "text_top1", "chat_top1", "perplexity_ratio", "positions", "reference")


def mistral_7b(layers: int = 32) -> GGUFModel:
    """Mistral-7B-Instruct-v0.2's shape (``layers`` of its 32 for a shorter run)."""
    return GGUFModel("llama", layers=layers, hidden=4096, heads=32, kv_heads=8, head_dim=128, intermediate=14336,
                     context=32768, rope_base=1e6, eps=1e-5, types=dict(TYPES))


def padded_vocabulary(size: int) -> Vocabulary:
    """The small trained BPE vocabulary padded with unused tokens to ``size`` (the embedding and
    output matrices get the real shape; the padding is never produced by the merges)."""
    vocabulary = train_vocabulary()
    extra = [f"<unused_{i}>" for i in range(size - len(vocabulary.tokens))]
    return Vocabulary(vocabulary.tokens + extra, vocabulary.merges, vocabulary.special)


def disk_needed(model: GGUFModel, vocab: int) -> int:
    """Bytes the run needs free: the GGUF, what pgpt-export's own disk check asks for int4
    (``pipeline.FUSED_DISK_PER_WEIGHT``), and 1 GB to spare."""
    from pgpt.export.pipeline import FUSED_DISK_PER_WEIGHT

    weights, gguf_bytes = stored_bytes(model, vocab)
    return int(gguf_bytes + weights * FUSED_DISK_PER_WEIGHT["int4"] + 1 * GB)


def run_export(gguf: Path, cache: Path) -> dict[str, Any]:
    """Export ``gguf`` into the model cache ``cache``, echoing its progress; the measured result."""
    timing = cache.parent / "time-v.txt"
    env = dict(os.environ, PGPT_MODEL_CACHE=str(cache), PGPT_HOME=str(cache.parent / "home"), HF_HUB_OFFLINE="1")
    command = ["/usr/bin/time", "-v", "-o", str(timing), sys.executable, "-m", "pgpt.export.cli", str(gguf), *COMMAND]
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines, peak_disk, sampled = [], 0, 0.0
    assert child.stdout is not None
    for line in child.stdout:
        print(line, end="", file=sys.stderr, flush=True)
        lines.append(line.rstrip("\n"))
        if time.perf_counter() - sampled >= 1.0:  # the export writes a line at least every 3 s
            peak_disk, sampled = max(peak_disk, folder_bytes(cache)), time.perf_counter()
    code = child.wait()
    peak_disk = max(peak_disk, folder_bytes(cache))  # a small export ends before the first sample
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", timing.read_text() if timing.is_file() else "")
    result = {"command": " ".join(["pgpt-export", gguf.name, *COMMAND]), "exit_code": code,
              "wall_s": round(time.perf_counter() - started, 1), "peak_rss_gb": round(int(rss[1]) * 1024 / GB, 2)
              if rss else None, "peak_disk_mb": round(peak_disk / 1e6), **stage_times(lines)}
    if code != 0:
        result["error"] = next((line for line in reversed(lines) if line.startswith("error:")), "".join(lines[-1:]))
    return result


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under ``folder`` (links not followed; files that vanish meanwhile count 0)."""
    total = 0
    for root, _, names in os.walk(folder):  # os.walk skips folders removed during the walk
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def stage_times(lines: list[str]) -> dict[str, Any]:
    """Seconds per stage (a stage's lines up to the next stage's) and the quality check's steps,
    from pgpt-export's ``stage: [  12.3s] message`` lines."""
    stages: dict[str, float] = {}
    steps: dict[str, float] = {}
    previous, since = "", 0.0
    for line in lines:
        if not (match := STAGE_LINE.match(line)):
            continue
        stage, at, message = match[1], float(match[2]), match[3]
        if stage != previous:
            if previous:
                stages[previous] = round(stages.get(previous, 0.0) + at - since, 1)
            previous, since = stage, at
        for step in ("loading the export", "greedy answers", "running the test tokens", "top-1 agreement"):
            if message.startswith(step):
                steps.setdefault(step, at)
        # its first line's ETA is layer 1's time x (N - 1): when the reference began
        if first := re.match(r"reference layer 1/(\d+), ETA (\d+)s", message):
            steps.setdefault("reference", at - int(first[2]) / max(int(first[1]) - 1, 1))
    names = list(steps)
    return {"stages_s": stages, "validate_s": {a: round(steps[b] - steps[a], 1) for a, b in zip(names, names[1:])}}


def export_files(cache: Path) -> dict[str, Any]:
    """The published export's size (its version folder) and its manifest's weights and quality."""
    manifests = list(cache.glob("*/manifest.json"))
    if not manifests:
        return {}
    manifest, size = json.loads(manifests[0].read_text()), folder_bytes(manifests[0].parent.resolve())
    weights, quality = manifest.get("weights", {}), manifest.get("quality", {})
    return {"files_mb": round(size / 1e6), "bytes_per_weight": round(size / manifest["parameters"], 3),
            "parameters": manifest["parameters"], "exact_blocks": weights.get("exact_blocks"),
            "requantized": weights.get("requantized"), "quality": {k: quality[k] for k in QUALITY if k in quality}}


def free_gb(folder: Path) -> float:
    """Free disk in ``folder``'s file system, GB."""
    return round(shutil.disk_usage(folder).free / GB, 2)


def run(out: Path, model: GGUFModel, vocab: int, keep: bool = False) -> dict[str, Any]:
    """Write the GGUF into ``out``, export it to int4, delete both unless ``keep``; the report.

    Raises:
        OSError: ``out`` has less free disk than the run needs (nothing was written).
    """
    out.mkdir(parents=True, exist_ok=True)
    needed, free = disk_needed(model, vocab), shutil.disk_usage(out).free
    if free < needed:
        raise OSError(f"The {model.layers}-layer run needs about {needed / GB:.1f} GB free in {out} "
                      f"(GGUF, export and 1 GB margin) but only {free / GB:.1f} GB are free: "
                      f"give --out on a bigger disk, or fewer --layers.")
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "folder": str(out), "shape": asdict(model) | {"vocab": vocab},
                              "cpus": os.cpu_count(), "disk_free_gb": {"before": free_gb(out)}}
    gguf, cache = out / "synthetic-7b.gguf", out / "cache"
    try:
        started = time.perf_counter()
        write_gguf(gguf, model, padded_vocabulary(vocab))
        report["gguf"] = {"bytes": gguf.stat().st_size, "write_s": round(time.perf_counter() - started, 1),
                          "write_peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GB, 2)}
        report["disk_free_gb"]["after_gguf"] = free_gb(out)
        report["export"] = run_export(gguf, cache) | export_files(cache)
        report["disk_free_gb"]["after_export"] = free_gb(out)
    finally:
        if not keep:
            gguf.unlink(missing_ok=True)
            shutil.rmtree(cache, ignore_errors=True)
            report["disk_free_gb"]["after_cleanup"] = free_gb(out)
    return report


def main(argv: list[str] | None = None) -> int:
    """Entry point: the run, its JSON report on stdout (and in --out/report.json)."""
    parser = argparse.ArgumentParser(description="Export a random-weight Mistral-7B-shaped GGUF to int4, measured.")
    parser.add_argument("--out", type=Path, help="work folder (default: a temporary folder, removed)")
    parser.add_argument("--layers", type=int, default=32, help="decoder layers (default 32, as Mistral-7B; "
                        "at 1 layer, under 500M weights, the export adds its prefill graph)")
    parser.add_argument("--keep", action="store_true", help="keep the GGUF and the export")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="pgpt-7b-"))
    try:
        report = run(out, mistral_7b(args.layers), VOCAB, args.keep)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.out is None and not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    text = json.dumps(report, indent=1)
    if args.out is not None:
        (args.out / "report.json").write_text(text + "\n")
    print(text)
    return 0 if report["export"]["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
