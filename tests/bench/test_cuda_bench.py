"""bench/cuda/, the GPU check run on the device tool's machine, kept working without a GPU: its
dry run on the CPU EP builds a tiny random-weight model with pgpt-export and runs every check."""

from __future__ import annotations

import json
from pathlib import Path

from pgpt.bench.cuda import main


def test_dry_run_on_the_cpu_runs_every_check(tmp_path: Path) -> None:
    code = main(["--out", str(tmp_path), "--provider", "cpu", "--small", "tiny",
                 "--stages", "environment,small_fp16,checks"])
    stages = json.loads((tmp_path / "cuda.json").read_text())["stages"]
    assert code == 0, {name: record.get("error") for name, record in stages.items()}
    assert set(stages) == {"environment", "small_fp16", "placement_small_fp16", "batch_equal_small_fp16",
                           "kv_on_device", "cuda_vs_cpu_small_fp16", "speed_small_fp16"}
    result = {name: record["result"] for name, record in stages.items()}
    assert result["placement_small_fp16"]["nodes"].keys() == {"CPUExecutionProvider"}
    assert result["batch_equal_small_fp16"]["equal"] == 8  # the CPU's batched kernels round as one stream
    assert result["kv_on_device"]["tensor_devices"] == ["cpu"] and result["kv_on_device"]["answers"] == 16
    assert result["cuda_vs_cpu_small_fp16"]["top1_agreement"] == 1.0  # both ran on the CPU here
    speed = result["speed_small_fp16"]
    assert [row["clients"] for row in speed["concurrent"]] == [1, 8] and speed["single"][0]["decode_tok_s"] > 0
