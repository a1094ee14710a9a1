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


def test_a_name_taken_over_by_another_file_and_each_removed_version_are_said(vocabulary: Vocabulary,
                                                                             tmp_path: Path) -> None:
    """X-Q4_0.gguf and X-Q8_0.gguf derive one name: the second replaced the active model with only
    "wrote ..."; and versions beyond --keep-versions were deleted without a word."""
    from pgpt.export.pipeline import ExportOptions, export_model
    from pgpt.runtime.versions import list_versions, versions_folder

    lines: list[str] = []
    cache = tmp_path / "cache"
    first = write_gguf(tmp_path / "g-llama-Q4_0.gguf", GGUFModel("llama"), vocabulary)
    second = write_gguf(tmp_path / "g-llama-Q8_0.gguf", GGUFModel("llama", default_type="Q8_0"), vocabulary)
    old = export_model(ExportOptions(source=str(first), model_cache=cache, dtype="fp32", prefill="none"))
    new = export_model(ExportOptions(source=str(second), model_cache=cache, dtype="fp32", prefill="none",
                                     keep_versions=1), progress=lambda stage, text: lines.append(text))
    said = "\n".join(lines)
    assert old.name == new.name == "g-llama-fp32"
    old_id, new_id = old.path.name, new.path.name
    assert (f"g-llama-fp32 already had version {old_id} (from g-llama-Q4_0.gguf); version {new_id} (from "
            f"g-llama-Q8_0.gguf) is now active: --name keeps both, pgpt-tui models --rollback g-llama-fp32 "
            "goes back") in said
    assert f"removed version {old_id} (kept the newest 1: --keep-versions)" in said
    assert [p.name for p in versions_folder(cache, new.name).iterdir() if p.is_dir()] == [new_id]
    import dataclasses

    from pgpt.runtime.settings import Settings

    settings = dataclasses.replace(Settings.from_env(), model_cache=cache)
    assert [v.summary()["source"] for v in list_versions(settings, new.name)] == ["g-llama-Q8_0.gguf"]
