"""pgpt's exports of a real GGUF file against PyTorch (transformers reading the same file).

The tests check each architecture token for token on small random models; this checks a real
file, where one is at hand (Qwen2.5-Coder-1.5B, Gemma 3 270M: `bench/real_models.py`). For each
dtype the file is exported into a temporary folder and compared with transformers' float32
model of the dequantized GGUF:
- teacher-forced logits over a real document's first ``--tokens`` tokens (the licence text of
  bench-docs' manuals corpus; 700 tokens cross Gemma 3's 512-token sliding window): the largest
  difference against the largest logit, and top-1 agreement over the positions;
- greedy continuations of a few prompts: tokens equal before the first difference, and the
  reference's top-2 logit gap there (a near-tie is rounding, a wide gap would be a bug).

A benchmark, not a test: it loads the model twice (PyTorch and ONNX Runtime), about 8 bytes per
weight in float32 for the 1.5B model (14 GB), and takes minutes.

    python -m pgpt.bench.parity GGUF [--dtypes fp32,int8,int4] [--tokens 700] [--new-tokens 32] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

PROMPTS = ["The capital of France is", "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
           "Photosynthesis is the process by which plants"]
DOCUMENT = Path(__file__).parent / "data" / "manuals" / "lgpl-2.1.txt"


def torch_reference(gguf: Path) -> Any:
    """transformers' float32 model of the GGUF (dequantized by transformers itself), eager
    attention: the export's own loader (``model_loading.load_torch_model``), the file parsed once."""
    from pgpt.export.model_loading import load_torch_model
    from pgpt.export.gguf_loading import fast_gguf_reading
    from pgpt.export.sources import gguf_source

    with fast_gguf_reading():
        return load_torch_model(gguf_source(gguf), trust_remote_code=False)


def reference_outputs(reference: Any, ids: list[int], prompts: list[list[int]], new_tokens: int) -> dict[str, Any]:
    """The reference's logits over ``ids`` and, per prompt, its greedy tokens and the logits that chose them."""
    import torch

    with torch.no_grad():
        logits = reference(torch.tensor([ids])).logits[0].numpy()
        greedy = []
        for prompt in prompts:
            out = reference.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                                     max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                                     pad_token_id=0, output_scores=True, return_dict_in_generate=True)
            greedy.append((out.sequences[0, len(prompt):].tolist(), [s[0].numpy() for s in out.scores]))
    return {"logits": logits, "greedy": greedy}


def compare(model: Any, ids: list[int], prompts: list[list[int]], expected: dict[str, Any],
            new_tokens: int) -> dict[str, Any]:
    """One export's distance to the reference (see the module docstring)."""
    from pgpt.runtime.llm.sampling import SamplingOptions

    got = model.forward_logits(ids)
    want = expected["logits"]
    row: dict[str, Any] = {
        "max_logit_diff": float(np.abs(got - want).max()),
        "relative_diff": float(np.abs(got - want).max() / np.abs(want).max()),
        "top1_agreement": float(np.mean(got.argmax(-1) == want.argmax(-1))),
        "greedy": []}
    for prompt, (tokens, scores) in zip(prompts, expected["greedy"]):
        ours = list(model.generate(prompt, SamplingOptions(max_new_tokens=new_tokens, ignore_eos=True)))
        same = next((i for i, (a, b) in enumerate(zip(ours, tokens)) if a != b), len(tokens))
        gap = None
        if same < len(tokens):
            top2 = np.sort(scores[same])[-2:]
            gap = float(top2[1] - top2[0])
        row["greedy"].append({"equal": same, "of": len(tokens), "top2_gap_at_difference": gap})
    return row


