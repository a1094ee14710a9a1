"""The fused graph of each architecture against PyTorch, token for token, on small random models.

Each model is a GGUF file written with the ``gguf`` package (random blocks at a realistic scale,
llama.cpp's layouts); the PyTorch reference is transformers loading that same file. The
safetensors path is checked on the same models saved by transformers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pgpt.bench.synthetic_gguf import GGUFModel, Vocabulary, train_vocabulary, write_gguf
from pgpt.export.pipeline import ExportOptions, export_model
from pgpt.runtime.llm.generation import LanguageModel
from pgpt.runtime.llm.sampling import SamplingOptions

MODELS = {
    "llama": GGUFModel("llama", std=0.06),
    "qwen2": GGUFModel("qwen2", std=0.06),
    "qwen3": GGUFModel("qwen3", heads=2, kv_heads=1, head_dim=128, std=0.06),
    # 6 layers: transformers' default pattern makes every 6th layer global, the others slide over 8 tokens
    "gemma3": GGUFModel("gemma3", layers=6, head_dim=32, sliding_window=8, rope_base=1e6, std=0.06),
}


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return train_vocabulary()


def torch_model(folder: Path, gguf_file: str = "") -> object:
    import torch
    from transformers import AutoModelForCausalLM

    extra = {"gguf_file": gguf_file} if gguf_file else {}
    return AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32, attn_implementation="eager",
                                                **extra).eval()


def assert_same_as_torch(model: LanguageModel, reference: object, length: int = 40) -> None:
    """Logits at every position equal to float rounding, and 24 greedy tokens identical."""
    import torch

    ids = np.random.default_rng(1).integers(0, 500, length).tolist()
    got = model.forward_logits(ids)
    with torch.no_grad():
        expected = reference(torch.tensor([ids])).logits[0].numpy()  # type: ignore[operator]
        generated = reference.generate(torch.tensor([ids[:12]]), attention_mask=torch.ones(1, 12, dtype=torch.long),  # type: ignore[attr-defined]
                                       max_new_tokens=24, min_new_tokens=24, do_sample=False, pad_token_id=0)
    assert np.abs(expected).max() > 1.0  # decisive logits, not a flat random model
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-5 * np.abs(expected).max())
    ours = list(model.generate(ids[:12], SamplingOptions(max_new_tokens=24, ignore_eos=True)))
    assert ours == generated[0, 12:].tolist()


@pytest.mark.parametrize("arch", MODELS)
def test_fused_graph_matches_pytorch_token_for_token(arch: str, vocabulary: Vocabulary, tmp_path: Path) -> None:
    path = write_gguf(tmp_path / f"{arch}.gguf", MODELS[arch], vocabulary)
    info = export_model(ExportOptions(source=str(path), output=tmp_path / "fp32"))
    assert info.manifest["graph"] == "fused" and info.manifest["quality"]["top1_agreement"] == 1.0
    assert "one at a time" in info.manifest["quality"]["reference"]
    reference = torch_model(tmp_path, path.name)
    assert_same_as_torch(LanguageModel(info, provider="cpu"), reference)
    # the same model as a transformers folder (safetensors) takes the other weight reader
    folder = tmp_path / "hf"
    reference.save_pretrained(folder)  # type: ignore[attr-defined]
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
        if (info.path / name).is_file():
            shutil.copyfile(info.path / name, folder / name)
    from_folder = export_model(ExportOptions(source=str(folder), output=tmp_path / "fp32-hf"))
    assert_same_as_torch(LanguageModel(from_folder, provider="cpu"), torch_model(folder))


def test_gemma_layers_slide_over_their_window(vocabulary: Vocabulary, tmp_path: Path) -> None:
    """The local layers attend to 8 tokens only: over 40 tokens that changes the logits, and the
    export follows transformers (a graph with global attention everywhere would not)."""
    import dataclasses

    import onnx

    path = write_gguf(tmp_path / "gemma.gguf", MODELS["gemma3"], vocabulary)
    info = export_model(ExportOptions(source=str(path), output=tmp_path / "out"))
    graph = onnx.load(str(info.path / "model.onnx"), load_external_data=False).graph
    windows = [next(a.i for a in n.attribute if a.name == "local_window_size")
               for n in graph.node if n.op_type == "GroupQueryAttention"]
    assert windows == [8, 8, 8, 8, 8, -1]
    wide = dataclasses.replace(MODELS["gemma3"], sliding_window=4096)
    wide_path = write_gguf(tmp_path / "wide.gguf", wide, vocabulary)
    ids = np.random.default_rng(2).integers(0, 500, 40).tolist()
    narrow_logits = LanguageModel(info, provider="cpu").forward_logits(ids)
    wide_info = export_model(ExportOptions(source=str(wide_path), output=tmp_path / "wide"))
    wide_logits = LanguageModel(wide_info, provider="cpu").forward_logits(ids)
    assert np.abs(narrow_logits[:8] - wide_logits[:8]).max() < 1e-4  # within the window: the same
    assert np.abs(narrow_logits[20:] - wide_logits[20:]).max() > 1e-2  # beyond it: not


def test_gemma_chat_template_without_a_system_role(vocabulary: Vocabulary, tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "gemma.gguf", MODELS["gemma3"], vocabulary)
    model = LanguageModel(export_model(ExportOptions(source=str(path), output=tmp_path / "out")), provider="cpu")
    prompt = model.render_prompt([{"role": "system", "content": "Answer briefly."},
                                  {"role": "user", "content": "What is ONNX?"}])
    assert prompt.endswith("<start_of_turn>user\nAnswer briefly.\n\nWhat is ONNX?<end_of_turn>\n<start_of_turn>model\n")
    assert "system" not in prompt


def test_a_model_without_a_chat_template_still_gets_its_bos_token(vocabulary: Vocabulary, tmp_path: Path) -> None:
    """A base model's GGUF has no chat template: the plain prompt starts with the BOS token its
    tokenizer adds (Gemma reads markup-like garbage without it), and with none where it adds none."""
    import json

    path = write_gguf(tmp_path / "gemma.gguf", MODELS["gemma3"], vocabulary)
    model = LanguageModel(export_model(ExportOptions(source=str(path), output=tmp_path / "out")), provider="cpu")
    base = tmp_path / "base"
    shutil.copytree(model.info.path, base)
    (base / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((base / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    for adds_bos, expected in ((True, "<bos>user: Hi\nassistant:"), (False, "user: Hi\nassistant:")):
        config["add_bos_token"] = adds_bos
        (base / "tokenizer_config.json").write_text(json.dumps(config))
        model._load_configs(base)
        prompt = model.render_prompt([{"role": "user", "content": "Hi"}])
        assert prompt == expected
    config["add_bos_token"] = True
    (base / "tokenizer_config.json").write_text(json.dumps(config))
    model._load_configs(base)
    assert model.tokenize(model.render_prompt([{"role": "user", "content": "Hi"}]))[0] == vocabulary.special["<bos>"]


def test_a_gguf_without_a_chat_template_is_exported_and_named_a_base_model(vocabulary: Vocabulary,
                                                                            tmp_path: Path) -> None:
    import dataclasses

    path = write_gguf(tmp_path / "base.gguf", dataclasses.replace(MODELS["gemma3"], chat_template=False), vocabulary)
    lines: list[str] = []
    info = export_model(ExportOptions(source=str(path), output=tmp_path / "out"),
                        progress=lambda stage, line: lines.append(line))
    assert any("has no chat template: probably a base model" in line for line in lines)
    model = LanguageModel(info, provider="cpu")
    prompt = model.render_prompt([{"role": "user", "content": "Hi"}])
    assert prompt == "<bos>user: Hi\nassistant:"
    assert model.tokenize(prompt)[0] == vocabulary.special["<bos>"]


def test_a_base_model_exports_to_int8_with_its_prefill_graph(vocabulary: Vocabulary, tmp_path: Path) -> None:
    """A Llama base model (no chat template) failed its int8 export: the prefill graph's calibration
    applied the chat template, "a bug in pgpt" (t51). Its calibration prompts are plain text too."""
    import dataclasses

    path = write_gguf(tmp_path / "base.gguf", dataclasses.replace(MODELS["llama"], chat_template=False), vocabulary)
    info = export_model(ExportOptions(source=str(path), output=tmp_path / "out", dtype="int8", accept_quality_loss=True))
    assert info.manifest.get("prefill"), info.manifest.keys()  # the int8 prefill graph was written
