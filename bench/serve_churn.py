"""A server's memory and open files under upload churn: compaction after every upload against pgpt's.

A soak tester's `pgpt-serve` (t56) grew for good as documents came and went: open files of deleted
full-text indexes (fixed by reading a new version on a fresh connection) and 0.1-0.2 MB of RSS per
LanceDB `optimize`, which every upload ran at its end. This starts a real `pgpt-serve` on a fresh home
once per policy and runs the tester's rounds against it (upload a changed text, search it through
`/v1/chunks`, delete it every other round), sampling the server's RSS and open files:

- ``each upload``: the index compacted at the end of every upload (the previous release);
- ``pgpt now``: compacted once OPTIMIZE_FRAGMENTS data files or OPTIMIZE_UNINDEXED chunks piled up.

    python -m pgpt.bench.serve_churn [--rounds 300] [--warmup 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# The server process, with the policy set before it starts (the store reads the constant per upload).
_LAUNCH = ("import sys; from pgpt.runtime.documents import compaction; compaction.OPTIMIZE_FRAGMENTS = {fragments}; "
           "from pgpt.serve.cli import main; sys.exit(main(sys.argv[1:]))")
POLICIES = {"each upload": 1, "pgpt now": None}


def _sample(pid: int) -> tuple[float, int]:
    """The process's RSS in MB and its open descriptors."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return rss_kb / 1024, len(os.listdir(f"/proc/{pid}/fd"))


def run_policy(name: str, rounds: int, warmup: int, model_cache: Path) -> dict[str, Any]:
    """One fresh server under ``name``'s policy; RSS and descriptors after the warm-up and at the end."""
    import httpx

    from pgpt.bench.serve import free_port, wait_for_http
    from pgpt.runtime.documents import compaction

    fragments = POLICIES[name] or compaction.OPTIMIZE_FRAGMENTS
    with tempfile.TemporaryDirectory(prefix="pgpt-serve-churn-") as work:
        env = {**os.environ, "PGPT_HOME": str(Path(work) / "home"), "PGPT_MODEL_CACHE": str(model_cache),
               "HF_HUB_OFFLINE": "1"}
        port = free_port()
        with open(Path(work) / "server.log", "wb") as log:
            server = subprocess.Popen([sys.executable, "-c", _LAUNCH.format(fragments=fragments), "--port", str(port)],
                                      env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_http(f"http://127.0.0.1:{port}/ready", server)
            return _churn(httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300), server.pid, rounds,
                          warmup) | {"policy": name, "optimize_fragments": fragments}
        finally:
            server.terminate()
            server.wait(30)


def _churn(client: Any, pid: int, rounds: int, warmup: int) -> dict[str, Any]:
    """The tester's rounds: upload a changed text, search for it, delete it every other round."""
    times, start = [], (0.0, 0)
    for n in range(rounds):
        if n == warmup:
            start = _sample(pid)
        began = time.perf_counter()
        answer = client.post("/v1/ingest/text", json={"file_name": "churn.txt",
                                                      "text": f"Round {n}: the buoy number is {n * 7}. " * 20})
        answer.raise_for_status()
        client.post("/v1/chunks", json={"text": f"what is the buoy number in round {n}", "limit": 2}).raise_for_status()
        if n % 2:
            client.delete(f"/v1/ingest/{answer.json()['data'][0]['doc_id']}").raise_for_status()
        times.append(time.perf_counter() - began)
    end = _sample(pid)
    measured = rounds - warmup
    return {"rounds": rounds, "warmup": warmup, "rss_after_warmup_mb": round(start[0]), "rss_end_mb": round(end[0]),
            "rss_per_100_rounds_mb": round((end[0] - start[0]) * 100 / measured, 1),
            "fds_after_warmup": start[1], "fds_end": end[1], "round_median_s": round(statistics.median(times), 2)}


def main(argv: list[str] | None = None) -> None:
    """Both policies one after the other, each on its own server and home; a table (or JSON)."""
    from pgpt.runtime.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m pgpt.bench.serve_churn", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20, help="rounds before the first sample (caches filling)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    cache = Settings.from_env().model_cache
    results = [run_policy(name, args.rounds, args.warmup, cache) for name in POLICIES]
    if args.json:
        print(json.dumps(results, indent=1))
        return
    print("| compaction | rounds (after warm-up) | server RSS | growth per 100 rounds | open files | median round |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['policy']} | {r['rounds'] - r['warmup']} | "
              f"{r['rss_after_warmup_mb']} -> {r['rss_end_mb']} MB | {r['rss_per_100_rounds_mb']} MB | "
              f"{r['fds_after_warmup']} -> {r['fds_end']} | {r['round_median_s']} s |")


if __name__ == "__main__":
    main()