def run(gguf: Path, dtypes: list[str], tokens: int, new_tokens: int, progress: bool = True) -> dict[str, Any]:
    """Export ``gguf`` to each dtype and compare each export with PyTorch."""
    from pgpt.export.pipeline import ExportOptions, export_model
    from pgpt.runtime.errors import QualityError
    from pgpt.runtime.llm.generation import LanguageModel

    def say(line: str) -> None:
        if progress:
            print(f"parity: {line}", file=sys.stderr, flush=True)

    results: dict[str, Any] = {"model": gguf.name, "tokens": tokens, "new_tokens": new_tokens, "rows": {}}
    with tempfile.TemporaryDirectory(prefix="pgpt-parity-") as scratch:
        expected = None
        for dtype in dtypes:
            say(f"exporting {gguf.name} to {dtype}")
            started = time.perf_counter()
            try:  # as a user exports it: the quality check may refuse, or write int4 wider
                info = export_model(ExportOptions(source=str(gguf), output=Path(scratch) / dtype, dtype=dtype))
            except QualityError as error:
                results["rows"][dtype] = {"refused": str(error)}
                continue
            model = LanguageModel(info, provider="cpu")
            ids = model.tokenize(DOCUMENT.read_text(encoding="utf-8"))[:tokens]
            prompts = [model.tokenize(p) for p in PROMPTS]
            if expected is None:
                say("PyTorch reference (transformers reading the same GGUF, float32)")
                reference = torch_reference(gguf)
                expected = reference_outputs(reference, ids, prompts, new_tokens)
                del reference
                gc.collect()
            say(f"comparing {dtype} with the reference")
            row = compare(model, ids, prompts, expected, new_tokens)
            row["export_quality"] = info.manifest.get("quality", {})
            row["export_weights"] = {key: value for key, value in info.manifest.get("weights", {}).items()
                                     if key != "tensors"}
            row["seconds"] = round(time.perf_counter() - started, 1)
            results["rows"][dtype] = row
            del model
            gc.collect()
    return results


def table(results: dict[str, Any]) -> str:
    """The markdown table of one run."""
    lines = [f"{results['model']}: {results['tokens']} tokens of {DOCUMENT.name} teacher-forced; "
             f"greedy, {results['new_tokens']} new tokens, {len(PROMPTS)} prompts",
             "", "| dtype | max logit diff (of the max logit) | top-1 equal to PyTorch | greedy tokens equal "
             "| top-2 gap where they part |", "|---|---|---:|---|---|"]
    for dtype, row in results["rows"].items():
        if "refused" in row:
            lines.append(f"| {dtype} | refused by the export's quality check: {row['refused']} | | | |")
            continue
        greedy = ", ".join(f"{g['equal']}/{g['of']}" for g in row["greedy"])
        gaps = ", ".join(f"{g['top2_gap_at_difference']:.3f}" for g in row["greedy"]
                         if g["top2_gap_at_difference"] is not None) or "-"
        first = row["export_weights"].get("first_try")
        label = f"{dtype} (5-8-bit blocks at 8 bits: at 4, {first['top1_agreement']:.1%} top-1)" if first else dtype
        lines.append(f"| {label} | {row['max_logit_diff']:.2e} ({row['relative_diff']:.1e}) "
                     f"| {row['top1_agreement'] * 100:.1f}% | {greedy} | {gaps} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point: print the parity table (or JSON) for one GGUF file."""
    parser = argparse.ArgumentParser(prog="python -m pgpt.bench.parity",
                                     description="pgpt's exports of a real GGUF against PyTorch reading the same file "
                                                 "(minutes, and about 8 bytes of memory per weight).")
    parser.add_argument("gguf", type=Path, help="the .gguf model file (scripts/get-gemma-3-270m prints one)")
    parser.add_argument("--dtypes", default="fp32,int8,int4",
                        help="the export types to compare, comma-separated (default: %(default)s)")
    parser.add_argument("--tokens", type=int, default=700,
                        help="tokens of the document whose logits are compared (default: %(default)s)")
    parser.add_argument("--new-tokens", type=int, default=32,
                        help="greedy tokens continued from each prompt (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    args = parser.parse_args(argv)
    if not args.gguf.is_file():
        print(f"error: {args.gguf} is not a file: give the path of a .gguf model "
              "(e.g. the one scripts/get-gemma-3-270m prints).", file=sys.stderr)
        return 2
    results = run(args.gguf, [d.strip() for d in args.dtypes.split(",") if d.strip()], args.tokens, args.new_tokens)
    print(json.dumps(results, indent=2) if args.json else table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
