"""`python -m pgpt.bench.updates` on a small corpus of its shape: both cases, both ways, and the
counts that show what the kept vectors save."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgpt.bench import updates
from pgpt.runtime.settings import Settings


def test_both_cases_run_both_ways_and_reuse_embeds_only_what_changed(default_models: Settings, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from pgpt.runtime.documents import chunk_vectors

    corpus = tmp_path / "manuals"
    corpus.mkdir()
    for name in updates.EDITED:
        body = "\n\n".join(f"Section {n} of {name} explains the harbour's rule number {n}. It applies every day."
                           for n in range(30))
        (corpus / name).write_text(f"<html><body><p>{body}</p></body></html>" if name.endswith(".html") else body)
    monkeypatch.setattr(updates, "MANUALS", corpus)
    monkeypatch.setattr(chunk_vectors, "EMBED_BATCH", 4)  # a "large" file of a few dozen chunks
    results = updates.run(default_models.model_cache, repeat=3, stop_at=0.5)
    edit, stop = results["edit"], results["stop"]
    assert edit["reuse"]["updated_chunks"] == edit["again"]["updated_chunks"] == edit["again"]["embedded_again"]
    assert 0 < edit["reuse"]["embedded_again"] < edit["again"]["embedded_again"]
    assert stop["again"]["embedded_again"] == stop["again"]["chunks"] > stop["reuse"]["embedded_again"] > 0
    assert stop["reuse"]["embedded_again"] <= stop["reuse"]["chunks"] - stop["reuse"]["stopped_after"]
