"""The parity benchmark's own code path on a small GGUF: transformers reads the file, pgpt exports it."""

from __future__ import annotations

from pathlib import Path

from pgpt.bench import parity
from pgpt.bench.synthetic_gguf import GGUFModel, train_vocabulary, write_gguf


def test_fp32_export_of_a_gguf_is_pytorchs_model_and_the_table_says_so(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "qwen3.gguf", GGUFModel("qwen3", heads=2, kv_heads=1, head_dim=128, std=0.06),
                      train_vocabulary())
    results = parity.run(path, ["fp32"], tokens=48, new_tokens=8, progress=False)
    row = results["rows"]["fp32"]
    assert row["top1_agreement"] == 1.0 and row["relative_diff"] < 1e-5
    assert [g["equal"] for g in row["greedy"]] == [8] * len(parity.PROMPTS)
    assert row["export_quality"]["top1_agreement"] == 1.0
    lines = parity.table(results).splitlines()
    assert lines[-1].startswith("| fp32 |") and "| 100.0% | 8/8, 8/8, 8/8 | - |" in lines[-1]


def test_a_missing_file_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert parity.main([str(tmp_path / "none.gguf")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "is not a file" in err and len(err.strip().splitlines()) == 1
