"""Access preflight for a Hugging Face repo: one status that names the exact problem.

The statuses follow what the Hub actually answers (headers ``X-Error-Code`` and
``X-Error-Message``): a gated repo gives 401 ``GatedRepo`` without a token and 403 ``GatedRepo``
with a token that is not on its list; a bad token gives 401 "Invalid credentials in
Authorization header"; a missing or private repo 401/404 ``RepoNotFound``. A 403 without a hub
error code is not the Hub at all but a firewall or proxy page.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from pgpt.runtime.hub.token import TokenChoice

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_TIMEOUT_S = 8.0
STATUSES = ("ok", "gated_no_token", "gated_not_accepted", "invalid_token", "not_found", "blocked",
            "network_error", "rate_limited")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".h5", ".msgpack")
WANTED_SUFFIXES = (".safetensors", ".json", ".jinja", ".txt", ".model")
INVALID_CREDENTIALS = "invalid credentials"

# Ungated models of similar size and purpose, offered when a repo is gated.
UNGATED_ALTERNATIVES: dict[str, list[str]] = {
    "small chat (< 2B)": ["HuggingFaceTB/SmolLM2-1.7B-Instruct", "Qwen/Qwen2.5-1.5B-Instruct",
                          "HuggingFaceTB/SmolLM2-360M-Instruct"],
    "chat (3-4B)": ["Qwen/Qwen2.5-3B-Instruct", "microsoft/Phi-3.5-mini-instruct"],
    "chat (7-8B)": ["Qwen/Qwen2.5-7B-Instruct", "allenai/OLMo-2-1124-7B-Instruct"],
    "embeddings": ["sentence-transformers/all-MiniLM-L6-v2", "BAAI/bge-small-en-v1.5"],
}


@dataclass
class AccessReport:
    """What ``pgpt-tui check`` prints (``--json`` prints these fields)."""

    repo: str
    status: str
    message: str
    url: str
    revision: str = "main"
    commit: str = ""
    gated: bool = False
    license: str = ""
    architecture: str = ""
    architecture_supported: bool | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    total_bytes: int = 0
    pickle_files: list[str] = field(default_factory=list)  # in the repo, never fetched
    token_source: str = "none"
    alternatives: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    cause: str = ""  # a network error's own cause, when one is known

    def as_json(self) -> dict[str, Any]:
        """The report as a JSON-ready dict (status, message and url first)."""
        return asdict(self)


def require_repo_id(repo: str) -> None:
    """Refuse what is no Hub repo id before any request: a local file or folder, a GGUF's name, a
    URL or a malformed id (huggingface_hub raised HFValidationError, shown as an unexpected error).

    Raises:
        UsageError: naming the cause and the next step (a local model is exported, not downloaded).
    """
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    from pgpt.runtime.errors import UsageError

    local = repo.lower().endswith((".gguf", ".onnx", ".safetensors")) or os.path.exists(os.path.expanduser(repo))
    path = os.path.expanduser(repo)
    if local and not (repo.lower().endswith(".gguf") or os.path.isfile(os.path.join(path, "config.json"))):
        # "export it as int4" was said of a .txt file too
        raise UsageError(f"{repo} is a file or folder on this machine, and not a model pgpt can export.",
                         hint="pgpt exports a .gguf file or a Hugging Face model folder (config.json and "
                              "safetensors weights) with pgpt-export; to download one, give its Hugging Face "
                              "repo id (owner/name), such as Qwen/Qwen2.5-1.5B-Instruct.")
    if local and not os.path.exists(path):  # it said "a model on this machine ... export it" of a typo
        raise UsageError(f"{repo} does not exist, and it is not a Hugging Face repo id (owner/name).",
                         hint="Check the path, or give a repo id such as Qwen/Qwen2.5-1.5B-Instruct.")
    if local:
        raise UsageError(f"{repo} is a model on this machine, not a Hugging Face repo id (owner/name).",
                         hint=f"Export it instead of downloading it: pgpt-export {repo} --dtype int4 (int8 for "
                              "more quality), or in the app type its path on the Models screen (F3) and press ^b; "
                              "it then appears in `pgpt-tui models` and the Models list, where Enter makes it the "
                              "chat model.")
    try:
        validate_repo_id(repo)
    except HFValidationError:
        # a page's address pasted: its id is named ("Copy the id from the model's page" was all it said, t48)
        pasted = re.match(r"(?:https?://)?(?:www\.)?(?:huggingface\.co|hf\.co)/([\w.-]+/[\w.-]+)", repo)
        meant = pasted.group(1) if pasted else repo.strip("/") if repo.count("/") == 2 and repo.endswith("/") else ""
        raise UsageError(f"'{repo}' is not a Hugging Face repo id: it has the form owner/name, such as "
                         "Qwen/Qwen2.5-1.5B-Instruct." + (f" Did you mean {meant}?" if meant else ""),
                         hint="Copy the id from the model's page on huggingface.co.") from None


def hub_endpoint(environ: dict[str, str] | None = None) -> str:
    """The endpoint in use: ``HF_ENDPOINT`` (a mirror) or huggingface.co. For requests only: what
    is shown or logged is ``shown_endpoint``'s (a mirror's URL may hold a password)."""
    env = os.environ if environ is None else environ
    return (env.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def hub_offline(value: str | None = None) -> bool:
    """Whether HF_HUB_OFFLINE (or ``value``, as a report shows it) switches the network off, read as
    huggingface_hub reads it ("ON" too)."""
    given = os.environ.get("HF_HUB_OFFLINE", "") if value is None else value
    return given.strip().upper() in ("1", "ON", "YES", "TRUE")


def shown_endpoint(environ: dict[str, str] | None = None) -> str:
    """``hub_endpoint`` with a password in it masked (``http://bob:***@mirror``): doctor, F2 and every
    network error printed a mirror's password in full (a tester's)."""
    return mask_credentials(hub_endpoint(environ))


def mask_credentials(url: str) -> str:
    """``http://user:secret@host:3128`` -> ``http://user:***@host:3128``."""
    return re.sub(r"(//[^:/@]+):[^@]*@", r"\1:***@", url)


