"""Model files that cannot be exported as they are: each refusal is one paragraph with a next step."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pgpt.bench.synthetic_gguf import GGUFModel, Vocabulary, train_vocabulary, write_gguf
from support import assert_refused, export_cli, hf_folder


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return train_vocabulary()


def test_tensors_that_do_not_fit_the_architecture_are_named(vocabulary: Vocabulary, tmp_path: Path) -> None:
    """A falcon header over llama tensors (a mislabelled file) ended in "This is a bug in pgpt"."""
    path = write_gguf(tmp_path / "mislabelled.gguf", GGUFModel("falcon"), vocabulary)
    result = export_cli(str(path), "--dtype", "int8", "-o", str(tmp_path / "out"))
    assert_refused(result, "Tensors do not fit the architecture", "mislabelled.gguf", "FalconLinear weight of",
                   "damaged or mislabelled")
    assert "bug in pgpt" not in result.stderr and not (tmp_path / "out").exists()


def test_qwen3_heads_of_another_width_than_128_are_read_from_the_file(vocabulary: Vocabulary, tmp_path: Path) -> None:
    """transformers' GGUF config ignored qwen3.attention.key_length (head_dim 128 assumed): the prefill
    calibration failed with a size mismatch, and the fused graph without it did not load."""
    from pgpt.export.pipeline import ExportOptions, export_model

    path = write_gguf(tmp_path / "q3.gguf", GGUFModel("qwen3", head_dim=32, std=0.06), vocabulary)
    info = export_model(ExportOptions(source=str(path), output=tmp_path / "out", dtype="int8", prefill="int8"))
    assert info.manifest["quality"]["top1_agreement"] >= 0.9 and "prefill" in info.manifest


def test_an_unknown_gguf_architecture_names_the_ones_that_are_read(vocabulary: Vocabulary, tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "x.gguf", GGUFModel("xyzzy"), vocabulary)
    result = export_cli(str(path), "--dtype", "int8", "-o", str(tmp_path / "out"))
    assert_refused(result, "Unsupported model", "architecture xyzzy", "transformers reads GGUF files of these "
                   "architectures: llama,", "Qwen3")


def test_an_architecture_without_any_export_drops_the_empty_task_list(tmp_path: Path) -> None:
    folder = hf_folder(tmp_path, {"model_type": "foobar", "architectures": ["FoobarForCausalLM"]},
                       {"model.safetensors": json.dumps({}).encode()})
    result = export_cli(str(folder), "-o", str(tmp_path / "out"))
    assert_refused(result, "Unsupported model", "'foobar'")
    assert "supports it for" not in result.stderr


def test_an_empty_gguf_is_called_empty(tmp_path: Path) -> None:
    """It said "not a GGUF file (bad magic bytes)"; an interrupted copy is the likely cause."""
    empty = tmp_path / "cut.gguf"
    empty.touch()
    assert_refused(export_cli(str(empty), "--dtype", "int8", "-o", str(tmp_path / "out")),
                   "Cannot use this model source", "is empty (0 bytes)", "download or copy it again")


def test_a_gguf_file_without_the_suffix_is_exported_and_listed(vocabulary: Vocabulary, tmp_path: Path) -> None:
    """An Ollama blob (sha256-..., no .gguf) was "neither a model folder, a .gguf file, nor a repo id".
    It is exported under its header's general.name; the tiny export is listed as <1MB, not 0MB."""
    import os
    import subprocess
    import sys

    blob = write_gguf(tmp_path / "sha256-0f1e2d3c", GGUFModel("llama"), vocabulary)
    env = dict(os.environ, PGPT_HOME=str(tmp_path / "home"), PGPT_MODEL_CACHE=str(tmp_path / "cache"))
    result = export_cli(str(blob), env=env)  # no --dtype: fp32, with the note a GGUF gets
    assert result.returncode == 0, result.stderr[-2000:]
    assert "note: no --dtype, so this exports fp32 weights" in result.stderr
    assert (tmp_path / "cache" / "synthetic-llama-fp32" / "manifest.json").is_file()
    listing = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", "models"], capture_output=True, text=True,
                             env=env, timeout=120).stdout
    row = next(line for line in listing.splitlines() if "synthetic-llama-fp32" in line)
    assert " <1MB " in row and " 0MB " not in row


def test_what_killed_exports_left_is_named_by_doctor_and_swept_by_the_next_export(tmp_path: Path) -> None:
    """A kill -9 (or the OOM killer) mid-export leaves `.NAME.tmp-PID`: GBs at 1.5B. Only an export
    of the same name removed it, and `doctor` did not mention it (t51)."""
    import subprocess

    from pgpt.export.pipeline import remove_stale_temporaries
    from pgpt.runtime.doctor import run_checks
    from pgpt.runtime.settings import Settings

    cache = tmp_path / "models"
    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid is free now: the folder's process is gone
    killed = cache / f".qwen-int4.tmp-{dead.pid}"
    (killed / "out").mkdir(parents=True)
    (killed / "out" / "model.onnx.data").write_bytes(b"\0" * 2_000_000)
    running = cache / f".other-int8.tmp-{os.getpid()}"  # an export still running: never touched
    running.mkdir()
    folders = run_checks(Settings(home=tmp_path / "home", model_cache=cache), network=False)["folders"]
    said = folders["left by killed exports"]
    assert said.startswith("1 folder, 2.0 MB: ") and str(killed) in said and str(running) not in said
    assert "the next pgpt-export removes them" in said
    remove_stale_temporaries(cache / "smollm2-int8", cache)  # an export of another name, into the cache
    assert not killed.exists() and running.exists()
    elsewhere = tmp_path / "out"  # a folder given with -o may hold anything: only the name's own leftovers go
    other = elsewhere / f".mine.tmp-{dead.pid}"
    other.mkdir(parents=True)
    remove_stale_temporaries(elsewhere / "model", cache)
    assert other.exists()
