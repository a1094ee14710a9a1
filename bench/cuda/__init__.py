"""The CUDA path, checked on a lent GPU (issue 21, section 2): where the graph's nodes run, batched
answers equal to one stream's, the batch's KV buffer on the device, and speed beside PyTorch.

No GPU is lent to CI or to the development machines, so this runs on the device tool's machine
(``scripts/cuda-check``), whose onnxruntime has the CUDA EP and which reaches no registry and no
Hub. The models are made there: random-weight GGUFs of real shapes (the embedded default's,
SmolLM2-135M, and Qwen2.5-1.5B's; ``bench.synthetic_gguf``), exported by ``pgpt-export`` as a
user would. Random weights give real speed but no real answers; batched and single-stream
greedy answers are compared as the CPU tests compare them on the real model (equal, or a first
difference at a near-tie). Results go to ``OUT/cuda.json`` after every stage, so a stage that
fails or runs out of time leaves the others' results.

    python -m pgpt.bench.cuda --out DIR [--stages ...] [--provider cuda|cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pgpt.bench.synthetic_gguf import GGUFModel

# The embedded default's shape (SmolLM2-135M-Instruct) and the real-size benchmark model's
# (Qwen2.5-Coder-1.5B-Instruct): layers, widths, heads and vocabularies as in their configs.
SHAPES = {
    "small": (GGUFModel("llama", layers=30, hidden=576, heads=9, kv_heads=3, head_dim=64, intermediate=1536,
                        context=8192, rope_base=1e5, eps=1e-5, tied=True), 49152),
    "qwen1.5b": (GGUFModel("qwen2", layers=28, hidden=1536, heads=12, kv_heads=2, head_dim=128, intermediate=8960,
                           context=32768, rope_base=1e6, eps=1e-6, tied=True), 151936),
    "tiny": (GGUFModel("llama", layers=2, hidden=64, heads=4, kv_heads=2, head_dim=16, intermediate=128,
                       tied=True), 1024),  # dry runs without a GPU
}
STAGES = ("environment", "small_fp16", "checks", "torch", "qwen_fp16", "speed", "small_int4")  # in this order
HBM_GB_S = 4800.0  # H200 datasheet; the device notes measured 4300 for a copy (read + write)


class Run:
    """The results so far, written to ``out/cuda.json`` after each stage."""

    def __init__(self, out: Path) -> None:
        self.out, self.results, self.models = out, {"stages": {}}, {}
        out.mkdir(parents=True, exist_ok=True)

    def stage(self, name: str, work: Callable[[], Any]) -> Any:
        """Run one stage, record its result (or its error) and seconds, save, echo."""
        started = time.perf_counter()
        try:
            value = work()
            record = {"ok": True, "result": value}
        except Exception as error:  # a benchmark records what failed and goes on with the next stage
            value, record = None, {"ok": False, "error": f"{type(error).__name__}: {error}",
                                   "traceback": traceback.format_exc()[-3000:]}
        record["seconds"] = round(time.perf_counter() - started, 1)
        self.results["stages"][name] = record
        (self.out / "cuda.json").write_text(json.dumps(self.results, indent=1, default=str))
        shown = {key: value for key, value in record.items() if key != "traceback"}
        print(f"== {name} ({record['seconds']} s): {json.dumps(shown, default=str)[:3000]}", flush=True)
        if "traceback" in record:
            print(record["traceback"][-1500:], flush=True)
        return value


def environment() -> dict[str, Any]:
    """onnxruntime's build and providers, why CUDA cannot run ('' when it can), the GPU."""
    import onnxruntime as ort

    from pgpt.runtime.llm.session import cuda_unavailable_reason

    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, check=False)
        gpu = smi.stdout.strip() or smi.stderr.strip()
    except OSError as error:
        gpu = f"none: {error}"
    return {"onnxruntime": ort.__version__, "providers": ort.get_available_providers(),
            "cuda_unavailable": cuda_unavailable_reason(), "gpu": gpu,
            "python": sys.version.split()[0], "cpus": os.cpu_count()}


def gpu_used_mb() -> int:
    """GPU memory in use, MiB, as nvidia-smi reports it (all processes); -1 without nvidia-smi."""
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, check=True)
        return int(smi.stdout.split()[0])
    except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
        return -1


