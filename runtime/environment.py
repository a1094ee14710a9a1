"""The ``PGPT_*`` environment of a pgpt program: the process environment over the ``PGPT_`` lines
of the ``.env`` file in the working folder, which ``pgpt-tui`` and ``pgpt-serve`` both read, and a
warning for each ``PGPT_`` name that no pgpt program reads (``PGPT_MODLE=... pgpt-tui chat`` ran
the active model without a word).

The names are listed here, in one place, because ``pgpt-tui`` must not import the server's code
to know the server's names; a test checks the list against every ``PGPT_`` name the sources read.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pgpt.runtime.errors import ConfigError

# Read by Settings.from_env (runtime/settings.py): every program.
CLIENT_NAMES = ("PGPT_HOME", "PGPT_MODEL_CACHE", "PGPT_PROVIDER", "PGPT_THREADS", "PGPT_MODEL", "PGPT_EMBEDDER",
                "PGPT_CACHE_SIZE_MB", "PGPT_READ_TIMEOUT_S", "PGPT_READ_MEMORY_MB", "PGPT_SERVER", "PGPT_API_KEY",
                "PGPT_API_KEY_FILE", "PGPT_KEEP_VERSIONS", "PGPT_SERVER_RETRIES")
# Read by serve_settings (serve/config.py): pgpt-serve only.
SERVE_NAMES = ("PGPT_HOST", "PGPT_PORT", "PGPT_PARALLEL", "PGPT_CONTEXT", "PGPT_MAX_QUEUE", "PGPT_MAX_TOKENS_CAP",
               "PGPT_KEEP_ALIVE", "PGPT_MAX_LOADED", "PGPT_ALLOWED_HOSTS", "PGPT_CORS_ORIGINS", "PGPT_MAX_BODY_MB",
               "PGPT_CLIENT_TIMEOUT", "PGPT_KEEP_ALIVE_FIXED")
# Read by the test suite (tests/conftest.py, tests/snapshots.py): set in a developer's shell, not misspelled.
TEST_NAMES = ("PGPT_TEST_MODEL_CACHE", "PGPT_TEST_WORKERS", "PGPT_UPDATE_SNAPSHOTS")
KNOWN_NAMES = frozenset((*CLIENT_NAMES, *SERVE_NAMES, *TEST_NAMES))
CLOSE_RATIO = 0.8  # difflib's, as for a request's fields: PGPT_MODLE, PGPT_THREAD, PGPT_PARALEL
_LONGEST_NAME = 60  # a name is shown; a very long one is cut


def close_name(name: str, known: Iterable[str], cutoff: float = CLOSE_RATIO) -> str:
    """The known name that ``name`` probably misspells (a case, "-" or "_" variant, or a close
    spelling), or ''. Shared by the server's request fields and the settings' names."""
    known = list(known)
    plain = name.lower().replace("_", "").replace("-", "")
    same = [known_name for known_name in known if known_name.lower().replace("_", "") == plain]
    close = difflib.get_close_matches(name, known, n=1, cutoff=cutoff)
    return (same or close or [""])[0]


@dataclass(frozen=True)
class Environment:
    """The values a program's settings are built from, and where the ``.env`` ones came from.

    Attributes:
        values: The process environment over the ``PGPT_`` values of the ``.env`` file.
        dotenv: The ``.env`` file looked at (it may not exist).
        from_dotenv: The names whose value came from that file (the environment did not set them).
        dotenv_names: Every ``PGPT_`` name the file sets, those the environment overrides too.
    """

    values: dict[str, str]
    dotenv: Path
    from_dotenv: frozenset[str] = frozenset()
    dotenv_names: frozenset[str] = frozenset()
    unread: frozenset[str] = frozenset()  # Hugging Face and network names the file sets, which it cannot set

    def sources(self) -> dict[str, str]:
        """Where the settings that did not come from the environment came from, for messages."""
        return {name: str(self.dotenv) for name in self.from_dotenv}

    def warnings(self) -> list[str]:
        """One line for each ``PGPT_`` name set that no pgpt program reads, with the name it
        probably means; never its value, which may be a key."""
        from pgpt.runtime.sanitize import strip_controls

        environ = [name for name in self.values if name not in self.from_dotenv]
        found = [(name, "") for name in environ if _unknown(name)]
        found += [(name, f" in {self.dotenv}") for name in sorted(self.dotenv_names - set(environ)) if _unknown(name)]
        lines = []
        for name, where in found:
            shown = strip_controls(name)[:_LONGEST_NAME]
            meant = close_name(name, sorted(KNOWN_NAMES - set(TEST_NAMES)))
            guess = f" (did you mean {meant}?)" if meant else ""
            lines.append(f"{shown}{where} is not a pgpt setting{guess}; it is ignored")
        # the token was read from the same file, the mirror silently not: "set HF_ENDPOINT to a mirror" (t48)
        lines += [f"{name} in {self.dotenv} is not read from there (the Hugging Face client reads it from the "
                  "environment only): export it in the shell, or put it in the service's environment file"
                  for name in sorted(self.unread)]
        return lines

    def explain(self, error: ConfigError) -> ConfigError:
        """``error`` saying that the value it names came from the ``.env`` file, when it did
        ("PGPT_THREADS='abc' is not a whole number" sent the user looking in the environment)."""
        from pgpt.runtime.errors import ConfigError

        text = str(error)
        name = next((n for n in sorted(self.from_dotenv, key=len, reverse=True) if n in text), "")
        if not name:
            return error
        explained = ConfigError(f"{text} ({name} is set in {self.dotenv}.)", hint=error.hint)
        explained.__cause__ = error.__cause__
        return explained


def read_environment(cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> Environment:
    """The ``PGPT_`` values of ``cwd``'s ``.env`` file (the working folder's), overridden by the
    process environment (``environ``)."""
    from pgpt.runtime.settings import read_dotenv

    environ = os.environ if environ is None else environ
    path = (cwd or Path.cwd()) / ".env"
    found = read_dotenv(path)
    dotenv = {k: v for k, v in found.items() if k.upper().startswith("PGPT_")}
    unread = frozenset(name for name in found if name in ENVIRONMENT_ONLY and name not in environ)
    return Environment({**dotenv, **environ}, path, frozenset(dotenv) - set(environ), frozenset(dotenv), unread)


# What huggingface_hub and requests read from the process environment only, set in .env to no effect
ENVIRONMENT_ONLY = frozenset({"HF_ENDPOINT", "HF_HUB_OFFLINE", "HF_HOME", "HF_HUB_CACHE", "HTTPS_PROXY", "HTTP_PROXY",
                              "NO_PROXY", "https_proxy", "http_proxy", "no_proxy", "REQUESTS_CA_BUNDLE"})


def _unknown(name: str) -> bool:
    return name.upper().startswith("PGPT_") and name not in KNOWN_NAMES
