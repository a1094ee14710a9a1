"""`pgpt-tui doctor`: what this machine offers pgpt (ONNX Runtime, GPU, threads, folders)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from pgpt.runtime.settings import Settings


def run_checks(settings: Settings) -> dict[str, dict[str, Any]]:
    """Collect the checks as sections of key -> value (printable and JSON-friendly)."""
    import onnxruntime as ort

    from pgpt.runtime.models import list_models
    from pgpt.runtime.session import cuda_unavailable_reason, ort_conflict, physical_cores

    cuda_reason = cuda_unavailable_reason()
    return {
        "onnxruntime": {
            "version": ort.__version__,
            "build": ort.get_device(),
            "providers": ", ".join(ort.get_available_providers()),
            "package conflict": ort_conflict() or "none",
        },
        "gpu": {
            "cuda usable": "yes" if not cuda_reason else f"no: {cuda_reason}",
            "provider setting": settings.provider,
        },
        "cpu": {"physical cores": physical_cores(), "threads used": settings.threads or physical_cores()},
        "folders": {
            "home (PGPT_HOME)": folder_state(settings.home),
            "model cache (PGPT_MODEL_CACHE)": folder_state(settings.model_cache),
            "exported models": len(list_models(settings)),
        },
    }


def folder_state(path: Path) -> str:
    """'<path>: writable, N GB free' or what is wrong with it."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    writable = os.access(probe, os.W_OK)
    free = shutil.disk_usage(probe).free / 1e9
    exists = "" if path.exists() else " (not created yet)"
    return f"{path}{exists}: {'writable' if writable else 'NOT writable'}, {free:.1f} GB free"
