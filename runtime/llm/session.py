"""ONNX Runtime sessions: execution-provider choice (with the reason), threads, options."""

from __future__ import annotations

import ctypes
import functools
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from pgpt.runtime.errors import ModelIntegrityError, ProviderError

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


@dataclass(frozen=True)
class ProviderChoice:
    """The provider a session uses and why (shown by chat --json, doctor and the TUI)."""

    name: str  # "cuda" or "cpu"
    reason: str


def physical_cores() -> int:
    """Physical core count (hyper-threads slow ORT's intra-op pool down), at least 1."""
    cores: set[tuple[str, str]] = set()
    physical = ""
    for key, value in _cpuinfo_fields():
        if key == "physical id":
            physical = value
        elif key == "core id":
            cores.add((physical, value))
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(len(cores) or available or 1, available or 1))


# The CPU feature that runs int8 matrix products fastest, best first. int8 speed (the embedder,
# the prefill graph) depends on it more than on anything else: on one 2-core VM, ONNX Runtime's
# int8 MatMul ran 860 G multiply-adds/s a core with AMX and 320 without (AVX512-VNNI).
_INT8_UNITS = (("amx_int8", "AMX"), ("avx512_vnni", "AVX512-VNNI"), ("avx_vnni", "AVX-VNNI"), ("avx2", "AVX2"))