def build(work: Path, shape: str, dtype: str, device: str) -> dict[str, Any]:
    """Write ``shape``'s random-weight GGUF (once) and export it with pgpt-export to ``dtype``."""
    from pgpt.bench.synthetic_7b import padded_vocabulary
    from pgpt.bench.synthetic_gguf import write_gguf

    model, vocab = SHAPES[shape]
    gguf = work / f"{shape}.gguf"
    started = time.perf_counter()
    if not gguf.is_file():
        write_gguf(gguf, model, padded_vocabulary(vocab))
    written = time.perf_counter() - started
    name = f"{shape}-{dtype}"  # pgpt-export adds the dtype to --name
    env = dict(os.environ, PGPT_MODEL_CACHE=str(work / "models"), PGPT_HOME=str(work / "home"), HF_HUB_OFFLINE="1")
    command = [sys.executable, "-m", "pgpt.export.cli", str(gguf), "--dtype", dtype, "--name", shape,
               "--accept-quality-loss", "--device", device]
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert child.stdout is not None
    lines = []
    for line in child.stdout:  # echoed: the export's progress is the run's progress
        print(f"   {line}", end="", flush=True)
        lines.append(line.rstrip("\n"))
    if child.wait() != 0:
        raise RuntimeError(f"pgpt-export exited {child.returncode}: {' | '.join(lines[-8:])}")
    manifest = json.loads((work / "models" / name / "manifest.json").read_text())
    return {"name": name, "gguf_s": round(written, 1), "export_s": round(time.perf_counter() - started, 1),
            "parameters": manifest.get("parameters"), "quality": manifest.get("quality", {}),
            "last_lines": lines[-3:]}


def load(work: Path, name: str, provider: str) -> Any:
    """The exported model ``name`` loaded on ``provider``."""
    from pgpt.runtime.llm.generation import LanguageModel
    from pgpt.runtime.models import find_model
    from pgpt.runtime.settings import Settings

    settings = Settings.from_env({"PGPT_MODEL_CACHE": str(work / "models"), "PGPT_HOME": str(work / "home")})
    return LanguageModel(find_model(settings, name), provider=provider)


def text_ids(model: Any, tokens: int, offset: int = 0) -> list[int]:
    """``tokens`` token ids of the Apache licence text (the vocabulary was trained on it),
    starting ``offset`` tokens in, so that prompts differ."""
    from pgpt.export.quality import QUALITY_TEXT

    ids = model.tokenize(QUALITY_TEXT.read_text(encoding="utf-8"))
    ids = (ids * (1 + (tokens + offset) // max(len(ids), 1)))[offset:offset + tokens]
    return ids


def main(argv: list[str] | None = None) -> int:
    """Run the chosen stages; exit 0 when every stage ran."""
    from pgpt.bench.cuda import checks

    parser = argparse.ArgumentParser(prog="python -m pgpt.bench.cuda", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for cuda.json")
    parser.add_argument("--work", type=Path, default=None, help="folder for the GGUFs and exports (default OUT/work)")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, of {', '.join(STAGES)}")
    parser.add_argument("--provider", default="cuda", choices=("cuda", "cpu"), help="cpu: a dry run without a GPU")
    parser.add_argument("--small", default="small", choices=tuple(SHAPES), help="the shape of the checks")
    parser.add_argument("--big", default="qwen1.5b", choices=tuple(SHAPES), help="the real-size shape (speed stages)")
    args = parser.parse_args(argv)
    stages = [s for s in args.stages.split(",") if s]
    run, work, provider = Run(args.out), args.work or args.out / "work", args.provider
    work.mkdir(parents=True, exist_ok=True)
    device = "cuda" if provider == "cuda" else "cpu"
    if "environment" in stages:
        run.stage("environment", environment)
    small = f"{args.small}-fp16"
    if "small_fp16" in stages:
        run.stage("small_fp16", lambda: build(work, args.small, "fp16", device))
    if "checks" in stages:
        run.stage("placement_small_fp16", lambda: checks.placement(load(work, small, provider)))
        run.stage("batch_equal_small_fp16", lambda: checks.batch_equal(load(work, small, provider)))
        run.stage("kv_on_device", lambda: checks.kv_on_device(load(work, small, provider)))
        run.stage("cuda_vs_cpu_small_fp16", lambda: checks.cuda_vs_cpu(work, small, provider))
        run.stage("speed_small_fp16", lambda: checks.speed(load(work, small, provider), levels=(1, 8),
                                                           bandwidth_gb_s=HBM_GB_S))
    if "torch" in stages:
        run.stage("torch_big_fp16", lambda: checks.torch_baseline(SHAPES[args.big], device))
    if "qwen_fp16" in stages:
        run.stage("qwen_fp16", lambda: build(work, args.big, "fp16", device))
    if "speed" in stages:
        big = f"{args.big}-fp16"
        run.stage("placement_big_fp16", lambda: checks.placement(load(work, big, provider)))
        run.stage("speed_big_fp16", lambda: checks.speed(load(work, big, provider), bandwidth_gb_s=HBM_GB_S))
    if "small_int4" in stages:
        int4 = f"{args.small}-int4"
        run.stage("small_int4", lambda: build(work, args.small, "int4", "cpu"))
        run.stage("placement_small_int4", lambda: checks.placement(load(work, int4, provider)))
        run.stage("speed_small_int4", lambda: checks.speed(load(work, int4, provider), levels=(1, 8)))
    failed = [name for name, record in run.results["stages"].items() if not record["ok"]]
    print(f"stages failed: {', '.join(failed) or 'none'}", flush=True)
    return 1 if failed else 0

