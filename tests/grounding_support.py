"""A Grounder over given source sentences with the real embedder, for the grounding tests."""

from __future__ import annotations

from typing import Any

from pgpt.runtime.documents.grounding import Grounder, SourceSentence


def grounder_over(embedder: Any, question: str, sentences: list[SourceSentence]) -> Grounder:
    """The check of ``question``'s answers against ``sentences``, embedded by ``embedder``."""
    return Grounder(question, embedder.embed([question])[0], sentences, embedder.embed([s.text for s in sentences]),
                    embedder.embed)
