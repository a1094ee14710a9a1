"""Prometheus metrics of one server, in its own registry (no process-global state).

Names follow vLLM's (``vllm:num_requests_running`` -> ``pgpt:num_requests_running``, the TTFT and
end-to-end histograms, prompt and generation token counters) and llama.cpp's where vLLM has none.
"""

from __future__ import annotations

from typing import Any

# TTFT on a 2-core CPU runs from tens of ms (cache hits, short prompts) to seconds (1000 tokens).
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)


class ServerMetrics:
    """The counters, gauges and histograms of one app, and their text exposition."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter("pgpt:http_requests", "HTTP requests by route, method and status",
                                     ["route", "method", "status"], registry=r)
        self.running = Gauge("pgpt:num_requests_running", "Sequences being generated now", registry=r)
        self.waiting = Gauge("pgpt:num_requests_waiting", "Requests waiting for a generation slot", registry=r)
        self.rejected = Counter("pgpt:requests_rejected", "Requests refused with 503 server_busy: a queue (answers, "
                                "uploads, embeddings) was full, or every loaded model was busy at max_loaded", registry=r)
        self.ttft = Histogram("pgpt:time_to_first_token_seconds", "Time to the first answer token",
                              ["model"], buckets=TTFT_BUCKETS, registry=r)
        self.latency = Histogram("pgpt:e2e_request_latency_seconds", "Whole generation requests, start to end",
                                 ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.prompt_tokens = Counter("pgpt:prompt_tokens", "Prompt tokens read", ["model"], registry=r)
        self.generation_tokens = Counter("pgpt:generation_tokens", "Tokens generated", ["model"], registry=r)
        self.cache_hits = Counter("pgpt:cache_hits", "Answers served from a cache", ["cache"], registry=r)
        for cache in ("answer", "documents"):  # a sample from the start: a dashboard read "no data", not 0
            self.cache_hits.labels(cache)
        self.model_loads = Counter("pgpt:model_loads", "Models loaded", ["model"], registry=r)
        self.model_unloads = Counter("pgpt:model_unloads", "Models unloaded", ["model"], registry=r)
        self.model_load_failures = Counter("pgpt:model_load_failures", "Model loads that failed", ["model"],
                                           registry=r)
        self.model_switches = Counter("pgpt:model_switches", "Hot swaps to another version", ["model"], registry=r)
        self.loaded = Gauge("pgpt:models_loaded", "Chat model versions in memory", registry=r)
        # uploads being indexed and embedding requests: their own queues (serve/limits.py)
        self.jobs_running = Gauge("pgpt:jobs_running", "Uploads or embedding requests being worked on", ["kind"],
                                  registry=r)
        self.jobs_waiting = Gauge("pgpt:jobs_waiting", "Uploads or embedding requests waiting for their turn",
                                  ["kind"], registry=r)
        for kind in ("uploads", "embeddings"):
            self.jobs_running.labels(kind)
            self.jobs_waiting.labels(kind)
        # llama.cpp's n_busy_slots_per_decode: how full the batched decode steps were on average
        self.busy_slots = Gauge("pgpt:busy_slots_per_decode", "Mean sequences per batched decode step", registry=r)

    def observe_generation(self, model: str, timings: dict[str, Any], cached: bool, cache: str) -> None:
        """Count one finished answer: its tokens, TTFT, duration and whether a cache served it."""
        if cached:  # its usage counts the answer's tokens, but the model read and wrote none
            self.cache_hits.labels(cache).inc()
        else:
            self.prompt_tokens.labels(model).inc(float(timings.get("prompt_tokens", 0) or 0))
            self.generation_tokens.labels(model).inc(float(timings.get("new_tokens", 0) or 0))
        if timings.get("total_s") is not None:
            self.latency.labels(model).observe(float(timings["total_s"]))
        if not cached and timings.get("new_tokens"):
            self.ttft.labels(model).observe(float(timings.get("ttft_s", 0.0)))

    def exposition(self) -> tuple[bytes, str]:
        """The text format Prometheus scrapes, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
