"""8 concurrent clients of a real pgpt-serve get the single-stream greedy answers of the default model."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from serve_support import RunningServer, start_server
from support import BATCH_PROMPTS

from pgpt.runtime.llm.generation import LanguageModel
from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.models import find_model
from pgpt.runtime.settings import Settings

MODEL = "smollm2-135m-instruct-int8"
PROMPTS = BATCH_PROMPTS
MAX_TOKENS = 40


def _first_difference_is_a_near_tie(model: LanguageModel, ids: list[int], single: list[int], answer: str) -> bool:
    """Whether the answer follows the single stream up to a token whose top two logits are within 1e-3."""
    tokenizer = model.tokenizer
    step = next(k for k in range(len(single)) if not answer.startswith(tokenizer.decode(single[:k + 1])))
    top2 = np.sort(model.forward_logits(ids + single[:step], prompt_len=len(ids))[-1])[-2:]
    return bool(top2[1] - top2[0] <= 1e-3)


def test_8_concurrent_clients_get_the_single_stream_greedy_answers(served_settings: Settings) -> None:
    model = LanguageModel(find_model(served_settings, MODEL), provider="cpu")
    prompts = [model.tokenize(model.render_prompt([{"role": "user", "content": p}])) for p in PROMPTS]
    singles = []
    for ids in prompts:
        model.release_kv()
        singles.append(list(model.generate(ids, SamplingOptions(max_new_tokens=MAX_TOKENS))))
    server: RunningServer = start_server(served_settings, "--model", MODEL, "--parallel", "8")
    try:
        client = server.openai(timeout=600)

        def ask(prompt: str) -> tuple[str, str]:
            reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": prompt}],
                                                   max_tokens=MAX_TOKENS, temperature=0.0)
            return reply.choices[0].message.content or "", reply.choices[0].finish_reason

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(ask, PROMPTS))
        exact = 0
        for ids, single, (answer, reason) in zip(prompts, singles, answers):
            expected = model.tokenizer.decode(single)
            exact += answer == expected
            assert answer == expected or _first_difference_is_a_near_tie(model, ids, single, answer)
            assert reason == ("length" if len(single) == MAX_TOKENS else "stop")
        assert exact >= 6
        assert server.metric("pgpt:busy_slots_per_decode") > 4  # the decode steps did batch them
    finally:
        server.stop()
