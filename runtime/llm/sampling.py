"""Sampling options (a value object) and the choice of the next token from logits."""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pgpt.runtime.errors import ConfigError


@dataclass(frozen=True)
class SamplingOptions:
    """How to pick tokens. ``temperature == 0`` means greedy decoding.

    Attributes:
        max_new_tokens: Upper bound on generated tokens.
        temperature: Softmax temperature; 0 for greedy.
        top_p: Nucleus sampling mass (1.0 disables it).
        top_k: Keep only the k most likely tokens (0 disables it).
        repetition_penalty: >1 discourages tokens already in the context (1.0 disables it).
        seed: Seed of the sampler, for repeatable sampling: any whole number, negative or above 64
            bits too (OpenAI's API allows them); kept as ``seed % 2**64``, the range numpy takes.
            None (the default): a fresh sample each time, as OpenAI's API does without a seed.
        stop: Strings that end the answer when they appear (not included in it).
        ignore_eos: Keep generating past end-of-sequence (benchmarks need fixed lengths).
    """

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = field(default_factory=tuple)
    ignore_eos: bool = False

    def __post_init__(self) -> None:
        problems = [text for bad, text in (
            (self.max_new_tokens < 1, f"max new tokens must be at least 1 (got {self.max_new_tokens})"),
            (not (math.isfinite(self.temperature) and self.temperature >= 0),
             f"temperature must be 0 (greedy) or more (got {self.temperature})"),
            (not 0 < self.top_p <= 1, f"top-p must be above 0 and at most 1 (got {self.top_p})"),
            (self.top_k < 0, f"top-k must be 0 (off) or more (got {self.top_k})"),
            (not (math.isfinite(self.repetition_penalty) and self.repetition_penalty > 0),
             f"repetition penalty must be above 0; 1 turns it off (got {self.repetition_penalty})"),
            (self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral)),
             f"seed must be a whole number (got {self.seed!r})"),
        ) if bad]
        if problems:
            text = "; ".join(problems)
            raise ConfigError(text[0].upper() + text[1:] + ".",
                              hint="Pass a value in the allowed range (see `pgpt-tui chat --help`).")
        # numpy's generator refuses negative seeds; one mapping keeps every seed repeatable, and
        # -1 and 2**64 - 1 (the same generator) share their answer-cache entries.
        if self.seed is not None:
            object.__setattr__(self, "seed", int(self.seed) % 2**64)

    @property
    def cacheable(self) -> bool:
        """Whether the same prompt must give the same answer (greedy, or sampled with a seed), so
        that an answer cache may answer it: a sampled answer without a seed is drawn afresh."""
        return self.temperature == 0 or self.seed is not None

    def as_key(self) -> dict[str, Any]:
        """The parameters as plain data, for cache keys."""
        data = asdict(self)
        data["stop"] = list(self.stop)
        return data


class TokenPicker:
    """Applies the sampling options to one row of logits at a time."""

    def __init__(self, options: SamplingOptions) -> None:
        self.options = options
        self._rng = np.random.default_rng(options.seed)

    def pick(self, logits: np.ndarray, seen: np.ndarray | None = None) -> int:
        """Choose the next token id from a 1-D logits row."""
        opts = self.options
        if opts.repetition_penalty != 1.0 and seen is not None and seen.size:
            logits = logits.astype(np.float32, copy=True)
            picked = logits[seen]
            logits[seen] = np.where(
                picked > 0, picked / opts.repetition_penalty, picked * opts.repetition_penalty
            )
        if opts.temperature <= 0:
            return int(np.argmax(logits))
        scores = logits.astype(np.float64) / opts.temperature
        if opts.top_k > 0 and opts.top_k < scores.size:
            cutoff = np.partition(scores, -opts.top_k)[-opts.top_k]
            scores = np.where(scores < cutoff, -np.inf, scores)
        probs = np.exp(scores - scores.max())
        probs /= probs.sum()
        if opts.top_p < 1.0:
            order = np.argsort(-probs)
            cumulative = np.cumsum(probs[order])
            keep = order[: int(np.searchsorted(cumulative, opts.top_p)) + 1]
            mask = np.zeros_like(probs)
            mask[keep] = probs[keep]
            probs = mask / mask.sum()
        return int(self._rng.choice(probs.size, p=probs))
