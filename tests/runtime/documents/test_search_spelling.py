"""Full-text search across spellings that LanceDB's index does not fold on its own."""

from __future__ import annotations

from pathlib import Path

from pgpt.runtime.documents.ingest import ingest, open_store
from pgpt.runtime.documents.retrieval import search
from pgpt.runtime.settings import Settings


def test_german_sharp_s_and_ss_find_each_other(settings: Settings, embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """ "Strasse" ranked a Greek file above "Die Straße ..." (only the vector leg found it), while
    "Francois" found "François": the index stems before it folds ß to ss (t50)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "deutsch.txt").write_text("Das Rechenzentrum liegt an der großen Straße nach Düsseldorf.\n")
    (docs / "swiss.txt").write_text("Die Schlüssel liegen im Büro, gleich an der Gasse.\n")
    (docs / "other.txt").write_text("The quarterly report covers revenue, staffing and the office move.\n")
    ingest(settings, [docs], embedder)
    store = open_store(settings, embedder)
    for query, expected in [("Strasse", "deutsch.txt"), ("STRASSE", "deutsch.txt"), ("Straße", "deutsch.txt"),
                            ("Gaße", "swiss.txt")]:
        hits = search(store, embedder, query, k=3)
        assert Path(hits[0].source).name == expected, (query, [(h.source, h.score) for h in hits])
        assert hits[0].score > 0.55, (query, hits[0].score)  # the vector leg alone gives at most 0.5
