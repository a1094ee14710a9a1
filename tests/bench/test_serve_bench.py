"""`pgpt-tui bench-serve`: a real (short) run against pgpt-serve, and the table's percentiles."""

from __future__ import annotations

import importlib.util
import shutil

import pytest

from pgpt.bench.serve import LLAMA_NOT_FOUND, ServeBenchOptions, _percentile, format_results, run_serve_bench
from pgpt.runtime.settings import Settings


def test_percentiles_are_nearest_rank() -> None:
    assert _percentile([], 95) == 0.0
    assert _percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert _percentile([float(n) for n in range(1, 21)], 95) == 19.0  # one of the requests, not a blend
    assert _percentile([float(n) for n in range(1, 21)], 100) == 20.0


def test_an_unknown_engine_is_refused_with_the_known_ones() -> None:
    from pgpt.runtime.errors import ConfigError

    with pytest.raises(ConfigError, match="Unknown engine vllm") as caught:
        ServeBenchOptions(engines=("pgpt", "vllm"))
    assert caught.value.hint == "Choose from pgpt, llama.cpp."


@pytest.mark.slow
def test_a_short_run_against_a_real_server(settings: Settings) -> None:
    options = ServeBenchOptions(clients=(1, 2), rounds=1, new_tokens=8, parallel=2)
    results = run_serve_bench(settings, options, progress=lambda _: None)
    rows = {(row["engine"], row.get("clients")): row for row in results["rows"]}
    one, two = rows[("pgpt", 1)], rows[("pgpt", 2)]
    assert (one["chats"], two["chats"], one["failed"], two["failed"]) == (1, 2, 0, 0)
    assert one["docs"] == 1 and two["docs"] == 2 and one["docs_ttft_p50_s"] > 0
    assert one["ratio_to_1"] == 1.0 and two["chat_tok_s"] > 0
    assert 0 < two["chat_ttft_p50_s"] <= two["chat_ttft_p95_s"] <= two["chat_total_p95_s"]
    llama = rows.get(("llama.cpp", None)) or rows.get(("llama.cpp", 1))
    if not shutil.which("llama-server") and importlib.util.find_spec("llama_cpp") is None:
        assert llama == {"engine": "llama.cpp", "skipped": LLAMA_NOT_FOUND}
    table = format_results(results)
    assert table.splitlines()[1].startswith("| engine | clients | chats | chat tok/s | x one client")
    assert "| pgpt | 2 | 2 |" in table
