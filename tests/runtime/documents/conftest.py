"""What the documents tests share: the default embedder, loaded once per module."""

from __future__ import annotations

import pytest

from pgpt.runtime.settings import Settings


@pytest.fixture(scope="module")
def embedder(default_models: Settings):  # type: ignore[no-untyped-def]
    from pgpt.runtime.llm.embeddings import default_embedder

    return default_embedder(default_models)
