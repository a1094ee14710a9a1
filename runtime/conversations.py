"""Conversations kept on disk (one JSON file each under ``PGPT_HOME/conversations``) to reopen later.

Plain JSON, written to a temporary file and renamed, so a crash or a lost SSH session leaves the
previous version whole; files that do not parse are listed as unreadable, never loaded halfway.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pgpt.runtime.errors import PgptError
from pgpt.runtime.storage_faults import storage_fault
from pgpt.runtime.settings import Settings, ensure_private_dir

log = logging.getLogger(__name__)
_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")  # also keeps ids from naming paths outside the folder
TITLE_CHARS = 60


@dataclass
class Conversation:
    """What the chat shows (``turns``: kind + text, and the dim mark after it where one was shown)
    and what the model is sent (``context``)."""

    id: str
    created: float
    updated: float = 0.0
    mode: str = "chat"
    model: str = ""
    turns: list[dict[str, str]] = field(default_factory=list)
    context: list[dict[str, str]] = field(default_factory=list)
    name: str = ""  # given by the user (F5, r); the first question stands in until then
    left_out: int = 0  # the oldest questions of ``context`` no longer sent: they did not fit the model

    @property
    def title(self) -> str:
        """The name the user gave it, or else the first question, on one line and shortened."""
        first = self.name or next((t["text"] for t in self.turns if t.get("kind") == "user"), "(no question)")
        line = " ".join(first.split())
        return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"


def conversations_dir(settings: Settings) -> Path:
    """Where conversations are kept."""
    return settings.home / "conversations"


def new_conversation(mode: str = "chat", model: str = "") -> Conversation:
    """An empty conversation with a fresh id (sortable by time)."""
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return Conversation(id=f"{stamp}-{secrets.token_hex(3)}", created=now, mode=mode, model=model)


def save_conversation(settings: Settings, conversation: Conversation, touch: bool = True) -> Path:
    """Write ``conversation`` atomically (owner-only permissions: it holds the user's questions),
    as updated now when ``touch`` (a rename leaves it where it is in the list).

    Raises:
        StorageError: the folder cannot be written (disk full, read-only); no temporary is left.
    """
    folder = conversations_dir(settings)
    if touch:
        conversation.updated = time.time()
    path = folder / f"{_checked(conversation.id)}.json"
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    try:
        ensure_private_dir(folder)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(asdict(conversation), out, ensure_ascii=False, indent=1)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise storage_fault(exc, folder, "Saving the conversation") or exc from exc
    return path


def list_conversations(settings: Settings) -> list[Conversation]:
    """Every readable conversation, the most recently updated first (unreadable files are logged)."""
    return read_conversations(settings)[0]


def read_conversations(settings: Settings) -> tuple[list[Conversation], list[str]]:
    """Every readable conversation, the most recently updated first, and the names of the files
    that could not be read (logged with the reason; never deleted): a damaged chat vanished from
    the list without a word."""
    folder = conversations_dir(settings)
    found, unreadable = [], []
    for path in folder.glob("*.json") if folder.is_dir() else []:
        try:
            found.append(load_conversation(settings, path.stem))
        except PgptError as exc:
            log.warning("skipping %s: %s", path, exc)
            unreadable.append(path.name)
    return sorted(found, key=lambda c: c.updated, reverse=True), sorted(unreadable)


def load_conversation(settings: Settings, conversation_id: str) -> Conversation:
    """Read one conversation.

    Raises:
        PgptError: no such conversation, or its file is not a conversation (damaged or foreign).
    """
    path = conversations_dir(settings) / f"{_checked(conversation_id)}.json"
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        name = data.get("name", "")  # absent from the files of earlier releases
        left_out = data.get("left_out", 0)
        if not isinstance(name, str):
            raise TypeError("its name is not text")
        if not isinstance(left_out, int) or isinstance(left_out, bool) or left_out < 0:
            raise TypeError("its left_out is not a count")
        conversation = Conversation(**{k: data[k] for k in ("id", "created", "updated", "mode", "model")},
                                    turns=_pairs(data["turns"], "kind", "text", "mark"),
                                    context=_pairs(data["context"], "role", "content"), name=name,
                                    left_out=left_out)
    except FileNotFoundError:
        raise PgptError(f"There is no saved conversation {conversation_id}.",
                        hint="Open the list of conversations with F5.") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PgptError(f"The conversation file {path} cannot be read ({exc}).",
                        hint="Delete it, or restore it from a backup.") from exc
    return conversation


def rename_conversation(settings: Settings, conversation: Conversation, name: str) -> None:
    """Give ``conversation`` the name ``name`` (on one line, at most TITLE_CHARS characters; empty
    gives the first question back as its title) and save it.

    Raises:
        StorageError: the folder cannot be written; the conversation keeps its old name.
    """
    old = conversation.name
    conversation.name = " ".join(name.split())[:TITLE_CHARS]
    try:
        save_conversation(settings, conversation, touch=False)
    except Exception:
        conversation.name = old
        raise


def delete_conversation(settings: Settings, conversation_id: str) -> None:
    """Remove one conversation's file (nothing else refers to it)."""
    (conversations_dir(settings) / f"{_checked(conversation_id)}.json").unlink(missing_ok=True)


def _checked(conversation_id: str) -> str:
    if not _ID.match(conversation_id):
        raise PgptError(f"{conversation_id!r} is not a conversation id.", hint="Pick one from the list (F5).")
    return conversation_id


def _pairs(items: Any, key: str, value: str, optional: str = "") -> list[dict[str, str]]:
    """Validate a list of two-string records, with an ``optional`` third string kept where present
    (a hand-edited or foreign file fails here, whole)."""
    if not isinstance(items, list):
        raise TypeError("not a list")
    for item in items:
        if not (isinstance(item, dict) and isinstance(item.get(key), str) and isinstance(item.get(value), str)
                and isinstance(item.get(optional, ""), str)):
            raise TypeError(f"an entry lacks {key}/{value}")
    return [{key: item[key], value: item[value], **({optional: item[optional]} if item.get(optional) else {})}
            for item in items]
