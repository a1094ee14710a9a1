"""Hub and export jobs shared by `pgpt-tui check/download` and the Models screen (one code path)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pgpt.runtime.hub.access import AccessReport
    from pgpt.runtime.hub.download import DownloadProgress
    from pgpt.runtime.models import DeletedModel, ModelInfo
    from pgpt.runtime.settings import Settings

# Offered as the user types a repo id, besides the repos already downloaded or exported here.
WELL_KNOWN_REPOS = (
    "HuggingFaceTB/SmolLM2-135M-Instruct",
    "HuggingFaceTB/SmolLM2-360M-Instruct",
    "HuggingFaceTB/SmolLM2-1.7B-Instruct",
    "Qwen/Qwen2.5-0.5B-Instruct",
    "Qwen/Qwen2.5-1.5B-Instruct",
    "sentence-transformers/all-MiniLM-L6-v2",
    "BAAI/bge-small-en-v1.5",
)
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def check_repo(settings: Settings, repo: str, revision: str | None = None) -> AccessReport:
    """The access preflight of ``repo`` with the token in effect (never raises for a refusal)."""
    from pgpt.runtime.hub.access import check_access
    from pgpt.runtime.hub.token import find_token

    return check_access(repo, find_token(settings), revision, architecture_check=architecture_check)


def download_repo(settings: Settings, repo: str, revision: str | None,
                  progress: Callable[[DownloadProgress], None], cancel: threading.Event) -> Path:
    """Download and verify the files an export of ``repo`` needs; returns the snapshot folder."""
    from pgpt.runtime.hub.download import download
    from pgpt.runtime.hub.token import find_token

    return download(settings, repo, find_token(settings), revision, progress=progress, cancel=cancel,
                    architecture_check=architecture_check)


def export_name(repo: str) -> str:
    """The model cache name of an export of ``repo`` (without the dtype suffix)."""
    return repo.split("/")[-1].lower()


def export_download(settings: Settings, repo: str | None, folder: str, dtype: str, prefill: str = "auto",
                    progress: Callable[[str, str], None] | None = None,
                    cancel: threading.Event | None = None) -> tuple[ModelInfo, bool]:
    """Export a downloaded repo, or with ``repo`` None a model file or folder on this machine (named
    as pgpt-export names it), into the model cache (``prefill``: pgpt-export's --prefill); a chat
    model becomes the active one.

    Returns the exported model and whether it became the active chat model.
    """
    from pgpt.export.pipeline import ExportOptions, export_model
    from pgpt.runtime.models import set_active_model

    options = ExportOptions(source=folder, model_cache=settings.model_cache, dtype=dtype,
                            name=export_name(repo) if repo else "", prefill=prefill)
    info = export_model(options, progress=progress, cancel=cancel)
    if info.kind != "llm":
        return info, False
    set_active_model(settings, info.name)
    return info, True


def local_model(text: str) -> Path | None:
    """The model on this machine that ``text`` names: a GGUF file (by its suffix or, as pgpt-export
    reads it, its first bytes: an Ollama blob has no suffix), or a folder with config.json (a Hugging
    Face model folder); None for anything else, such as a Hub repo id."""
    from pgpt.export.sources import is_gguf_file

    path = Path(text).expanduser()
    if path.is_file() and is_gguf_file(path):
        return path
    return path if (path / "config.json").is_file() else None


def describe_local(path: Path) -> tuple[str, str]:
    """What the model file or folder ``path`` is, in a line, and the type to export it as: int4 for a
    GGUF whose weights are mostly blocks of at most 4 bits (the export keeps them exactly), else int8, the CPU's
    best; '' for a file or folder the export would refuse, described with the export's own reason (a truncated
    file or an unsupported architecture read "^b exports it", t62)."""
    from pgpt.runtime.errors import PgptError, user_message

    try:
        return _describe_folder(path) if path.is_dir() else _describe_gguf(path)
    except PgptError as exc:
        return f"{path} cannot be exported: {user_message(exc).text}", ""


def _describe_folder(path: Path) -> tuple[str, str]:
    """A Hugging Face folder, checked as pgpt-export checks it first (config, weights, remote code,
    tokenizer; the architecture where pgpt's own graph does not know it, which loads the exporter)."""
    from pgpt.export.model_loading import require_tokenizer_files
    from pgpt.export.decoder_spec import SUPPORTED_TYPES
    from pgpt.export.sources import check_architecture, check_folder

    config = check_folder(path, trust_remote_code=False)
    kind = str(config.get("model_type", "?"))
    if not any((path / name).is_file() for name in ("modules.json", "sentence_bert_config.json")):  # else an embedder
        require_tokenizer_files(path)
        if kind not in SUPPORTED_TYPES:
            check_architecture(kind, "text-generation-with-past")
    return f"{path} is a model folder on this machine (model type {kind}).", "int8"


def _describe_gguf(path: Path) -> tuple[str, str]:
    """A GGUF file's size, architecture and share of 4-bit blocks, after the export's header checks."""
    from pgpt.export.gguf_quants import GRID_LAYOUTS
    from pgpt.export.sources import check_gguf_header

    reader = check_gguf_header(path)  # memory-mapped: the header and tensor table only are read
    length = path.stat().st_size
    size = f"{length / 1e9:.1f} GB" if length >= 1e9 else f"{length / 1e6:.0f} MB" if length >= 1e6 else \
        f"{length:,} bytes"
    field = reader.fields.get("general.architecture")
    architecture = bytes(field.parts[field.data[0]]).decode("utf-8", "replace") if field else "?"
    total = sum(int(t.n_elements) for t in reader.tensors) or 1
    # the export's own table of block layouts: int4 keeps blocks of up to 4 bits as they are (Q2_K and
    # Q3_K too: a mostly-Q3_K file was offered int8, twice the size for no gain)
    four_bit = sum(int(t.n_elements) for t in reader.tensors if 0 < GRID_LAYOUTS.get(t.tensor_type.name, (0,))[0] <= 4)
    share = four_bit / total
    return (f"{path} is a GGUF file on this machine ({size}, {architecture} architecture, "
            f"{share:.0%} of its weights in blocks of at most 4 bits).", "int4" if share >= 0.5 else "int8")


def delete_exported(settings: Settings, name: str) -> tuple[DeletedModel, str]:
    """Delete the exported model ``name``; also returns the chat model now in effect ('' if none)."""
    from pgpt.runtime.models import chat_model_name, delete_model

    deleted = delete_model(settings, name)
    return deleted, chat_model_name(settings)


def describe_deletion(deleted: DeletedModel, now: str) -> str:
    """What was deleted, in a line, and what chat uses now when it used the deleted model."""
    what = "removed the link" if deleted.link_only else f"deleted {deleted.size_bytes / 1e6:.0f} MB"
    line = f"{what}: {deleted.name}"
    if deleted.was_active:
        line += f"; it was the chat model, chat now uses {now}" if now else \
            ("; it was the chat model and none is left: the app prepares the built-in default again when it "
             "runs (or run pgpt-export --default)")
    return line


def known_repos(settings: Settings, models: list[ModelInfo]) -> list[str]:
    """Repo ids to suggest: those of the exported models, the verified downloads, a few well-known ones."""
    found = [str(m.summary()["source"] or "") for m in models]
    for marker in sorted((settings.home / "downloads").glob("*@*.json")):
        try:
            found.append(str(json.loads(marker.read_text(encoding="utf-8")).get("repo", "")))
        except (OSError, ValueError, AttributeError):
            continue  # a damaged marker only costs a suggestion
    unique = dict.fromkeys(r for r in [*found, *WELL_KNOWN_REPOS] if _REPO_ID.match(r))
    return list(unique)


def architecture_check(model_type: str) -> str:
    """'' when pgpt-export can export ``model_type``, else why not (needs the export extra)."""
    from pgpt.export.decoder_spec import SUPPORTED_TYPES

    if model_type in (*SUPPORTED_TYPES, "bert"):  # pgpt's own graphs: no need to ask Optimum (4-5 s to import)
        return ""
    try:
        from pgpt.export.sources import check_architecture

        check_architecture(model_type, "text-generation-with-past")
        return ""
    except ImportError:
        return "the export extra is not installed"
    except Exception as first:  # not a causal LM: maybe an embedding model
        try:
            check_architecture(model_type, "feature-extraction")
            return ""
        except Exception:
            return str(first)


def quality_cell(quality: dict[str, Any]) -> str:
    """The measured quality in one short cell: top-1 agreement (LLM) or minimum cosine (embedder)."""
    if "top1_agreement" in quality:
        return f"top-1 {quality['top1_agreement']:.1%}"
    if "min_cosine" in quality:
        return f"cosine {quality['min_cosine']:.4f}"
    return "-"
