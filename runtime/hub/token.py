"""The Hugging Face token: where it comes from, what it overrides, storing and masking it.

Order (the first one found is used, as huggingface_hub itself would): ``HF_TOKEN``, the legacy
``HUGGING_FACE_HUB_TOKEN``, a ``.env`` file in the working folder, the token stored by
``pgpt-tui token set``, the token file of ``huggingface-cli login``. ``HUGGINGFACE_HUB_TOKEN``
(no underscore between HUGGING and FACE, common in docker-compose files) is read by nothing:
it is detected so that the user is told.

The token itself never leaves this module except as the ``token=`` argument of huggingface_hub
calls: :func:`mask` is what every message shows.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pgpt.runtime.errors import ConfigError
from pgpt.runtime.storage_faults import storage_fault
from pgpt.runtime.settings import Settings, ensure_private_dir, read_dotenv

ENV_NAMES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
MISSPELLED = "HUGGINGFACE_HUB_TOKEN"
TOKEN_FILE = "hf_token"
_TOKEN_CHARACTERS = re.compile(r"^[A-Za-z0-9_\-]*$")
# A Hugging Face user access token is "hf_" and 34 letters and digits: 37 characters. The bounds
# are looser (8-256): a mirror or a self-hosted hub may issue tokens of another length.
TOKEN_LENGTH, _MIN_LENGTH, _MAX_LENGTH = 37, 8, 256


@dataclass(frozen=True)
class TokenChoice:
    """The token in effect and what else was found.

    Attributes:
        token: The token value, or "" when none was found (never print it: use ``masked``).
        source: Where it came from, e.g. "HF_TOKEN", ".env (./.env)", "pgpt token file".
        overridden: Other sources that hold a token but lose to ``source``.
        warnings: Things to tell the user (a misspelled variable, a bad file mode).
        unreadable: Token files that exist but cannot be read, each with why; a token there
            would otherwise go unnoticed, so `token status` fails on them.
        malformed: The token cannot be a Hugging Face token (a space, a wrong length): said in
            ``warnings``, and `token status` fails on it as on a token the Hub rejects.
    """

    token: str
    source: str
    overridden: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    malformed: bool = False

    @property
    def masked(self) -> str:
        """The token as it may be shown: ``hf_...`` and its last 4 characters."""
        return mask(self.token)


def mask(token: str) -> str:
    """``hf_...wxyz``: enough to tell two tokens apart, never enough to use one."""
    if not token:
        return "(none)"
    return f"hf_...{token[-4:]}" if len(token) > 8 else "hf_..."


def token_path(settings: Settings) -> Path:
    """pgpt's own token file (mode 0600 in a 0700 folder)."""
    return settings.home / TOKEN_FILE


def find_token(settings: Settings, environ: dict[str, str] | None = None, cwd: Path | None = None) -> TokenChoice:
    """Look through every source in order; the first token found wins."""
    env = os.environ if environ is None else environ
    found: list[tuple[str, str]] = []
    for name in ENV_NAMES:
        if env.get(name, "").strip():
            found.append((name, env[name].strip()))
    dotenv = (cwd or Path.cwd()) / ".env"
    for name, value in read_dotenv(dotenv).items():
        if name in ENV_NAMES and value:
            found.append((f".env ({dotenv}: {name})", value))
    unreadable: list[str] = []
    for label, path in (("pgpt token file", token_path(settings)), ("huggingface-cli login", _hub_token_file(env))):
        value, problem = _read_token_file(path)
        if value:
            found.append((f"{label} ({path})", value))
        if problem:
            unreadable.append(f"the {label} {path} cannot be read ({problem})")
    warnings = []
    if env.get(MISSPELLED):
        warnings.append(f"{MISSPELLED} is set but nothing reads that name (huggingface_hub reads HF_TOKEN, "
                        f"and the older HUGGING_FACE_HUB_TOKEN); rename it to HF_TOKEN.")
    if not found:
        return TokenChoice("", "none", [], warnings, unreadable)
    source, token = found[0]
    overridden = [name for name, value in found[1:]]
    try:  # `token set` refuses such a text; one from HF_TOKEN or a file was used without a word
        checked_token(token)
    except ConfigError as exc:  # its message gives lengths and rules, never the text
        warnings.append(f"the token from {source.split(' (')[0]} cannot be a Hugging Face token: {exc} "
                        "The Hub will refuse it; set it again (`pgpt-tui token set`, or HF_TOKEN).")
        return TokenChoice(token, source, overridden, warnings, unreadable, malformed=True)
    return TokenChoice(token, source, overridden, warnings, unreadable)