def endpoint_has_credentials() -> bool:
    """Whether HF_ENDPOINT names a user (and password): requests then sends them in place of the token."""
    return re.match(r"[a-z][a-z0-9+.-]*://[^/@]+@", hub_endpoint(), re.IGNORECASE) is not None


def check_access(repo: str, token: TokenChoice, revision: str | None = None,
                 architecture_check: Callable[[str], str] | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S) -> AccessReport:
    """Ask the Hub whether ``repo`` can be downloaded with ``token``, and what it would fetch.

    Args:
        repo: A repo id such as ``HuggingFaceTB/SmolLM2-135M-Instruct``.
        token: The token in effect (``find_token``); sent only to the configured endpoint.
        revision: Branch, tag or commit (default ``main``).
        architecture_check: Maps a model_type to "" (exportable) or the reason it is not.
        timeout: Seconds per request, so a dead network answers in bounded time.
    """
    require_repo_id(repo)
    started = time.monotonic()
    endpoint = hub_endpoint()
    report = AccessReport(repo=repo, status="ok", message="", url=f"{shown_endpoint()}/{repo}",
                          revision=revision or "main", token_source=token.source)
    if token.malformed and any(c.isspace() or not c.isprintable() for c in token.token):
        # not sent: no HTTP header holds it (a newline was a "network error" with proxy advice, t48); a
        # token of other characters is sent, as a mirror may issue such tokens
        report.status = "invalid_token"
        report.message = describe(report, token)
        return report
    try:
        info = _model_info(repo, revision, token, endpoint, timeout)
        _fill_from_info(report, info, architecture_check)
        if report.files:
            _probe_file(repo, report.commit or report.revision, report.files[0]["path"], token, endpoint, timeout)
    except Exception as exc:  # every failure becomes a status; unknown ones re-raise below
        report.status = classify(exc, token)
        if report.status == "network_error" and isinstance(exc, OSError):
            from pgpt.runtime.hub.identity import unreachable_reason

            report.cause = unreachable_reason(exc)  # offline mode, the proxy, a timeout, refused
        if report.status == "rate_limited":
            report.cause = _retry_after_text(getattr(getattr(exc, "response", None), "headers", {}) or {})
        if report.status == "not_found":
            report.cause = _not_found_cause(getattr(getattr(exc, "response", None), "headers", {}) or {})
    report.message = describe(report, token)
    if report.status.startswith("gated"):
        report.alternatives = suggest_alternatives(report)
    report.elapsed_s = round(time.monotonic() - started, 2)
    return report


def _model_info(repo: str, revision: str | None, token: TokenChoice, endpoint: str, timeout: float) -> Any:
    from huggingface_hub import HfApi

    # token=False: never let the library add a token from elsewhere; ours was chosen on purpose.
    return HfApi(endpoint=endpoint).model_info(repo, revision=revision, token=token.token or False,
                                               timeout=timeout, files_metadata=True)


