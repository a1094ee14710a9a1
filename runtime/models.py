"""The local model registry: exported models in the shared model cache, and the active one."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgpt.runtime.errors import ConfigError, ModelIntegrityError, ModelNotFoundError, UsageError
from pgpt.runtime.manifest import MANIFEST, read_manifest, size_problem
from pgpt.runtime.settings import Settings, process_alive
from pgpt.runtime.user_config import read_config, write_config
from pgpt.runtime.versions import find_version, linked_version, parse_ref, version_of, versions_folder

DEFAULT_LLM = "smollm2-135m-instruct"
# int8 with its outlier channels in fp32: 1.4x fp32's chunks/s at cosine 0.996 to the original,
# the same retrieval hits (README, documents benchmark); see pgpt.export.encoder_int8.
DEFAULT_EMBEDDER = "all-minilm-l6-v2-int8"
# Preference among exported dtypes of the embedded default when no model was chosen: int8 first
# (with its prefill graph: 2x fp32's decode, TTFT 0.94 s at 1000 tokens, `ask` 2.7 s vs 5.1 s,
# top-1 agreement 95-97%), then fp32 and the rest.
DEFAULT_CHAT_DTYPES = ("int8", "fp32", "fp16", "int4")
# What each kind of model is called in messages, and where the user picks one.
KIND_NAMES = {"llm": "a chat model", "embedding": "an embedding model"}
_PICK = {"llm": "Pick a chat model with --model NAME or PGPT_MODEL",
         "embedding": "Pick an embedding model with --embedder NAME or PGPT_EMBEDDER"}


@dataclass(frozen=True)
class ModelInfo:
    """One exported model folder and its manifest."""

    name: str
    path: Path
    manifest: dict[str, Any]

    @property
    def kind(self) -> str:
        """``llm`` or ``embedding``."""
        return str(self.manifest.get("kind", "llm"))

    @property
    def dtype(self) -> str:
        """Weight type: fp32, fp16, int8 or int4."""
        return str(self.manifest.get("dtype", "?"))

    @property
    def size_bytes(self) -> int:
        """Total size of the model's files."""
        return sum(int(f["size"]) for f in self.manifest["files"])

    @property
    def version(self) -> str:
        """The export's version id (see pgpt.runtime.versions)."""
        return version_of(self.manifest)

    @property
    def ref(self) -> str:
        """``name@version``: this exact export."""
        return f"{self.name}@{self.version}"

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly description for `pgpt-tui models --json`."""
        from pgpt.runtime.footprint import footprint

        source = self.manifest.get("source", {})
        sizes = footprint(self)
        return {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "dtype": self.dtype,
            "parameters": sizes.parameters,
            "size_mb": round(self.size_bytes / 1e6, 1),
            "size_bytes": self.size_bytes,  # shown from this: 4.53 MB was "5 MB" at the export, "4MB" here
            "expected_memory_mb": round(sizes.expected_bytes / 1e6),
            "context_tokens": sizes.context,
            "kv_mb_per_1k_tokens": round(sizes.kv_bytes_per_token * 1000 / 1e6, 1),
            "quality": self.manifest.get("quality", {}),
            "source": source.get("repo_id") or source.get("path"),
            "path": str(self.path),
        }


def list_models(settings: Settings) -> list[ModelInfo]:
    """Every folder of the model cache that has a readable manifest, sorted by name."""
    root = settings.model_cache
    return [ModelInfo(child.name, _version_folder(root, child.name), manifest)
            for child, manifest in _cache_entries(settings) if isinstance(manifest, dict)]


def damaged_models(settings: Settings) -> list[tuple[str, str]]:
    """Folders of the model cache whose manifest cannot be read, or whose files are missing or not of
    the manifest's sizes: (name, why). `models` lists them and `models --delete NAME` removes them;
    they are never used."""
    return [(child.name, manifest) for child, manifest in _cache_entries(settings) if isinstance(manifest, str)]


def stale_exports(folder: Path, name: str = "") -> list[Path]:
    """Temporary folders that exports into ``folder`` (of ``name``, or of any name) left when they
    were killed (kill -9, the kernel's OOM killer): their process is gone. A 1.5B export leaves GBs,
    and only an export of the same name removed them; `doctor` names them and any export sweeps them."""
    if not folder.is_dir():
        return []
    stale = []
    for entry in folder.glob(f".{name or '*'}.tmp-*"):
        pid = entry.name.rpartition("-")[2]
        if pid.isdigit() and entry.is_dir() and not entry.is_symlink() and not process_alive(int(pid)):
            stale.append(entry)
    return sorted(stale)


def _cache_entries(settings: Settings) -> list[tuple[Path, dict[str, Any] | str]]:
    """Each model folder of the cache with its manifest, or why the manifest cannot be read."""
    root = settings.model_cache
    if not root.is_dir():
        return []
    found: list[tuple[Path, dict[str, Any] | str]] = []
    for child in sorted(root.iterdir()):
        if _dangling(child) and not child.name.startswith("."):
            # a cache copied without its .versions folder (cp -r) was "No exported models" without a word
            found.append((child, f"It is {_dangling_reason(child)}"))
        elif child.is_dir() and (child / MANIFEST).is_file() and not child.name.startswith("."):
            try:
                manifest = read_manifest(child)
            except ModelIntegrityError as exc:
                found.append((child, str(exc)))
                continue
            found.append((child, size_problem(child, manifest) or manifest))
    return found


def _dangling(entry: Path) -> bool:
    """Whether ``entry`` is a link to nothing (a cache copied without its .versions folder)."""
    return entry.is_symlink() and not entry.exists()


def _dangling_reason(entry: Path) -> str:
    """What a link to nothing is, as `models`, `doctor` and chat say it."""
    return (f"a link to {os.readlink(entry)}, which is missing (a copy of the model cache made without its "
            ".versions folder? cp -a copies both).")


def _version_folder(cache: Path, name: str) -> Path:
    """The folder a model's files are read from: its active version's own folder when the name is
    a version link (so a switch while it loads cannot mix two versions), else the entry itself."""
    version = linked_version(cache, name)
    return versions_folder(cache, name) / version if version else cache / name


def require_kind(info: ModelInfo, kind: str, hint: str = "") -> ModelInfo:
    """``info`` when it is a model of ``kind`` (llm or embedding).

    Raises:
        UsageError: it is another kind (exit 2): the user named the wrong model, the files are fine.
    """
    if info.kind == kind:
        return info
    actual = KIND_NAMES.get(info.kind, f"a model of kind {info.kind!r}")
    raise UsageError(f"{info.name} is {actual}, not {KIND_NAMES.get(kind, kind)}.",
                     hint=hint or f"{_PICK.get(kind, 'Pick another model')} (`pgpt-tui models` lists each "
                                       "model's kind).")


_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


def is_plain_name(name: str) -> bool:
    """Whether ``name`` can only mean an entry of the model cache: letters, digits and ``._+-``,
    no ``..`` and no path. A server's client (a request's ``model``) and an export's ``--name``
    must give one: a path loaded, or wrote, a model anywhere on the disk."""
    return _PLAIN_NAME.fullmatch(name) is not None and ".." not in name


def plain_name(text: str) -> str:
    """``text`` (a file or folder name) made a name :func:`is_plain_name` accepts, as an export
    derives it: accents folded to ASCII ("é" -> "e"), any other character outside ``._+-`` and
    repeats of them made one "-". A derived "g-llama tiny é" had passed into the cache, where
    `--name` and the server refuse it."""
    import unicodedata

    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    name = re.sub(r"[^A-Za-z0-9._+-]+", "-", ascii_text)
    name = re.sub(r"([._+-])[._+-]+", r"\1", name).strip("._+-")[:100].strip("._+-")
    return name or "model"


def find_model(settings: Settings, name: str) -> ModelInfo:
    """The exported model called ``name`` (a folder name, ``name@version``, or a path to a model folder).

    Raises:
        ModelNotFoundError: no such model (VersionNotFoundError: no such version).
    """
    base, version = parse_ref(name)
    if version and "/" not in name:
        chosen = find_version(settings, base, version)
        return ModelInfo(base, chosen.path, chosen.manifest)
    candidate, cached = Path(name).expanduser(), settings.model_cache / name
    # a plain name is the model cache's first: a folder of that name where the command runs took its place (t62)
    known = is_plain_name(name) and ((cached / MANIFEST).is_file() or _dangling(cached))
    folder = candidate if candidate.is_dir() and not known else cached
    if folder.parent == settings.model_cache and _dangling(folder):
        # chat said "no exported model called ..." while `models` and `doctor` listed it as damaged
        raise ModelIntegrityError(
            f"The model {name!r} is damaged: it is {_dangling_reason(folder)}",
            hint=f"Remove it with `pgpt-tui models --delete {name}` and export it again, or copy the model cache "
                 "again with cp -a.")
    if not (folder / MANIFEST).is_file():
        models = list_models(settings)
        known = ", ".join(f"{m.name} ({'chat' if m.kind == 'llm' else m.kind})" for m in models) or "none yet"
        # `--model tiny-llama` for tiny-llama-int4: `--name tiny-llama` never makes a name without its type (t62)
        typed = [m.name for m in models if m.name.startswith(f"{name}-")]
        hint = (f"An export's name ends with its type: did you mean {' or '.join(typed)}?" if typed else
                "Check the name (`pgpt-tui models` lists them), or export that model with `pgpt-export SOURCE "
                "--name NAME`." if models else None)
        raise ModelNotFoundError(f"There is no exported model called {name!r} (exported: {known}).", hint=hint)
    label = folder.name
    if folder.parent == settings.model_cache:
        folder = _version_folder(settings.model_cache, label)
    return ModelInfo(label, folder, read_manifest(folder))


def active_chat_model(settings: Settings) -> ModelInfo:
    """The model chat uses: PGPT_MODEL, else the configured one, else the best default.

    Raises:
        ConfigError: the config file cannot be read, or names a model that is not a chat model.
        ModelNotFoundError: the model named is not exported (the config file's name says so).
    """
    if settings.model:
        try:
            return find_model(settings, settings.model)
        except ModelNotFoundError as exc:  # say where the name came from: the config's choice is overridden
            unset = "leave out --model" if settings.named("PGPT_MODEL") == "--model" else "unset PGPT_MODEL"
            hint = (f"{unset[0].upper() + unset[1:]} to use the active chat model, or name an exported chat model "
                    "(`pgpt-tui models` lists them)." if list_models(settings) else
                    f"Export that model (`pgpt-export SOURCE --name NAME`), or {unset} and run "
                    "`pgpt-export --default` for the built-in models.")
            raise ModelNotFoundError(f"{settings.named('PGPT_MODEL')} names a model that is not exported. {exc}",
                                     hint=hint) from None
    name = read_config(settings).get("active_model", "")
    if name:
        return _configured_model(settings, name)
    fallback = _fallback_chat_model(settings)
    if fallback is not None:
        return fallback
    damaged = damaged_models(settings)
    if damaged:  # "nothing exported" would send the user to an export that says "already exported"
        name, why = damaged[0]
        entry = settings.model_cache / name
        raise ModelIntegrityError(f"No usable chat model: {why}", folder=entry, hint=(
            f"Remove the link with `pgpt-tui models --delete {name}` and export the model again."
            if _dangling(entry) else None))
    raise ModelNotFoundError(f"No chat model has been exported yet into {settings.models_where()}.",
                             hint="If your models are in another folder, set PGPT_MODEL_CACHE to it (a cron job does "
                                  "not read your shell's profile); else run `pgpt-export --default` (or `pgpt-tui "
                                  "models` to list exported models).")


def _fallback_chat_model(settings: Settings, excluding: str = "") -> ModelInfo | None:
    """The chat model when none is chosen: the built-in default's best dtype, else the first
    exported LLM (``excluding`` one about to be deleted); None when there is none."""
    models = {m.name: m for m in list_models(settings) if m.kind == "llm" and m.name != excluding}
    for dtype in DEFAULT_CHAT_DTYPES:
        if f"{DEFAULT_LLM}-{dtype}" in models:
            return models[f"{DEFAULT_LLM}-{dtype}"]
    return next(iter(models.values()), None)


def chat_model_after_deleting(settings: Settings, name: str) -> str:
    """The model chat switches to once the chat model ``name`` is deleted ('' when none is left:
    the built-in default is prepared again). The Models panel says it before asking."""
    fallback = _fallback_chat_model(settings, excluding=name)
    return fallback.name if fallback is not None else ""


def _configured_model(settings: Settings, name: str) -> ModelInfo:
    """The chat model the config file names; errors say that the name came from that file."""
    file = settings.config_file
    repair = "Choose another with `pgpt-tui models --use NAME` (it rewrites the file)"
    try:
        model = find_model(settings, name)
    except ModelNotFoundError as exc:
        why = str(exc)
        raise type(exc)(f"{file} names {name!r} as the active chat model, but {why[:1].lower()}{why[1:]}",
                        hint=f"{repair}, or export that model again with pgpt-export.") from None
    try:
        return require_kind(model, "llm", hint=f"{repair}.")
    except UsageError as exc:
        raise ConfigError(f"{file} names {name!r} as the active chat model: {exc}", hint=exc.hint) from None


def set_active_model(settings: Settings, name: str) -> ModelInfo:
    """Make ``name`` the chat model of this home and return it; this also repairs a damaged config file."""
    model = require_kind(find_model(settings, name), "llm",
                         hint="Choose a chat model: kind llm in `pgpt-tui models` and in the Models list (F3).")
    # the config keeps a name: a folder's base name was another model's, or none (t62); an entry of the
    # cache may be a link to a model elsewhere (a shared export), named as such or by its path
    entry = settings.model_cache / model.name
    named = is_plain_name(name) or Path(name).expanduser().resolve() == entry.resolve()
    if not (named and (entry / MANIFEST).is_file()):
        raise UsageError(f"{name} is a model folder outside the model cache ({settings.model_cache}); the active "
                         "chat model is one of the cache's, kept by its name.",
                         hint=f"Use it for one command with `--model {name}` (or PGPT_MODEL), or export the model "
                              "into the model cache (pgpt-export without -o) and pick it by name.")
    config = read_config(settings, repair=True)
    config["active_model"] = model.name
    write_config(settings, config)
    return model


@dataclass(frozen=True)
class DeletedModel:
    """What ``delete_model`` removed, and whether the chat has to load another model."""

    name: str
    size_bytes: int
    was_active: bool  # chat used it (chosen in the config or picked by default)
    link_only: bool  # the cache held a symlink: only the link went, its target stays


def delete_model(settings: Settings, name: str) -> DeletedModel:
    """Delete the exported model ``name`` from the model cache.

    Only an entry directly inside ``settings.model_cache`` whose manifest pgpt wrote is deleted,
    with all its versions; any other symlink there is removed as a link, never followed, so
    nothing outside the cache goes.
    When the config names it as the active model, that choice is cleared (chat falls back to
    the default).

    Args:
        settings: The settings whose model cache holds the model.
        name: The model's folder name, as `pgpt-tui models` lists it.

    Returns:
        What was deleted, and whether it was the chat model.

    Raises:
        ModelNotFoundError: ``name`` is not an exported model of the cache; nothing was deleted.
        UsageError: a running pgpt-serve has one of its versions loaded; nothing was deleted.
    """
    from pgpt.runtime.versions import refuse_if_served

    entry = _export_folder(settings, name)
    refuse_if_served(settings, name)  # an app has no such record: only a server's loaded models are known
    versions = versions_folder(settings.model_cache, name) if linked_version(settings.model_cache, name) else None
    if versions is not None and not versions.is_dir():  # the link's versions are gone: the link alone goes
        versions = None
    try:
        size = ModelInfo(name, entry, read_manifest(entry)).size_bytes
        if versions is not None:  # every version goes with the name
            size = sum(ModelInfo(name, v, read_manifest(v)).size_bytes
                       for v in versions.iterdir() if (v / MANIFEST).is_file() and not v.name.startswith("."))
    except ModelIntegrityError:  # a damaged export: what is on disk
        folder = versions or entry
        size = 0 if folder.is_symlink() else sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    was_active = chat_model_name(settings) == name
    config = read_config(settings, repair=True)
    if config.get("active_model") == name:
        del config["active_model"]
        write_config(settings, config)
    link_only = entry.is_symlink() and versions is None
    if entry.is_symlink():
        entry.unlink()
    # Renamed first: a hidden name is never listed, so a half-deleted folder never looks usable.
    for folder in [] if link_only else [versions or entry]:
        doomed = folder.with_name(f".{name}.deleting-{os.getpid()}")
        os.replace(folder, doomed)
        shutil.rmtree(doomed)
    return DeletedModel(name, size, was_active, link_only)


def _export_folder(settings: Settings, name: str) -> Path:
    """The cache entry called ``name`` if it is a pgpt export, else ModelNotFoundError."""
    hint = "Run `pgpt-tui models` to list the exported models; only those can be deleted."
    if not name or name != Path(name).name or name.startswith("."):
        raise ModelNotFoundError(f"{name!r} is not a model name (a folder name from `pgpt-tui models`, "
                                 f"not a path); nothing was deleted.", hint=hint)
    entry = settings.model_cache / name
    if _dangling(entry):  # a link into a missing .versions: listed as damaged
        return entry
    try:
        manifest = read_manifest(entry) if entry.is_dir() else {}
    except ModelIntegrityError:
        # A damaged export (its manifest unreadable) must be removable, or nothing else gets rid of it.
        manifest = {"format_version": "damaged"} if (entry / MANIFEST).is_file() else {}
    if not entry.exists():  # a typo said "... is not a model exported by pgpt (no pgpt manifest)"
        known = ", ".join(m.name for m in list_models(settings)) or "none"
        raise ModelNotFoundError(f"There is no exported model called {name!r} (exported: {known}); nothing was "
                                 "deleted.", hint=hint)
    if "format_version" not in manifest:
        raise ModelNotFoundError(f"{entry} is not a model exported by pgpt (no pgpt manifest); "
                                 f"nothing was deleted.", hint=hint)
    return entry


def chat_model_name(settings: Settings) -> str:
    """The name of the model chat would load now, or '' when no chat model is exported (or the
    config file naming it is damaged: loading the model reports that)."""
    try:
        return active_chat_model(settings).name
    except (ModelNotFoundError, ModelIntegrityError, ConfigError, UsageError):  # none, only damaged ones
        return ""