def checked_token(text: str) -> str:
    """The token without surrounding whitespace, once it is known to look like a token.

    Callers check the shape before sending the text anywhere (a pasted line with spaces or
    control characters would not even make a valid HTTP header).

    Raises:
        ConfigError: the text does not look like a token.
    """
    token = text.strip()
    again = "Copy it again from https://huggingface.co/settings/tokens (its copy button takes all of it)."
    # The messages give lengths, never the text: it may be most of a real token.
    if not token:
        raise ConfigError("No token was given: the input was empty.", hint=again)
    if not _TOKEN_CHARACTERS.match(token):
        raise ConfigError("That does not look like a Hugging Face token (letters, digits, _ and -, no spaces).",
                          hint=again)
    if len(token) < _MIN_LENGTH:
        raise ConfigError(f"That token is too short: {len(token)} characters, where a Hugging Face token has "
                          f"{TOKEN_LENGTH} (hf_ and 34 letters and digits).", hint=again)
    if len(token) > _MAX_LENGTH:
        raise ConfigError(f"That is too long for a Hugging Face token: {len(token)} characters, where a token has "
                          f"{TOKEN_LENGTH}.", hint=again)
    return token


def store_token(settings: Settings, token: str) -> Path:
    """Write the token to pgpt's token file: 0600, atomic, never through a symlink.

    Raises:
        ConfigError: the text does not look like a token.
        StorageError: the home folder cannot be written (disk full, read-only); nothing is left behind.
    """
    token = checked_token(token)
    target = token_path(settings)
    tmp = target.with_name(f".{TOKEN_FILE}.{os.getpid()}.tmp")
    try:
        ensure_private_dir(settings.home)
        if target.is_symlink():
            target.unlink()  # never write through a link planted to leak the token elsewhere
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(tmp, flags, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(token + "\n")
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise storage_fault(exc, settings.home, "Storing the token") or exc from exc
    return target


def clear_token(settings: Settings) -> bool:
    """Remove pgpt's token file; True when there was one."""
    target = token_path(settings)
    if target.exists() or target.is_symlink():
        target.unlink()
        return True
    return False


@contextmanager
def without_token_variables() -> Iterator[None]:
    """Remove the token variables from this process's environment for the ``with`` block.

    Child processes started inside the block (the benchmark's workers) inherit an environment
    without the token; the variables come back afterwards for this process's own Hub calls.
    """
    saved = {name: os.environ.pop(name) for name in (*ENV_NAMES, MISSPELLED) if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def _read_token_file(path: Path) -> tuple[str, str]:
    """The token in ``path`` ('' when there is none) and why it cannot be read ('' when it can)."""
    try:
        if path.is_symlink() or not path.is_file():
            return "", ""
        return path.read_text(encoding="utf-8").strip(), ""
    except (FileNotFoundError, NotADirectoryError):
        return "", ""
    except OSError as exc:
        return "", exc.strerror or type(exc).__name__
    except UnicodeDecodeError:
        return "", "it is not text"


def _hub_token_file(env: dict[str, str] | os._Environ[str]) -> Path:
    if env.get("HF_TOKEN_PATH"):
        return Path(env["HF_TOKEN_PATH"]).expanduser()
    hf_home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(hf_home).expanduser() / "token"
