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
    import dataclasses

    from pgpt.export.pipeline import ExportOptions, export_model
    from pgpt.runtime.settings import Settings
    from pgpt.runtime.versions import list_versions

    cache = tmp_path / "cache"
    q4 = write_gguf(tmp_path / "g-llama-Q4_0.gguf", GGUFModel("llama"), vocabulary)
    q8 = write_gguf(tmp_path / "g-llama-Q8_0.gguf", GGUFModel("llama", default_type="Q8_0"), vocabulary)

    def export(path: Path, keep: int) -> tuple[str, str]:
        lines: list[str] = []
        info = export_model(ExportOptions(source=str(path), model_cache=cache, dtype="fp32", prefill="none",
                                          keep_versions=keep), progress=lambda stage, text: lines.append(text))
        assert info.name == "g-llama-fp32"
        return info.path.name, "\n".join(lines)

    first, _ = export(q4, 3)
    second, said = export(q8, 3)
    assert (f"g-llama-fp32 already had version {first} (from g-llama-Q4_0.gguf); version {second} (from "
            "g-llama-Q8_0.gguf) is now active: --name keeps both, pgpt-tui models --rollback g-llama-fp32 "
            "goes back") in said
    settings = dataclasses.replace(Settings.from_env(), model_cache=cache)
    assert [v.summary()["source"] for v in list_versions(settings, "g-llama-fp32")] == ["g-llama-Q8_0.gguf",
                                                                                        "g-llama-Q4_0.gguf"]
    other = write_gguf(tmp_path / "g-llama.Q4_0.gguf", GGUFModel("llama", seed=1), vocabulary)
    third, said = export(other, 1)  # the newest, active: both others go
    assert (f"already had version {second} (from g-llama-Q8_0.gguf); version {third} (from g-llama.Q4_0.gguf) "
            "is now active: --name keeps both\n") in said  # no rollback: that version is removed
    for gone in (first, second):
        assert f"removed version {gone} (kept the newest 1: --keep-versions)" in said
    assert [v.version for v in list_versions(settings, "g-llama-fp32")] == [third]


def test_a_gguf_whose_tokenizer_cannot_be_built_is_a_source_error(vocabulary: Vocabulary, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A SentencePiece vocabulary without its scores: "Unexpected error: TypeError: argument 'vocab':
    must be real number, not NoneType. This is a bug in pgpt" (t62). The file is at fault, and said so."""
    import gguf

    from support import assert_refused, export_cli

    monkeypatch.setattr(gguf.GGUFWriter, "add_token_scores", lambda self, scores: None)
    path = write_gguf(tmp_path / "no-scores.gguf", GGUFModel("gemma3", layers=1), vocabulary)
    result = export_cli(str(path), "--dtype", "int8", env={"PGPT_MODEL_CACHE": str(tmp_path / "cache"),
                                                           "PGPT_HOME": str(tmp_path / "home")})
    assert_refused(result, "Cannot use this model source", f"transformers cannot build a tokenizer from {path}",
                   "convert_hf_to_gguf.py")
    assert "bug in pgpt" not in result.stderr
