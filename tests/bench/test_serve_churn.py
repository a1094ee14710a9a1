"""`python -m pgpt.bench.serve_churn` on a real pgpt-serve: its rounds run and its samples are the server's."""

from __future__ import annotations

from pgpt.bench.serve_churn import POLICIES, run_policy


def test_a_short_churn_samples_the_server(settings) -> None:  # type: ignore[no-untyped-def]
    result = run_policy("each upload", rounds=4, warmup=1, model_cache=settings.model_cache)
    assert result["policy"] == "each upload" and result["optimize_fragments"] == POLICIES["each upload"] == 1
    # a loaded model and embedder: hundreds of MB, not this test process's own few
    assert result["rss_after_warmup_mb"] > 200 and result["rss_end_mb"] > 200
    assert result["fds_after_warmup"] > 3 and result["round_median_s"] > 0
