"""The model cache names and versions an export writes, and what it says about them."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgpt.bench.synthetic_gguf import GGUFModel, Vocabulary, train_vocabulary, write_gguf


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return train_vocabulary()


def test_a_name_derived_from_a_file_name_is_a_valid_model_name(vocabulary: Vocabulary, tmp_path: Path) -> None:
    """"g-llama tiny é.gguf" became the cache name "g-llama tiny é-int8", which --name and the server
    refuse: a derived name follows --name's rule."""
    from pgpt.export.pipeline import ExportOptions, export_model
    from pgpt.runtime.models import is_plain_name

    path = write_gguf(tmp_path / "g-llama tiny é.Q4_0.gguf", GGUFModel("llama"), vocabulary)
    info = export_model(ExportOptions(source=str(path), model_cache=tmp_path / "cache", dtype="int8",
                                      prefill="none"))
    assert info.name == "g-llama-tiny-e-int8" and is_plain_name(info.name)
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")] == [info.name]


@pytest.mark.parametrize(("text", "name"), [("g-llama tiny é", "g-llama-tiny-e"), ("Ünï  code__x", "Uni-code_x"),
                                            ("..up", "up"), ("日本", "model"), ("qwen2.5-1.5b", "qwen2.5-1.5b")])
def test_plain_name_folds_what_the_name_rule_refuses(text: str, name: str) -> None:
    from pgpt.runtime.models import is_plain_name, plain_name

    assert plain_name(text) == name and is_plain_name(name)
