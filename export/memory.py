"""How much memory an export needs, checked against what the machine can give before it starts.

The fused path holds one tensor at a time while it writes the graph (fp16 too: it is converted
weight by weight), then, while it checks quality, the loaded export, and after the export is
closed the reference one decoder layer at a time; the Optimum path holds the whole model in fp32
several times over. The estimates below are those peaks, from the shapes, with the factors
measured on this project's models (see the README's "Real-size models").
"""

from __future__ import annotations

from pathlib import Path

from pgpt.export.decoder_spec import DecoderSpec
from pgpt.runtime.errors import MemoryNeedError

GB = 1e9
# Python with torch, transformers, onnx and onnxruntime imported, measured at about 0.6 GB.
BASE_BYTES = int(0.8 * GB)
# Resident bytes of a loaded export per byte of its files: MatMulNBits repacks 4-bit blocks with
# their scales and block sums (measured 1.35x for 4-bit, 1.17x for 8-bit).
LOADED_FACTOR = 1.4
# Whole-model paths: the fp32 model plus the traced graph plus its converted copy (the old fused
# export peaked at 3.8x the fp32 weights on Qwen2.5-1.5B).
WHOLE_MODEL_FACTOR = 4.0
# The same for an fp16 export on the CPU EP, which runs its fp16 MatMuls in fp32 and holds fp32
# copies: loading Qwen2.5-1.5B's shape (3.56 GB of files) peaked at 7.84 GB, 7.29 GB after it.
# Applied with --device cuda too, where the host's share was not measured (an upper bound there).
FP16_LOADED_FACTOR = 2.2
# Resident bytes of a prefill graph made from the decode graph, per layer weight: its int8 codes
# (q/k/v, o, gate/up) and its own packed copies of down_proj and lm_head (ONNX Runtime packs a
# weight per session). Measured +1.34 GB of peak RSS for Qwen2.5-1.5B's 1.31B layer weights.
STREAMED_PREFILL_FACTOR = 1.1
# Bytes per weight while a calibrated prefill graph is made: the fp32 graph loaded whole, its
# smoothed weights, the int8 graph and the calibration's activations (SmolLM2-135M's export peaked
# at 2.6 GB, 13.4 bytes a weight above the base).
CALIBRATED_PREFILL_BYTES = 14
# Quality check positions: the licence text plus three prompts with their answers.
CHECK_POSITIONS = 1400


def fused_file_bytes(spec: DecoderSpec, dtype: str) -> float:
    """Bytes of an export's weight files: fp32 and fp16 write a tied table twice (the embedding and
    ``lm_head``); int8 and int4 per weight as measured (4-bit blocks with fp32 scales and offsets: 0.75)."""
    if dtype in ("fp32", "fp16"):
        stored = spec.weights + (spec.vocab * spec.hidden if spec.tied else 0)
        return stored * (4.0 if dtype == "fp32" else 2.0)
    return spec.weights * {"int8": 1.2, "int4": 0.8}[dtype]


def fused_need(spec: DecoderSpec, dtype: str, prefill: bool = False, streamed_prefill: bool = False) -> int:
    """Peak bytes of a fused export: the largest of writing the graph, the loaded export with its
    logits, and the reference (the check closes the export before the reference runs:
    ``quality.llm_quality``); with a calibrated prefill graph, the fp32 graph and its int8 copy
    while that is made; with one made from the decode graph, its int8 codes beside the export."""
    largest = max(spec.vocab * spec.hidden, spec.intermediate * spec.hidden * 1)
    writing = largest * 4 * 3  # fp32 values, the transposed copy the quantizer reads, codes and scales
    layer = spec.weights // max(spec.layers, 1) - spec.vocab * spec.hidden // max(spec.layers, 1)
    loaded = fused_file_bytes(spec, dtype) * (FP16_LOADED_FACTOR if dtype == "fp16" else LOADED_FACTOR)
    if streamed_prefill:  # one byte per layer weight, packed by ONNX Runtime (measured +1.42 GB at 1.5B)
        loaded += layer * spec.layers * STREAMED_PREFILL_FACTOR
    # the logits of the test tokens, a softmax and a copy (with a prefill graph, scored as well, the
    # test tokens added 2.4 GB to the loaded export at Qwen2.5-1.5B's shape: the export's peak)
    export = loaded + CHECK_POSITIONS * spec.vocab * 4 * 3
    reference = (layer * 4 * 2  # one layer's fp32 weights and transformers' module over them
                 + spec.vocab * spec.hidden * 4 * 2  # the embedding, then lm_head, in fp32
                 + CHECK_POSITIONS * spec.vocab * 4 * 3)  # reference and export logits, and a softmax
    need = max(writing, export, reference)
    if prefill:  # the fp32 graph loaded whole, its smoothed weights, and the int8 graph
        need = max(need, spec.weights * CALIBRATED_PREFILL_BYTES)
    return int(BASE_BYTES + need)


def whole_model_need(parameters: int) -> int:
    """Peak bytes of an export that loads the whole model with transformers (Optimum's graph)."""
    return int(BASE_BYTES + parameters * 4 * WHOLE_MODEL_FACTOR)


def available_memory() -> int:
    """Bytes this process can still use: free and reclaimable RAM, within a cgroup limit if there is one."""
    import psutil

    available = int(psutil.virtual_memory().available)
    limit, usage = _cgroup_value("memory.max"), _cgroup_value("memory.current")
    if limit and usage:
        available = min(available, limit - usage)
    return available


def _cgroup_value(name: str) -> int:
    """A cgroup v2 memory value of this process's cgroup, 0 when absent or unlimited."""
    try:
        group = Path("/proc/self/cgroup").read_text().strip().rpartition(":")[2]
        text = (Path("/sys/fs/cgroup") / group.lstrip("/") / name).read_text().strip()
    except OSError:
        return 0
    return int(text) if text.isdigit() else 0


def check_memory(needed: int, what: str, limit_gb: float = 0.0, dtype: str = "") -> str:
    """Refuse before any work when ``needed`` bytes exceed what the machine can give (or ``limit_gb``,
    pgpt-export's --max-memory, when it is lower; ``dtype``: the type asked for); else the line the
    export prints, so that a user can weigh the estimate before minutes of work ("needs about 5.7 GB
    of memory, 20.6 GB available").

    Raises:
        MemoryNeedError: naming the need, what is available, and what to do.
    """
    from pgpt.runtime.footprint import human_bytes

    available = available_memory()
    where = "are available"
    if limit_gb and limit_gb * GB < available:
        available, where = int(limit_gb * GB), "are allowed (--max-memory)"
    if needed > available:
        error = MemoryNeedError(
            f"Exporting {what} needs about {human_bytes(needed)} of memory but only {human_bytes(available)} {where}."
        )
        if dtype == "int4":  # "a narrower type (--dtype int4 ...)" to a user who asked for int4 (t62)
            error.hint = ("Close other programs, run it on a machine with more memory, or choose a smaller model "
                          "(int4, asked for, needs the least of the types).")
        raise error
    return f"needs about {human_bytes(needed)} of memory, {human_bytes(available)} {where.removeprefix('are ')}"
