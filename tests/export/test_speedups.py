"""The export's faster GGUF reading gives the same results: the file parsed once, over a plain mmap."""

from __future__ import annotations

import pytest

from support import gguf_path


def test_gguf_file_is_parsed_once_and_loads_the_same_weights_and_vocabulary(torch_llm, default_models,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import gguf
    import torch

    from pgpt.export.causal_lm import load_model_and_tokenizer
    from pgpt.export.sources import gguf_source
    from pgpt.runtime.models import DEFAULT_LLM
    from pgpt.runtime.llm.text import load_tokenizer

    source = gguf_source(gguf_path())
    parsed: list[str] = []

    class CountingReader(gguf.GGUFReader):  # type: ignore[misc]
        def __init__(self, path, mode="r"):  # type: ignore[no-untyped-def]
            parsed.append(str(path))
            super().__init__(path, mode)

    monkeypatch.setattr(gguf, "GGUFReader", CountingReader)
    model, tokenizer = load_model_and_tokenizer(source, trust_remote_code=False)
    assert len(parsed) == 1  # config, weights and tokenizer share one reader (transformers made 4)
    assert gguf.GGUFReader is CountingReader  # the patch is undone
    expected = torch_llm.state_dict()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    exported = load_tokenizer(default_models.model_cache / f"{DEFAULT_LLM}-int8")
    text = "Licensed under the Apache License, Version 2.0 (the \"License\"); café 東京"
    assert tokenizer.backend_tokenizer.encode(text).ids == exported.encode(text).ids