def _probe_file(repo: str, revision: str, path: str, token: TokenChoice, endpoint: str, timeout: float) -> None:
    """A HEAD on one file: gated repos show their metadata to anyone but refuse the files."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(repo, path, revision=revision, endpoint=endpoint)
    get_hf_file_metadata(url, token=token.token or False, timeout=timeout)


def _fill_from_info(report: AccessReport, info: Any, architecture_check: Callable[[str], str] | None) -> None:
    report.commit = info.sha or ""
    report.gated = bool(getattr(info, "gated", False))
    card = getattr(info, "card_data", None) or {}
    license_name = card.get("license") if hasattr(card, "get") else None
    tags = [t for t in (info.tags or []) if t.startswith("license:")]
    report.license = str(license_name or (tags[0].split(":", 1)[1] if tags else ""))
    config = getattr(info, "config", None) or {}
    report.architecture = str(config.get("model_type") or "")
    if architecture_check is not None and report.architecture:
        report.architecture_supported = not architecture_check(report.architecture)
    report.files = select_files(info.siblings or [])
    report.pickle_files = [s.rfilename for s in info.siblings or [] if s.rfilename.lower().endswith(PICKLE_SUFFIXES)]
    report.total_bytes = sum(f["size"] for f in report.files)


def select_files(siblings: list[Any]) -> list[dict[str, Any]]:
    """The files an export needs: safetensors weights, configs, tokenizer, chat template; never pickles."""
    chosen = []
    for sibling in siblings:
        name = sibling.rfilename
        if "/" in name or name.lower().endswith(PICKLE_SUFFIXES) or not name.endswith(WANTED_SUFFIXES):
            continue  # sub-folders hold other formats (onnx/, original/) that the export does not read
        if name.endswith(".txt") and not name.startswith(("merges", "vocab")):
            continue
        lfs = getattr(sibling, "lfs", None)
        chosen.append({"path": name, "size": int(sibling.size or (lfs.size if lfs else 0) or 0),
                       "sha256": lfs.sha256 if lfs else "", "blob_id": sibling.blob_id or ""})
    return chosen


def classify(exc: BaseException, token: TokenChoice) -> str:
    """The status for an exception from huggingface_hub or requests (see the module docstring)."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    if isinstance(exc, OfflineModeIsEnabled):
        return "network_error"
    response = getattr(exc, "response", None)
    if isinstance(exc, HfHubHTTPError) and response is not None:
        return classify_response(response.status_code, response.headers, token)
    if isinstance(exc, OSError):  # requests' ConnectionError, Timeout and SSLError are OSErrors
        return "network_error"
    raise exc


def classify_response(status: int, headers: Any, token: TokenChoice) -> str:
    """The status for one HTTP answer of the Hub (or of whatever stands in front of it)."""
    code = (headers.get("X-Error-Code") or "").strip()
    text = (headers.get("X-Error-Message") or "").lower()
    if status == 429:
        return "rate_limited"
    if status == 401 and INVALID_CREDENTIALS in text:
        return "invalid_token"
    if code == "GatedRepo":
        return "gated_not_accepted" if status == 403 and token.token else "gated_no_token"
    if code in ("RepoNotFound", "RevisionNotFound", "EntryNotFound") or status == 404:
        return "not_found"
    if status == 401:
        return "invalid_token" if token.token else "not_found"
    if status == 403:
        return "blocked"
    return "network_error"


def _not_found_cause(headers: Any) -> str:
    """What a 404 says beyond "not found": "revision" (the Hub knows the repo, not the revision), or
    "not a hub" (a mirror URL's 404 without the Hub's error headers: every repo "did not exist", and
    the user re-checked a right repo id while HF_ENDPOINT's path was wrong, t48)."""
    code = (headers.get("X-Error-Code") or "").strip()
    if code == "RevisionNotFound":
        return "revision"
    return "not a hub" if not code and os.environ.get("HF_ENDPOINT") else ""


def _not_found_message(report: AccessReport) -> str:
    repo = report.repo
    if report.cause == "revision":
        return (f"{repo} has no branch, tag or commit {report.revision!r}. Check --revision: the repo's "
                "\"Files and versions\" page lists its branches and tags.")
    if report.cause == "not a hub":
        return (f"{shown_endpoint()} answered 404 without the Hub's error headers: HF_ENDPOINT may not point at a "
                f"Hugging Face Hub or mirror (a wrong path, such as one ending in /models), or {repo} is not on "
                "it. Check the HF_ENDPOINT URL (`pgpt-tui doctor` shows it), then the repo id.")
    return (f"{repo} (revision {report.revision}) does not exist, or it is private. Check the "
            f"spelling of the repo id; a private repo needs a token of an account with access.")


