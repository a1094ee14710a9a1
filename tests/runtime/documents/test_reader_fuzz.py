"""Reader fuzz: byte mutations and truncations of small valid PDF, DOCX, HTML and text files.

A fixed seed and a bounded count keep it to seconds in CI. Every mutant must end as indexed,
skipped or failed with a reason, in one ingest run that never stops or hangs; a failure called
"internal error" is a bug in pgpt's own code and fails the test.
"""

from __future__ import annotations

import dataclasses
import random
import time
from pathlib import Path

import pytest

from hostile_files import good_docx, pdf_bytes
from pgpt.runtime.documents.ingest import ingest, open_store
from pgpt.runtime.settings import Settings

SEED = 18
MUTANTS = 30  # per kind, plus TRUNCATIONS
TRUNCATIONS = 8
HTML = (b"<!doctype html><html><head><title>T</title><style>p{}</style></head><body><h1>Fuzz</h1>"
        b"<p>The html says <b>bold</b> &amp; <a href='x'>linked</a> things.</p><!-- c --><ul><li>one</li>"
        b"<li>two</li></ul><table><tr><td>a</td><td>b</td></tr></table><![CDATA[x]]></body></html>")
TEXT = "Plain text with caf\u00e9 and \u4e2d\u6587 in UTF-8.\n\nA second paragraph.\n".encode()
MARKDOWN = b"# Title\n\nSome *markdown* text.\n\n## Part\n\n- a list\n- of items\n\n```\ncode\n```\n"
RTF = (rb"{\rtf1\ansi\ansicpg1252{\fonttbl{\f0 Arial;}}{\*\generator W;}\uc1\pard Caf\'e9 \u8364? and "
       rb"{\b bold} text.\par{\pict\wmetafile8 0102}\u-10179\u-8704 ? end\par}")


def _mutate(data: bytes, rng: random.Random) -> bytes:
    """One to eight byte changes: flips, insertions, deletions or a copied run."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(out))
        kind = rng.random()
        if kind < 0.5:
            out[at] = rng.randrange(256)
        elif kind < 0.7:
            out.insert(at, rng.randrange(256))
        elif kind < 0.85 and len(out) > 1:
            del out[at]
        else:
            start = rng.randrange(len(out))
            out[at:at] = out[start:start + rng.randint(1, 32)]
    return bytes(out)


def _mutants(folder: Path) -> list[Path]:
    rng = random.Random(SEED)
    bases = {".pdf": pdf_bytes(), ".docx": good_docx("Fuzzed docx text with several words."), ".html": HTML,
             ".txt": TEXT, ".md": MARKDOWN, ".rtf": RTF}
    folder.mkdir()
    made = []
    for suffix, data in bases.items():
        for number in range(MUTANTS):
            made.append(folder / f"mutant{number:02d}{suffix}")
            made[-1].write_bytes(_mutate(data, rng))
        for number in range(TRUNCATIONS):
            made.append(folder / f"cut{number:02d}{suffix}")
            made[-1].write_bytes(data[:rng.randrange(len(data))])
    return made


def test_every_mutant_is_indexed_skipped_or_failed_with_a_reason(settings: Settings, embedder,  # type: ignore[no-untyped-def]
                                                                 tmp_path: Path) -> None:
    files = _mutants(tmp_path / "fuzz")
    limited = dataclasses.replace(settings, read_timeout_s=20)
    started = time.perf_counter()
    report = ingest(limited, [tmp_path / "fuzz"], embedder)
    seconds = time.perf_counter() - started
    outcomes: dict[str, str] = {path: "indexed" for path in report.added}
    for path, reason in report.skipped + report.failed:
        assert reason.strip(), path
        assert path not in outcomes, f"{path} reported twice"
        outcomes[path] = reason
    assert sorted(outcomes) == sorted(str(f) for f in files)  # each one ended, once
    internal = {Path(p).name: r for p, r in outcomes.items() if "internal error" in r}
    assert not internal, f"pgpt's own code failed on: {internal}"
    assert not [r for r in outcomes.values() if "took longer" in r]  # no reader came near the time limit
    assert len(report.added) > len(files) // 3  # most mutants of text formats still read
    indexed = {d.path for d in open_store(settings, embedder).documents()}
    assert indexed == set(report.added)
    print(report.failed, sorted(set(r for _, r in report.skipped)))
    print(f"{len(files)} mutants in {seconds:.1f} s: {len(report.added)} indexed, {len(report.skipped)} skipped, "
          f"{len(report.failed)} failed")