def _cpuinfo_fields(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[tuple[str, str]]:
    """(key, value) for every line of /proc/cpuinfo; none where it cannot be read."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return []
    return [(key.strip(), value.strip()) for key, _, value in (line.partition(":") for line in lines)]


def cpu_summary(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    """The CPU in a benchmark's or doctor's words: model name, physical cores, int8 matrix unit."""
    fields = _cpuinfo_fields(cpuinfo)
    model = next((value for key, value in fields if key == "model name"), "")
    flags = set(next((value for key, value in fields if key == "flags"), "").split())
    if "amx_int8" in flags and not _amx_permitted():
        flags.discard("amx_int8")  # the CPU has it, but the kernel or a sandbox refuses it to us
    unit = next((name for flag, name in _INT8_UNITS if flag in flags), "unknown")
    return {"model": model or "unknown", "physical_cores": physical_cores(), "int8_unit": unit}


def _amx_permitted() -> bool:
    """Whether Linux lets this process use AMX tiles: the request ONNX Runtime itself makes first."""
    import platform

    if platform.system() != "Linux" or platform.machine() != "x86_64":
        return False
    sys_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata = 158, 0x1023, 18
    try:
        return ctypes.CDLL(None, use_errno=True).syscall(sys_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) == 0
    except (OSError, AttributeError):
        return False


def describe_cpu(summary: dict[str, Any]) -> str:
    """One line: "Intel(R) Xeon(R) Processor, 2 cores, int8 on AMX"."""
    return f"{summary['model']}, {summary['physical_cores']} cores, int8 on {summary['int8_unit']}"


def ort_conflict() -> str:
    """A message when both onnxruntime and onnxruntime-gpu are installed, else ''."""
    names = {d.metadata["Name"].lower() for d in metadata.distributions() if d.metadata["Name"]}
    if "onnxruntime" in names and "onnxruntime-gpu" in names:
        return (
            "Both onnxruntime and onnxruntime-gpu are installed; they share one module, so the "
            "CPU-only build may hide CUDA. Run `pip uninstall -y onnxruntime onnxruntime-gpu` "
            "then `pip install onnxruntime-gpu`."
        )
    return ""


@functools.cache  # the probe preloads CUDA libraries; the answer holds for the whole process
def cuda_unavailable_reason() -> str:
    """Why the CUDA EP cannot run here, or '' when it looks usable."""
    from pgpt.runtime.telemetry import telemetry_off

    telemetry_off()  # before onnxruntime loads: it reads the opt-out once
    import onnxruntime as ort

    if CUDA not in ort.get_available_providers():
        return ort_conflict() or (
            "this onnxruntime build has no CUDA EP (install onnxruntime-gpu instead of onnxruntime)"
        )
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return "no NVIDIA driver or GPU is visible (libcuda.so.1 not found)"
    if hasattr(ort, "preload_dlls"):
        try:
            ort.preload_dlls(directory="")
        except Exception:  # preload is best effort; the session check below decides
            pass
    return ""


def choose_provider(requested: str) -> ProviderChoice:
    """Resolve auto/cpu/cuda to a provider, with the reason for the choice.

    Raises:
        ProviderError: when ``cuda`` is requested and cannot run.
    """
    if requested == "cpu":
        return ProviderChoice("cpu", "CPU requested")
    reason = cuda_unavailable_reason()
    if not reason:
        return ProviderChoice("cuda", "CUDA EP available")
    if requested == "cuda":
        raise ProviderError(
            f"CUDA was requested but cannot be used: {reason}.",
            hint="Use --provider cpu (or PGPT_PROVIDER=auto), or fix the CUDA install (pgpt-tui doctor).",
        )
    return ProviderChoice("cpu", f"CPU fallback: {reason}")


def session_options(threads: int = 0, spinning: bool = True) -> Any:
    """Session options: all graph optimizations, intra-op threads from physical cores.

    ``spinning=False`` parks the session's idle threads at once: for a second session (the
    prefill graph) whose spinning threads would otherwise take cores from the decode session.
    """
    from pgpt.runtime.telemetry import telemetry_off

    telemetry_off()  # before onnxruntime loads: it reads the opt-out once
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or physical_cores()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def attention_needs_cpu(dtype: str, graph: str) -> bool:
    """Whether ``auto`` keeps this export on the CPU although CUDA can run.

    CUDA's GroupQueryAttention has fp16 and bf16 kernels only, so in pgpt's fused graph of any
    other dtype every layer's attention falls back to the CPU, its activations copied to the host
    and back each layer. Measured on an H200 (bench/cuda/, SmolLM2-135M's shape): int4 on CUDA
    54 tok/s for one stream and 29 tok/s for 8 clients together; fp16 300 and 1474.
    """
    return graph == "fused" and dtype != "fp16"


ATTENTION_ON_CPU = ("CPU: the {dtype} export's attention has no CUDA kernel, so auto runs it on the CPU "
                    "(the GPU runs fp16 exports: pgpt-export SOURCE --dtype fp16)")


def create_session(model_path: Path, requested: str, threads: int = 0,
                   spinning: bool = True, cpu_reason: str = "") -> tuple[Any, ProviderChoice]:
    """Create an InferenceSession on the chosen provider; fall back to CPU when CUDA fails in auto.

    ``cpu_reason``: why ``auto`` should use the CPU for this model although CUDA may run (shown
    as the choice's reason when CUDA could have run).
    """
    from pgpt.runtime.telemetry import telemetry_off

    telemetry_off()  # before onnxruntime loads: it reads the opt-out once
    import onnxruntime as ort

    choice = choose_provider(requested)
    if cpu_reason and requested == "auto" and choice.name == "cuda":
        choice = ProviderChoice("cpu", cpu_reason)
    providers = [CUDA, CPU] if choice.name == "cuda" else [CPU]
    try:
        session = ort.InferenceSession(str(model_path), session_options(threads, spinning), providers=providers)
    except Exception as exc:  # ORT raises its own pybind types; the text names the cause
        if "INVALID_PROTOBUF" in str(exc) or "Protobuf parsing failed" in str(exc):
            raise ModelIntegrityError(f"{model_path} is not a valid ONNX model ({exc}).") from None
        raise ModelIntegrityError(f"ONNX Runtime cannot load {model_path}: {exc}") from None
    if choice.name == "cuda" and session.get_providers()[0] != CUDA:
        if requested == "cuda":
            raise ProviderError(
                "CUDA was requested but ONNX Runtime could not start the CUDA EP "
                "(CUDA 13 / cuDNN 9 libraries missing?).",
                hint="Install them with `pip install 'onnxruntime-gpu[cuda,cudnn]'` or use --provider cpu.",
            )
        choice = ProviderChoice("cpu", "CPU fallback: the CUDA EP failed to start (CUDA/cuDNN libraries missing)")
    return session, choice


def release_freed_memory() -> None:
    """Hand memory that closed sessions freed back to the system.

    Why: ONNX Runtime frees a session's weights into glibc's heap, which keeps the pages; after
    the app switched models a few times its RSS held every model it had loaded. A collection
    drops the last cycles that still reach a session, and malloc_trim returns the free pages.
    """
    import gc

    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl, macOS): the allocator keeps what it keeps
        pass