def describe(report: AccessReport, token: TokenChoice) -> str:
    """One paragraph: the cause and the next step."""
    repo = report.repo
    url = f"{DEFAULT_ENDPOINT}/{repo}"  # terms are accepted on huggingface.co, never on a mirror
    source = token.source if token.token else "no token"
    messages = {
        "ok": f"{repo} is reachable with {source}: {len(report.files)} files, "
              f"{report.total_bytes / 1e6:.1f} MB to download at commit {report.commit[:12]}.",
        "gated_no_token": (f"{repo} is a gated model and no token could be read: {'; '.join(token.unreadable)}. "
                           "Make that file readable by this user, or set HF_TOKEN."  # "no token is set" (t48)
                           if token.unreadable and not token.token else
                           f"{repo} is a gated model and no token is set. Create a read token at "
                           f"https://huggingface.co/settings/tokens, run `pgpt-tui token set`, then accept "
                           f"the model's terms at {url}."),
        "gated_not_accepted": f"{repo} is gated and the token from {source} ({token.masked}) is not on its "
                              f"access list. Accept the terms at {url} while logged in as the token's owner "
                              f"(some repos also wait for the authors' approval); a fine-grained token also "
                              f"needs 'Read access to contents of all public gated repos'.",
        # "malformed": a comment or a second line pasted with it (the Hub's refusal read "create a new one", t48)
        "invalid_token": (next((w[:1].upper() + w[1:] for w in token.warnings if "cannot be a Hugging" in w),
                               f"The token from {source} cannot be a Hugging Face token.")
                          if token.malformed else
                          f"The Hub at {shown_endpoint()} refused the request: HF_ENDPOINT holds a user name and "
                          f"password, which are sent in place of the token from {source}. Take them out of "
                          "HF_ENDPOINT, or ask the mirror's owner how it wants the token sent."
                          if endpoint_has_credentials() else
                          f"The Hub rejected the token from {source} ({token.masked}) as invalid or expired. "
                          f"Create a new one at https://huggingface.co/settings/tokens and run "
                          f"`pgpt-tui token set` (and remove or fix {source} if it is an old variable)."),
        "not_found": _not_found_message(report),
        "blocked": f"Something between this machine and {shown_endpoint()} answered 403 without the Hub's "
                   f"error headers: a firewall or proxy blocks the Hub. Ask IT to allow huggingface.co and "
                   f"its file CDN (cdn-lfs*.huggingface.co, *.xethub.hf.co), set HTTPS_PROXY"
                   + (", or ask the mirror's owner to allow this machine." if os.environ.get("HF_ENDPOINT")
                      else ", or use a mirror with HF_ENDPOINT."),
        "network_error": _network_message(report.cause),
        "rate_limited": f"The Hub is rate-limiting requests (HTTP 429). {report.cause or 'Wait a few minutes'} "
                        "and try again" + ("." if token.token else "; requests with a token get a higher limit."),
    }
    return messages[report.status]


def retry_after_seconds(header: str) -> float | None:
    """The wait a Retry-After header asks for, in seconds (it is seconds or an HTTP date), or None."""
    from email.utils import parsedate_to_datetime

    value = str(header or "").strip()
    try:
        return float(value)
    except ValueError:
        try:
            return parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError):
            return None


def _retry_after_text(headers: Any) -> str:
    """"It asks to wait N s" from a 429's Retry-After, or "" when it has none."""
    seconds = retry_after_seconds(headers.get("Retry-After") or "")
    if seconds is None or seconds <= 0:
        return ""
    return f"It asks to wait {seconds:.0f} s" if seconds < 120 else f"It asks to wait {seconds / 60:.0f} minutes"


def _network_message(cause: str) -> str:
    """A network error: its own cause when known (offline mode needs no network advice), then
    what to check; a mirror is suggested only to whom does not use one."""
    if not cause.startswith(("http:", "https:")):  # a sentence starts with a capital, a URL as written
        cause = cause[:1].upper() + cause[1:]
    if cause.startswith("Offline mode"):
        return (f"{cause}. Unset HF_HUB_OFFLINE to reach {shown_endpoint()}; models already downloaded or "
                "exported still work offline.")
    first = f"{cause}." if cause else f"{shown_endpoint()} could not be reached (refused, DNS, timeout or TLS)."
    mirror = "" if os.environ.get("HF_ENDPOINT") else ", or set HF_ENDPOINT to a mirror"
    return (f"{first} Check HTTPS_PROXY / NO_PROXY, a corporate CA bundle in REQUESTS_CA_BUNDLE{mirror}. "
            "Models already downloaded or exported still work offline.")


def suggest_alternatives(report: AccessReport) -> list[str]:
    """Ungated models of a similar kind (a curated table, not a search)."""
    name = report.repo.lower()
    if any(word in name for word in ("embed", "minilm", "bge", "e5-", "gte")):
        return UNGATED_ALTERNATIVES["embeddings"]
    size = re.search(r"(?<![\w.])(\d+(?:\.\d+)?)b\b", name.split("/")[-1])  # "Llama-3.2-1B" -> 1.0
    billions = float(size.group(1)) if size else 1.0
    if billions < 2:
        return UNGATED_ALTERNATIVES["small chat (< 2B)"]
    return UNGATED_ALTERNATIVES["chat (3-4B)" if billions < 5 else "chat (7-8B)"]
