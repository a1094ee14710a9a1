"""The user's choices file (``PGPT_HOME/config.json``: the active chat model, whether the first-start
tip was shown): read with a named error for damage, written atomically."""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from pgpt.runtime.errors import ConfigError
from pgpt.runtime.settings import Settings, ensure_private_dir, write_private
from pgpt.runtime.storage_faults import storage_fault


def read_config(settings: Settings, repair: bool = False) -> dict[str, Any]:
    """The user's choices (JSON); no file counts as empty.

    Args:
        settings: The settings whose home holds the file.
        repair: For a caller about to rewrite the file: a damaged file counts as empty, and an
            active model that is not a name is left out.

    Raises:
        ConfigError: the file is not a JSON object, or its active model is not a name (unless
            ``repair``): ignored, the user's model choice would be lost without a word.
        StorageError: the file cannot be read (permissions).
    """
    file = settings.config_file
    try:
        data: Any = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except OSError as exc:  # no permission is a StorageError; anything else (a folder there) is damage
        fault = storage_fault(exc, file, "Reading the settings")
        if fault is not None:
            raise fault from exc
        data, problem = None, f"it cannot be read ({exc.strerror})"
    except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
        data, problem = None, f"it is not valid JSON ({exc})"
    else:
        problem = "" if isinstance(data, dict) else "it holds no JSON object ({...})"
    if isinstance(data, dict) and not isinstance(data.get("active_model", ""), str):
        problem = f'"active_model" must be a model name in quotes, not {json.dumps(data["active_model"])}'
        data = {key: value for key, value in data.items() if key != "active_model"}
    if not problem or repair:
        return data if isinstance(data, dict) else {}
    raise ConfigError(f"The settings file {file} is damaged: {problem}.",
                      hint="Choose the chat model again with `pgpt-tui models --use NAME` (it rewrites the file), "
                           "or fix the file, or delete it (it only holds the active model and whether the "
                           "first-start tip was shown).")


def write_config(settings: Settings, config: dict[str, Any]) -> None:
    """Write the user's choices atomically (temporary file + rename; no temporary is left behind).

    Raises:
        StorageError: the home folder cannot be written (disk full, read-only, permissions).
    """
    tmp = settings.config_file.with_suffix(f".{os.getpid()}.tmp")
    try:
        ensure_private_dir(settings.home)
        write_private(tmp, json.dumps(config, indent=2))
        os.replace(tmp, settings.config_file)
    except OSError as exc:
        with contextlib.suppress(OSError):  # on a read-only disk it was never made
            tmp.unlink(missing_ok=True)
        raise storage_fault(exc, settings.home, "Saving the settings") or exc from exc
