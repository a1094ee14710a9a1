"""A scheduler's limits (SchedulerConfig), what it reports (SchedulerStats), and the words of its
refusal when they are reached (busy_message)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pgpt.runtime.errors import ConfigError
from pgpt.runtime.llm.generation import PREFILL_CHUNK


@dataclass(frozen=True)
class SchedulerConfig:
    """Limits of one scheduler.

    Attributes:
        parallel: Sequences decoded together (slots of the KV buffer).
        max_queue: Requests that may wait for a slot; one more is refused at once.
        max_tokens_cap: A request's max_new_tokens is lowered to this.
        context: Tokens one sequence may hold, prompt and answer; 0 means the model's context.
        prefill_budget_s: Seconds of prompt reading a turn may take before the running
            sequences' next decode step: new prompts are read back to back up to it, so that a
            burst of requests gets its first tokens sooner, at the cost of one longer pause
            between the running streams' tokens (vLLM also puts prefills first). 0: one chunk
            a turn.
        prefill_chunk: Prompt tokens read between two decode steps. The default is the
            single-stream chunk, so a prompt's logits are those of ``LanguageModel.generate``.
        retry_after_s: Seconds a refused client is told to wait.
        reuse_prefix: A prompt that starts with at least this many of the tokens a free row still
            holds (a conversation's next turn, resent whole to a server) is read from where they
            end, as the in-process chat does; 0 turns it off. The default leaves out prompts that
            share only the chat template's first tokens.
    """

    parallel: int = 4
    max_queue: int = 16
    max_tokens_cap: int = 1024
    context: int = 0
    prefill_chunk: int = PREFILL_CHUNK
    prefill_budget_s: float = 0.3
    retry_after_s: int = 1
    reuse_prefix: int = 64

    def __post_init__(self) -> None:
        for name in ("parallel", "max_tokens_cap", "prefill_chunk", "retry_after_s"):
            if getattr(self, name) < 1:
                raise ConfigError(f"The scheduler's {name} must be at least 1 (got {getattr(self, name)}).")
        for name in ("max_queue", "context", "reuse_prefix", "prefill_budget_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"The scheduler's {name} must be 0 or more (got {getattr(self, name)}).")


@dataclass(frozen=True)
class SchedulerStats:
    """A snapshot for metrics: gauges (queued, running, prefilling) and counters since start."""

    queued: int
    running: int
    prefilling: int
    parallel: int
    max_queue: int
    decode_steps: int
    decode_rows: int  # sequences decoded, summed over steps: / decode_steps = mean batch
    tokens_generated: int
    prompt_tokens: int  # prompt tokens read
    reused_tokens: int  # prompt tokens found in a free row's keys and values instead
    finished: dict[str, int] = field(default_factory=dict)  # by finish reason
    kv_bytes: int = 0


def busy_message(held: int, parallel: int, max_queue: int) -> str:
    """What a full scheduler says (chat and documents answers alike)."""
    return (f"It holds {held} request{'' if held == 1 else 's'}, as many as it takes (parallel={parallel} "
            f"answered at once, max_queue={max_queue} waiting).")
