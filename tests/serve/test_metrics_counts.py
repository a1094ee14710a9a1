"""pgpt-serve's /metrics as an operator reads it: cache hits, and each answer's tokens and TTFT counted
once (user test t74)."""

from __future__ import annotations

from serve_support import RunningServer


def test_the_same_question_again_comes_from_the_cache_and_says_so(server: RunningServer) -> None:
    client = server.openai()
    messages = [{"role": "user", "content": "Name a colour."}]
    before = server.metric("pgpt:cache_hits_total", 'cache="answer"')
    first = client.chat.completions.create(model="default", messages=messages, max_tokens=6)
    generated = server.metric("pgpt:generation_tokens_total")
    second = client.chat.completions.create(model="default", messages=messages, max_tokens=6)
    assert first.model_extra["cached"] is False and second.model_extra["cached"] is True
    assert second.choices[0].message.content == first.choices[0].message.content
    assert second.choices[0].finish_reason == first.choices[0].finish_reason
    assert server.metric("pgpt:cache_hits_total", 'cache="answer"') == before + 1
    # every counter has a sample from the start (dashboards showed "no data" instead of 0, t46)
    with server.http() as http:
        samples = http.get("/metrics").text
    for name in ('pgpt:cache_hits_total{cache="documents"}', "pgpt:model_unloads_total{model=",
                 "pgpt:model_load_failures_total{model=", "pgpt:model_switches_total{model="):
        assert f"\n{name}" in samples, name
    # usage said 0 completion tokens for a cached answer; the metric counts only what the model wrote
    assert second.usage == first.usage and second.usage.completion_tokens > 0
    assert server.metric("pgpt:generation_tokens_total") == generated


def test_the_token_counters_and_ttft_count_each_answer_once(server: RunningServer) -> None:
    """Every plain chat answer that ended normally was counted twice: 20 tokens written read +40, and
    the TTFT histogram had twice the latency histogram's samples (t74)."""
    def counters() -> tuple[float, float, float]:
        return (server.metric("pgpt:prompt_tokens_total"), server.metric("pgpt:generation_tokens_total"),
                server.metric("pgpt:time_to_first_token_seconds_count"))

    client = server.openai()
    before = counters()
    answer = client.chat.completions.create(model="default", max_tokens=7,
                                            messages=[{"role": "user", "content": "Count the ferries, once."}])
    after = counters()
    assert not answer.model_extra["cached"]
    assert (after[0] - before[0], after[1] - before[1], after[2] - before[2]) == (
        answer.usage.prompt_tokens, answer.usage.completion_tokens, 1)
    chunks = list(client.chat.completions.create(
        model="default", max_tokens=7, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Count the harbours, once."}]))
    usage = chunks[-1].usage
    streamed = counters()
    assert (streamed[0] - after[0], streamed[1] - after[1], streamed[2] - after[2]) == (
        usage.prompt_tokens, usage.completion_tokens, 1)
