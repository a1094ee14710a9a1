"""The Mistral-7B-shaped int4 benchmark's pieces at a tiny shape: padded vocabulary, disk refusal, a whole run."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgpt.bench.synthetic_7b import TYPES, mistral_7b, padded_vocabulary, run
from pgpt.bench.synthetic_gguf import GGUFModel, train_vocabulary, write_gguf
from support import small_disk

TINY = GGUFModel("llama", layers=2, hidden=64, heads=4, kv_heads=2, head_dim=16, intermediate=128, context=32768,
                 rope_base=1e6, eps=1e-5, types=dict(TYPES))


def test_the_padded_vocabulary_tokenizes_as_the_trained_one(tmp_path: Path) -> None:
    """transformers' GGUF tokenizer (what pgpt-export reads) has every padding token and never
    produces one: the quality text gets the same ids as with the unpadded vocabulary."""
    from transformers import AutoTokenizer

    from pgpt.export.quality import QUALITY_TEXT

    text = QUALITY_TEXT.read_text(encoding="utf-8")[:3000]
    ids = {}
    for size in (0, 600):
        vocabulary = padded_vocabulary(size) if size else train_vocabulary()
        path = write_gguf(tmp_path / f"v{size}.gguf", TINY, vocabulary)
        tokenizer = AutoTokenizer.from_pretrained(str(tmp_path), gguf_file=path.name)
        assert len(tokenizer) == len(vocabulary.tokens)
        ids[size] = tokenizer(text)["input_ids"]
        assert tokenizer.convert_tokens_to_ids("<|im_end|>") == vocabulary.special["<|im_end|>"]
    trained = len(train_vocabulary().tokens)
    assert len(tokenizer) == 600 and tokenizer.convert_ids_to_tokens(599) == f"<unused_{599 - trained}>"
    assert ids[600] == ids[0] and max(ids[600]) < trained


def test_a_disk_too_small_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with small_disk(tmp_path / "small", 64) as folder:
        with pytest.raises(OSError, match=r"needs about 15\.3 GB free .* only 0\.1 GB are free"):
            run(folder, mistral_7b(), 32000)
        assert list(folder.iterdir()) == []


@pytest.mark.slow
def test_a_tiny_run_exports_to_int4_reports_and_cleans_up(tmp_path: Path) -> None:
    report = run(tmp_path, TINY, 600)
    export = report["export"]
    assert export["exit_code"] == 0, export.get("error")
    assert report["gguf"]["bytes"] > 0 and export["peak_rss_gb"] > 0.1
    assert {"load", "export", "validate"} <= set(export["stages_s"])
    # 2 layers x 7 weight matrices (q, k, v, o, gate, up, down) as their Q4_0 blocks, lm_head its Q8_0
    assert export["exact_blocks"] == {"q4_0": 14, "q8_0": 1} and export["requantized"] == 0
    # embedding and output have the padded 600 x 64 shape
    assert export["parameters"] == 2 * 600 * 64 + 2 * (2 * 64 * 64 + 2 * 32 * 64 + 3 * 64 * 128 + 2 * 64) + 64
    assert 0 < export["files_mb"] <= export["peak_disk_mb"] and export["quality"]["positions"] > 1000
    assert 0 < export["quality"]["top1_agreement"] <= 1
    assert set(report["disk_free_gb"]) == {"before", "after_gguf", "after_export", "after_cleanup"}
    # the GGUF and the model cache are gone; /usr/bin/time's report and the export's log stay
    assert sorted(path.name for path in tmp_path.iterdir()) == ["home", "time-v.txt"]
