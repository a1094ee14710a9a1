"""A loaded language model and its generation loop: KV cache, streaming, stop, cancel."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pgpt.runtime.errors import AnswerTooLongError, Cancelled, ContextLengthError, ModelIntegrityError
from pgpt.runtime.llm.kv_cache import HEADROOM, KVBuffer
from pgpt.runtime.manifest import manifest_hash, verify_folder
from pgpt.runtime.models import ModelInfo, require_kind
from pgpt.runtime.llm.sampling import SamplingOptions, TokenPicker
from pgpt.runtime.llm.session import ATTENTION_ON_CPU, attention_needs_cpu, create_session
from pgpt.runtime.llm.text import load_tokenizer, read_json, render_chat, token_text

_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
# Prompts go through the fused graph in chunks: each chunk attends only to what precedes it, so
# the masked half of the prompt's attention is never computed (1000 tokens, 2 cores: -15% TTFT;
# 256 measured best of 125/250/500/1000). The logits are bit-identical to one pass.
PREFILL_CHUNK = 256


class LanguageModel:
    """An exported causal LM, loaded once and used for many generations."""

    def __init__(self, info: ModelInfo, provider: str = "auto", threads: int = 0) -> None:
        require_kind(info, "llm")  # a usage error: the files are fine, the wrong model was named
        verify_folder(info.path, info.manifest)
        self.info = info
        self.model_id = manifest_hash(info.manifest)
        dtype, graph = info.dtype, str(info.manifest.get("graph", ""))
        cpu_reason = ATTENTION_ON_CPU.format(dtype=dtype) if attention_needs_cpu(dtype, graph) else ""
        self.session, self.provider = create_session(info.path / "model.onnx", provider, threads,
                                                     cpu_reason=cpu_reason)
        self.tokenizer = load_tokenizer(info.path)
        self._load_configs(info.path)
        self._input_names = {i.name for i in self.session.get_inputs()}
        self._output_names = [o.name for o in self.session.get_outputs()]
        if not self._output_names or self._output_names[0] != "logits":
            raise ModelIntegrityError(f"{info.name}: the graph's first output is not 'logits'.")
        self._past_specs = [
            (i.name, i.shape, _NUMPY_TYPES.get(i.type, np.float32))
            for i in self.session.get_inputs()
            if i.name.startswith("past_key_values.")
        ]
        self._device = "cuda" if self.provider.name == "cuda" else "cpu"
        self._keeps_logits = "num_logits_to_keep" in self._input_names
        # pgpt's fused graph (GroupQueryAttention) reads and writes one preallocated KV buffer in
        # place; Optimum's graph returns a new, longer cache every step.
        self._shares_kv = info.manifest.get("graph") == "fused"
        self.prefill_session = self._load_prefill_graph(info, threads)
        # The last generation's KV buffer, for the next prompt that starts the same way.
        self._kept: KVBuffer | None = None
        self._kept_lock = threading.Lock()
        self.last_reused_tokens = 0

    def close(self) -> None:
        """Drop the sessions and the kept KV buffer, so that their memory can go back to the
        system (the caller runs ``release_freed_memory`` once nothing else holds them)."""
        with self._kept_lock:
            self._kept = None
        self.session = self.prefill_session = None

    @property
    def has_prefill_graph(self) -> bool:
        """Whether prompts run through the export's int8-compute prefill graph."""
        return self.prefill_session is not None

    def _load_prefill_graph(self, info: ModelInfo, threads: int) -> Any:
        """The int8 prefill graph of an int8 fused export; CPU only (its int8 kernels are CPU kernels)."""
        prefill = info.manifest.get("prefill")
        if not prefill or not self._shares_kv or self.provider.name != "cpu":
            return None
        # Measured: with spinning idle threads, this session cut decode from 59 to 39 tok/s on 2 cores.
        session, _ = create_session(info.path / str(prefill["file"]), "cpu", threads, spinning=False)
        return session

    def _load_configs(self, folder: Path) -> None:
        tok_config = read_json(folder / "tokenizer_config.json")
        gen_config = read_json(folder / "generation_config.json")
        config = read_json(folder / "config.json")
        template_file = folder / "chat_template.jinja"
        self.chat_template = (
            template_file.read_text(encoding="utf-8")
            if template_file.is_file()
            else str(tok_config.get("chat_template") or "")
        )
        self.special_tokens = {
            key: token_text(tok_config.get(key))
            for key in ("bos_token", "eos_token", "pad_token", "unk_token")
        }
        # Without a chat template (a base model's GGUF) the plain prompt still needs the BOS token
        # its tokenizer adds; templates place it themselves. Gemma 3 270M without it: "</h2><h2>".
        self.plain_prefix = self.special_tokens["bos_token"] if tok_config.get("add_bos_token") else ""
        eos = gen_config.get("eos_token_id", config.get("eos_token_id"))
        ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        eos_id = self.tokenizer.token_to_id(self.special_tokens["eos_token"] or "")
        if eos_id is not None:
            ids.add(eos_id)
        self.eos_ids = frozenset(int(i) for i in ids)
        # GPT-2's config names it n_positions (n_ctx): read as 2048, a 512-position model ran past its table
        self.max_context = int(config.get("max_position_embeddings") or config.get("n_positions")
                               or config.get("n_ctx") or 2048)

    def render_prompt(self, messages: list[dict[str, str]]) -> str:
        """Render the chat template (sandboxed) into the prompt text."""
        if self.chat_template:
            return render_chat(self.chat_template, messages, self.special_tokens)
        return self.plain_prefix + "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"

    @functools.cached_property
    def control_texts(self) -> tuple[str, ...]:
        """The tokenizer's special tokens as text (``<|im_start|>``), longest first: found in a
        document, the tokenizer turns them into real turn markers (see ``tokenize``)."""
        decoder = self.tokenizer.get_added_tokens_decoder()
        return tuple(sorted({t.content for t in decoder.values() if t.special and t.content}, key=len, reverse=True))

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` (the template already placed the special tokens)."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def check_context(self, prompt_len: int, max_new_tokens: int, context: int = 0) -> None:
        """Raise ContextLengthError when prompt + answer exceed ``context`` tokens (default: the
        model's context window)."""
        context = context or self.max_context
        if prompt_len + max_new_tokens > context:
            if prompt_len < context // 2:  # the prompt is short: the answer length asked is what does not fit
                raise AnswerTooLongError(
                    f"An answer of up to {max_new_tokens} tokens was asked for after a prompt of {prompt_len}, but "
                    f"{self.holds(context)}.", prompt_tokens=prompt_len, max_tokens=max_new_tokens, context=context,
                    hint=f"Ask for at most {context - prompt_len} tokens (--max-tokens, max_tokens).")
            raise ContextLengthError(
                f"The prompt has {prompt_len} tokens and up to {max_new_tokens} more were asked for, but "
                f"{self.holds(context)}.", prompt_tokens=prompt_len, max_tokens=max_new_tokens, context=context)

    def holds(self, context: int) -> str:
        """What a sequence of ``context`` tokens is, for messages: the model's window, or a server's
        smaller --context with the window beside it."""
        if context >= self.max_context:
            return f"{self.info.name} holds {context} tokens"
        return (f"a sequence here holds {context} tokens (pgpt-serve --context; {self.info.name} itself holds "
                f"{self.max_context})")

    @property
    def past_specs(self) -> list[tuple[str, Any, Any]]:
        """(name, shape, numpy type) of every ``past_key_values.*`` input."""
        return self._past_specs

    @property
    def present_names(self) -> list[str]:
        """The graph's KV outputs (``present.*``), in order."""
        return self._output_names[1:]

    @property
    def shares_kv(self) -> bool:
        """Whether the graph reads and writes one in-place KV buffer (pgpt's fused graph)."""
        return self._shares_kv

    @property
    def device(self) -> str:
        """Where the KV cache lives: cuda or cpu."""
        return self._device

    def generate(
        self,
        prompt_ids: list[int],
        options: SamplingOptions,
        cancel: threading.Event | None = None,
    ) -> Iterator[int]:
        """Yield new token ids until EOS, ``max_new_tokens`` or ``cancel`` is set.

        Raises:
            ContextLengthError: when the prompt and answer do not fit.
            Cancelled: when ``cancel`` is set (checked between tokens).
        """
        self.check_context(len(prompt_ids), options.max_new_tokens)
        picker = TokenPicker(options)
        buffer, reused = self._claim_buffer(prompt_ids, len(prompt_ids) + options.max_new_tokens)
        self.last_reused_tokens = reused
        past = buffer.values if buffer is not None else self._empty_past(0)
        total = len(prompt_ids)
        seen = np.asarray(prompt_ids, dtype=np.int64)
        token = -1
        try:
            for produced in range(options.max_new_tokens):
                if cancel is not None and cancel.is_set():
                    raise Cancelled("Generation stopped.")
                if produced == 0:
                    if buffer is not None:  # what it holds while the rest is read (a cancel may stop that)
                        buffer.tokens = list(prompt_ids[:reused])
                    rows, past = self._prefill(prompt_ids, past, self._prompt_session(True), start=reused,
                                               cancel=cancel)
                    logits = rows[-1][-1]
                    if buffer is not None:
                        buffer.tokens = list(prompt_ids)
                else:
                    total += 1  # the previous token is run now
                    logits, past = self._run(self.session, [token], past, total)
                    logits = logits[-1]
                    if buffer is not None:
                        buffer.tokens.append(token)
                token = picker.pick(logits, seen if options.repetition_penalty != 1.0 else None)
                if token in self.eos_ids and not options.ignore_eos:
                    return
                yield token
                if options.repetition_penalty != 1.0:
                    seen = np.append(seen, token)
        finally:
            if buffer is not None:
                with self._kept_lock:
                    self._kept = buffer

    def release_kv(self) -> None:
        """Drop the KV buffer the last generation left: its memory is freed, and the next prompt
        is read in full."""
        with self._kept_lock:
            self._kept = None

    def _claim_buffer(self, prompt_ids: list[int], needed: int) -> tuple[KVBuffer | None, int]:
        """The KV buffer for one generation and how many prompt tokens it already holds.

        The kept buffer is taken (a generation running beside this one gets a new buffer, never a
        shared one) and grown when the prompt and answer do not fit. None for Optimum's graph,
        whose cache is a new, longer tensor every step.
        """
        if not self._shares_kv:
            return None, 0
        with self._kept_lock:
            kept, self._kept = self._kept, None
        capacity = min(needed + HEADROOM, self.max_context)
        if kept is not None:
            reused = kept.reusable(prompt_ids)
            if needed > kept.capacity:
                kept = kept.grown(self._past_specs, capacity, reused) if reused else None
            if kept is not None:
                kept.tokens = kept.tokens[:reused]
                return kept, reused
        return KVBuffer(self._past_specs, capacity, self._device), 0

    def _prompt_session(self, prefill_graph: bool) -> Any:
        """The session that reads prompts: the prefill graph when loaded and wanted, else the main one."""
        return (self.prefill_session if prefill_graph else None) or self.session

    def _prefill(self, prompt_ids: list[int], past: dict[str, Any], session: Any, keep_all: bool = False,
                 start: int = 0, cancel: threading.Event | None = None) -> tuple[list[np.ndarray], dict[str, Any]]:
        """Run the prompt from position ``start`` (the cache holds those before it) through
        ``session``, in chunks on the fused graph.

        Returns each chunk's logits (its last position, or all with ``keep_all``) and the cache.

        Raises:
            Cancelled: ``cancel`` was set between two chunks (a 1.5B model read a 1,000-token prompt
                for 8 s after Ctrl-C, t53).
        """
        chunk = PREFILL_CHUNK if self._shares_kv else max(len(prompt_ids), 1)
        rows = []
        for begin in range(start, len(prompt_ids), chunk):
            if cancel is not None and cancel.is_set() and begin > start:
                raise Cancelled("Generation stopped.")
            part = prompt_ids[begin:begin + chunk]
            logits, past = self._run(session, part, past, begin + len(part), keep=len(part) if keep_all else 1)
            rows.append(logits)
        return rows, past

    def forward_logits(self, token_ids: list[int], prompt_len: int | None = None,
                       prefill_graph: bool = True) -> np.ndarray:
        """Logits for every position, computed as generation computes them (quality check, tests).

        The first ``prompt_len`` tokens (default: all) take the prompt path: in chunks, on the
        prefill graph when there is one and ``prefill_graph`` is set; the rest go one token at a
        time through the main graph, reading the cache the prompt path wrote.
        """
        self.check_context(len(token_ids), 0)
        prompt_len = len(token_ids) if prompt_len is None else prompt_len
        past = self._empty_past(len(token_ids))
        rows, past = self._prefill(token_ids[:prompt_len], past, self._prompt_session(prefill_graph), keep_all=True)
        for position in range(prompt_len, len(token_ids)):
            logits, past = self._run(self.session, token_ids[position:position + 1], past, position + 1)
            rows.append(logits)
        return np.concatenate(rows)

    def _empty_past(self, capacity: int) -> dict[str, Any]:
        """The KV cache before the prompt: ``capacity`` positions for the in-place graph, else empty."""
        from onnxruntime import OrtValue

        if self._shares_kv:
            return KVBuffer(self._past_specs, capacity, self._device).values
        past = {}
        for name, shape, dtype in self._past_specs:
            dims = [1 if not isinstance(d, int) else d for d in shape]
            dims[2] = 0  # the sequence axis: Optimum's graph returns a longer cache every step
            past[name] = OrtValue.ortvalue_from_numpy(np.zeros(dims, dtype=dtype))
        return past

    def bind_step(self, session: Any, ids: np.ndarray, totals: list[int], keep: int = 1) -> Any:
        """An IO binding of one step, all but the KV cache: ``ids`` (batch x new tokens), each
        row ending at ``totals[row]`` tokens (its attention mask), logits of the last ``keep``
        positions returned to the host."""
        binding = session.io_binding()
        binding.bind_cpu_input("input_ids", ids)
        if self._keeps_logits:
            binding.bind_cpu_input("num_logits_to_keep", np.asarray([keep], dtype=np.int64))
        if "attention_mask" in self._input_names:
            # The fused graph reads only each row's sum (its length) and the width (the longest).
            mask = np.zeros((len(totals), max(totals)), dtype=np.int64)
            for row, total in enumerate(totals):
                mask[row, :total] = 1
            binding.bind_cpu_input("attention_mask", mask)
        if "position_ids" in self._input_names:
            start = totals[0] - ids.shape[1]
            binding.bind_cpu_input("position_ids", np.arange(start, totals[0], dtype=np.int64)[None])
        binding.bind_output("logits", "cpu")
        return binding

    def _bind(self, session: Any, ids: np.ndarray, past: dict[str, Any], total: int, keep: int = 1) -> Any:
        binding = self.bind_step(session, ids, [total], keep)
        for name, value in past.items():
            binding.bind_ortvalue_input(name, value)
        # Logits come back to the host for sampling; the KV cache stays on the device.
        for name in self._output_names[1:]:
            if self._shares_kv:
                binding.bind_ortvalue_output(name, past[_past_name(name)])
            else:
                binding.bind_output(name, self._device)
        return binding

    def _run(self, session: Any, ids: list[int], past: dict[str, Any], total: int,
             keep: int = 1) -> tuple[np.ndarray, dict[str, Any]]:
        """One pass over ``ids``; the logits of the kept positions and the cache after them."""
        binding = self._bind(session, np.asarray([ids], dtype=np.int64), past, total, keep)
        session.run_with_iobinding(binding)
        outputs = binding.get_outputs()
        logits = outputs[0].numpy()[0]
        if self._shares_kv:
            return logits, past
        return logits, {_past_name(name): value for name, value in zip(self._output_names[1:], outputs[1:])}


def _past_name(present: str) -> str:
    """``present.3.key`` -> ``past_key_values.3.key``."""
    return present.replace("present", "past_key_values", 1)
