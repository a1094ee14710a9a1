"""The local model registry: exported models in the shared model cache, and the active one."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgpt.runtime.errors import ModelIntegrityError, ModelNotFoundError
from pgpt.runtime.manifest import MANIFEST, read_manifest
from pgpt.runtime.settings import Settings, ensure_private_dir

DEFAULT_LLM = "smollm2-135m-instruct"
DEFAULT_EMBEDDER = "all-minilm-l6-v2-fp32"
# Preference among exported dtypes of the embedded default when no model was chosen: int8 first
# (with its prefill graph: 2x fp32's decode, TTFT 0.94 s at 1000 tokens, `ask` 2.7 s vs 5.1 s,
# top-1 agreement 95-97%), then fp32 and the rest.
DEFAULT_CHAT_DTYPES = ("int8", "fp32", "fp16", "int4")


@dataclass(frozen=True)
class ModelInfo:
    """One exported model folder and its manifest."""

    name: str
    path: Path
    manifest: dict[str, Any]

    @property
    def kind(self) -> str:
        """``llm`` or ``embedding``."""
        return str(self.manifest.get("kind", "llm"))

    @property
    def dtype(self) -> str:
        """Weight type: fp32, fp16, int8 or int4."""
        return str(self.manifest.get("dtype", "?"))

    @property
    def size_bytes(self) -> int:
        """Total size of the model's files."""
        return sum(int(f["size"]) for f in self.manifest["files"])

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly description for `pgpt-tui models --json`."""
        source = self.manifest.get("source", {})
        return {
            "name": self.name,
            "kind": self.kind,
            "dtype": self.dtype,
            "size_mb": round(self.size_bytes / 1e6, 1),
            "quality": self.manifest.get("quality", {}),
            "source": source.get("repo_id") or source.get("path"),
            "path": str(self.path),
        }


def list_models(settings: Settings) -> list[ModelInfo]:
    """Every folder of the model cache that has a readable manifest, sorted by name."""
    root = settings.model_cache
    if not root.is_dir():
        return []
    found = []
    for child in sorted(root.iterdir()):
        if child.is_dir() and (child / MANIFEST).is_file() and not child.name.startswith("."):
            try:
                found.append(ModelInfo(child.name, child, read_manifest(child)))
            except ModelIntegrityError:
                continue  # a broken folder is reported by `doctor`, never used
    return found


def find_model(settings: Settings, name: str) -> ModelInfo:
    """The exported model called ``name`` (a folder name or a path to a model folder)."""
    candidate = Path(name).expanduser()
    folder = candidate if candidate.is_dir() else settings.model_cache / name
    if not (folder / MANIFEST).is_file():
        known = ", ".join(m.name for m in list_models(settings)) or "none yet"
        raise ModelNotFoundError(f"There is no exported model called {name!r} (exported: {known}).")
    return ModelInfo(folder.name, folder, read_manifest(folder))


def active_chat_model(settings: Settings) -> ModelInfo:
    """The model chat uses: PGPT_MODEL, else the configured one, else the best default."""
    name = settings.model or read_config(settings).get("active_model", "")
    if name:
        return find_model(settings, name)
    models = {m.name: m for m in list_models(settings) if m.kind == "llm"}
    for dtype in DEFAULT_CHAT_DTYPES:
        if f"{DEFAULT_LLM}-{dtype}" in models:
            return models[f"{DEFAULT_LLM}-{dtype}"]
    if models:
        return next(iter(models.values()))
    raise ModelNotFoundError("No chat model has been exported yet.")


def set_active_model(settings: Settings, name: str) -> ModelInfo:
    """Make ``name`` the chat model of this home and return it."""
    model = find_model(settings, name)
    config = read_config(settings)
    config["active_model"] = model.name
    write_config(settings, config)
    return model


def read_config(settings: Settings) -> dict[str, Any]:
    """The user's choices (JSON); an unreadable file counts as empty."""
    try:
        data = json.loads(settings.config_file.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def write_config(settings: Settings, config: dict[str, Any]) -> None:
    """Write the user's choices atomically (temporary file + rename)."""
    ensure_private_dir(settings.home)
    tmp = settings.config_file.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(config, indent=2), encoding="utf-8")
    os.replace(tmp, settings.config_file)
