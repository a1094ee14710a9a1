"""The quality check's reference logits, computed by transformers' own layers one layer at a time.

Loading the original whole in fp32 is what an export must not do for a 1.5B-7B model (6-28 GB),
so the reference runs every test sequence through transformers' decoder layer ``i`` with layer
``i``'s weights alone in memory (dequantized fp32, read from the source), then drops them and
moves on: peak memory is one layer, the embedding table and the hidden states of ~1,200 tokens.
The arithmetic is transformers' (its attention, rotary tables, RMSNorm, MLP classes), with the
masks it builds (causal, and sliding-window for Gemma 3's local layers).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from pgpt.export.decoder_spec import DecoderSpec
from pgpt.export.quality import Scores, scores
from pgpt.export.weights import WeightSource

METHOD = ("transformers decoder layers run one at a time with that layer's weights alone in memory "
          "(fp32, dequantized from the source), all test tokens through each layer")
_MODULES = {"llama": ("llama", "Llama"), "mistral": ("mistral", "Mistral"), "qwen2": ("qwen2", "Qwen2"),
            "qwen3": ("qwen3", "Qwen3"), "gemma3_text": ("gemma3", "Gemma3")}


def _classes(model_type: str) -> tuple[Any, Any, Any]:
    """transformers' (DecoderLayer, RMSNorm, RotaryEmbedding) classes of the architecture."""
    folder, prefix = _MODULES[model_type]
    module = importlib.import_module(f"transformers.models.{folder}.modeling_{folder}")
    rotary = getattr(module, f"{prefix}RotaryEmbedding")
    return getattr(module, f"{prefix}DecoderLayer"), getattr(module, f"{prefix}RMSNorm"), rotary


def _mask(length: int, window: int) -> Any:
    """Additive (1, 1, L, L) mask: causal, and within ``window`` positions when it is set."""
    import torch

    i = torch.arange(length)[:, None]
    j = torch.arange(length)[None, :]
    allowed = j <= i
    if window:
        allowed &= (i - j) < window
    mask = torch.zeros(length, length).masked_fill(~allowed, torch.finfo(torch.float32).min)
    return mask[None, None]


LINE_EVERY = 1.0  # seconds between two progress lines of the reference

class LayerwiseReference:
    """Reference logits of a decoder whose weights come from ``source``."""

    method = METHOD

    def __init__(self, config: Any, spec: DecoderSpec, source: WeightSource,
                 progress: Callable[[str], None] | None = None, step: Callable[[str], None] | None = None) -> None:
        self.config, self.spec, self.source = config, spec, source
        self._progress = progress or (lambda line: None)  # the layer lines
        self._step = step or self._progress  # the scoring after them, a step of its own (it takes 16 s at 1.5B)

    def scores(self, sequences: list[list[int]]) -> list[Scores]:
        """Each token sequence's scores (top token, next-token log-probability), as the original model
        computes its logits."""
        import torch

        layer_class, norm_class, rotary_class = _classes(self.spec.model_type)
        config = self.config
        config._attn_implementation = "eager"
        with torch.no_grad():
            embed = self.source.fp32("model.embed_tokens.weight")
            states = [torch.from_numpy(embed[ids]) * torch.tensor(self.spec.embed_scale) for ids in sequences]
            del embed
            positions = [torch.arange(len(ids))[None] for ids in sequences]
            rotary = self._rotary(rotary_class, states, positions)
            started = last_line = time.perf_counter()
            for i in range(self.spec.layers):
                layer = self._layer(layer_class, i)
                window = self.spec.windows[i]
                for s, hidden in enumerate(states):
                    states[s] = self._run(layer, hidden[None], positions[s], rotary[s], _mask(hidden.shape[0], window))[0]
                del layer
                done, now = (i + 1) / self.spec.layers, time.perf_counter()
                # a line a second at most: the app's log keeps the last 40, which must still show every stage
                if now - last_line >= LINE_EVERY or i + 1 == self.spec.layers:
                    last_line = now
                    self._progress(f"reference layer {i + 1}/{self.spec.layers}, "
                                   f"ETA {(now - started) * (1 - done) / done:.0f}s")
            self._step(f"scoring the export against the reference (the original's output layer over "
                       f"{sum(map(len, sequences))} tokens)")
            return self._head(norm_class, states, sequences)

    def _rotary(self, rotary_class: Any, states: list[Any], positions: list[Any]) -> list[dict[str, Any]]:
        """Each sequence's (cos, sin) for the global layers and, for Gemma 3, the local ones."""
        import copy

        global_rotary = rotary_class(self.config)
        local_rotary = None
        if self.spec.model_type == "gemma3_text":
            local_config = copy.deepcopy(self.config)
            local_config.rope_theta = local_config.rope_local_base_freq
            local_config.rope_scaling = {"rope_type": "default"}
            local_rotary = rotary_class(local_config)
        tables = []
        for hidden, pos in zip(states, positions):
            entry = {"global": global_rotary(hidden[None], pos)}
            if local_rotary is not None:
                entry["local"] = local_rotary(hidden[None], pos)
            tables.append(entry)
        return tables

    def _layer(self, layer_class: Any, i: int) -> Any:
        """Decoder layer ``i`` with its weights from the source (built on the meta device, then assigned)."""
        import torch

        with torch.device("meta"):
            layer = layer_class(self.config, i)
        prefix = f"model.layers.{i}."
        state = {}
        for name in layer.state_dict():
            full = prefix + name
            if self.source.info(full) is None:
                raise KeyError(f"the model has no tensor {full}")
            state[name] = torch.from_numpy(self.source.fp32(full))
        layer.load_state_dict(state, assign=True)
        return layer.eval()

    def _run(self, layer: Any, hidden: Any, positions: Any, rotary: dict[str, Any], mask: Any) -> Any:
        if self.spec.model_type == "gemma3_text":
            out = layer(hidden, position_embeddings_global=rotary["global"],
                        position_embeddings_local=rotary["local"], attention_mask=mask, position_ids=positions)
        else:
            out = layer(hidden, attention_mask=mask, position_ids=positions, position_embeddings=rotary["global"])
        return out[0] if isinstance(out, tuple) else out

    def _head(self, norm_class: Any, states: list[Any], sequences: list[list[int]]) -> list[Scores]:
        """Final norm and lm_head (the embedding when tied), scored 256 positions at a time."""
        import torch

        norm = norm_class(self.spec.hidden, eps=self.spec.eps)
        norm.load_state_dict({"weight": torch.from_numpy(self.source.fp32("model.norm.weight"))})
        head_name = "model.embed_tokens.weight" if self.spec.tied else "lm_head.weight"
        head = torch.from_numpy(self.source.fp32(head_name))
        results = []
        for hidden, ids in zip(states, sequences):
            normed = norm(hidden[None])[0]
            parts = [scores((normed[i:i + 256] @ head.T).numpy(), ids[i:i + 257])
                     for i in range(0, len(ids), 256)]
            results.append(Scores(np.concatenate([p.top for p in parts]),
                                  np.concatenate([p.next_logprob for p in parts])))
        return results
