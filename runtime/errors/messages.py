"""The one table that turns any error into a user message: a title, one paragraph, an exit code and an HTTP status."""

from __future__ import annotations

import re

from dataclasses import dataclass

from pgpt.runtime.errors.kinds import (
    AnswerTooLongError, Cancelled, ConfigError, ContextLengthError, DiskFullError, EngineClosedError,
    IndexModelMismatchError, IngestLockedError, ModelDamagedError, ModelLoadError, ModelNotFoundError, PgptError,
    RequestRefusedError, ServerBusyError, ServerError, ServerStoppingError, StorageError, UsageError,
)

# Exit 2: the user named something wrong (a setting, a usage, a model name), as for bad arguments
# (an answer length that cannot fit after even a short prompt is a bad --max-tokens).
USER_MISTAKES = (ConfigError, UsageError, ModelNotFoundError, AnswerTooLongError)
# Exit 75 (EX_TEMPFAIL, as mail tools use it): the same command may work in a moment, so a cron
# wrapper can retry these without matching English titles (t71): another ingest holds the index, the
# server is busy or restarting.
TEMPORARY = (IngestLockedError, ServerBusyError, ServerStoppingError)
TEMPFAIL = 75


@dataclass(frozen=True)
class UserMessage:
    """What the CLI prints and the TUI shows for an error: a title and one paragraph."""

    title: str
    text: str
    exit_code: int = 1
    http_status: int = 500
    code: str = ""  # for scripts: ingest_locked, server_busy, model_not_found ... (see error_code)

    def line(self) -> str:
        """The line the programs print on stderr: ``error: Title: text``, or ``Title: text`` for a title
        that says "error" itself ("error: Usage error: ..." read the word twice, t79)."""
        said = f"{self.title}: {self.text}"
        return said if self.title.lower().endswith("error") else f"error: {said}"


INDEX_DAMAGED = "Index damaged"
# Not `ingest --reindex` alone: it can carry no document of an unreadable table over (it moves the
# table aside and indexes only the paths given); the moved folder keeps every earlier version.
INDEX_DAMAGED_HINT = ("`pgpt-tui doctor` names its folder. Move that folder aside (mv FOLDER FOLDER.damaged: nothing "
                      "is deleted) and add your documents again with `pgpt-tui ingest PATH...`.")


def user_message(error: BaseException) -> UserMessage:
    """Map any error to a title and one paragraph naming the cause and the next step.

    Args:
        error: The exception that reached the user interface.

    Returns:
        The message to show. Never contains a traceback.
    """
    from pgpt.runtime.signals import terminated

    stop_code = 143 if terminated(error) else 130  # as a shell reports a stop: 128 + SIGTERM or SIGINT
    if isinstance(error, PgptError):
        text = str(error)
        if error.hint:
            text = f"{text} {error.hint}"
        wrong = isinstance(error, USER_MISTAKES)
        exit_code = (2 if wrong else stop_code if isinstance(error, Cancelled)
                     else TEMPFAIL if isinstance(error, TEMPORARY) else 1)
        return _safe(error.title, text, exit_code, http_status(error), error_code(error))
    from pgpt.runtime.storage_faults import storage_fault  # it builds this module's errors

    fault = storage_fault(error, getattr(error, "filename", None) or "")
    if fault is not None:
        return user_message(fault)
    for kind, title, hint in _FOREIGN_ERRORS:
        if isinstance(error, kind):
            if kind is KeyboardInterrupt and stop_code == 143:
                title = "Stopped"
                hint = "Ended by SIGTERM (kill, timeout, systemctl stop); nothing was left half-written."
            return _safe(title, hint if kind is KeyboardInterrupt else f"{_describe(error)} {hint}".strip(),
                         stop_code if kind is KeyboardInterrupt else 1)
    if str(error).lower().startswith("lance error"):  # a table file cut short (a crash, a full disk)
        # without the Rust source line Lance appends (".../lance-file-13.0.0/src/writer/structural.rs:191:9"),
        # which named a file on the machine that built it, not the one that is damaged (t66)
        text = _RUST_SOURCE.sub("", str(error))
        return _safe(INDEX_DAMAGED, f"The document index cannot be read ({_describe(RuntimeError(text))}) "
                                    f"{INDEX_DAMAGED_HINT}")
    return _safe(
        "Unexpected error",
        f"{type(error).__name__}: {_describe(error)} This is a bug in pgpt; the log file has details.",
    )


# The chat app has no --max-tokens (its answers have a fixed length) and leaves a long chat's
# oldest turns out by itself: a prompt still too long is the question alone. (Its hint named Ctrl+N
# for "the earlier turns", also in a new chat, which had none.)
APP_CONTEXT_HINT = ("Shorten the question: by itself it leaves the answer no room in the model's context (older "
                    "turns are already left out).")


def app_message(error: BaseException) -> UserMessage:
    """``user_message`` for the chat app: a prompt too long names its next steps, not the CLI's
    --max-tokens. A hint of the error's own (a documents question's) stays."""
    message = user_message(error)
    if isinstance(error, ContextLengthError) and (error.hint == ContextLengthError.hint
                                                  or isinstance(error, AnswerTooLongError)):
        return _safe(message.title, f"{error} {APP_CONTEXT_HINT}", message.exit_code, message.http_status,
                     message.code)
    return message


def usage_titles() -> frozenset[str]:
    """The titles of USER_MISTAKES: a pgpt-serve message with one is the client's own mistake."""
    classes, titles = list(USER_MISTAKES), set()
    while classes:
        kind = classes.pop()
        if not issubclass(kind, ServerError):  # ServerUsageError carries the server's title, not its own
            titles.add(kind.title)
        classes += kind.__subclasses__()
    return frozenset(titles)


def known_titles() -> frozenset[str]:
    """Every title the error table can give (what a pgpt-serve error message starts with)."""
    classes, titles = [PgptError], {"Unexpected error", INDEX_DAMAGED, *(title for _, title, _ in _FOREIGN_ERRORS)}
    while classes:
        kind = classes.pop()
        titles.add(kind.title)
        classes += kind.__subclasses__()
    return frozenset(titles)


def _safe(title: str, text: str, exit_code: int = 1, status: int = 500, code: str = "") -> UserMessage:
    """Messages often quote file names, which may hold terminal escapes: one sanitizer for all. A
    foreign error's code is its title's words ("disk_full", "interrupted")."""
    from pgpt.runtime.sanitize import strip_controls

    code = code or "_".join(re.findall(r"[a-z0-9]+", title.lower()))
    return UserMessage(strip_controls(title), " ".join(strip_controls(text).split()), exit_code, status, code)


def error_code(error: PgptError) -> str:
    """A pgpt error's code for scripts, from its class, which stays when its title's words change:
    IngestLockedError -> "ingest_locked", ServerBusyError -> "server_busy"."""
    name = type(error).__name__.removesuffix("Error") or "pgpt"
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def http_status(error: BaseException) -> int:
    """The HTTP status pgpt-serve answers with for ``error`` (500 for anything unexpected)."""
    status = getattr(error, "status", None)
    if isinstance(error, RequestRefusedError) and isinstance(status, int):
        return status
    return next((code for kind, code, _ in _HTTP_STATUSES if isinstance(error, kind)), 500)


def http_code(error: BaseException) -> str:
    """The ``code`` of pgpt-serve's JSON error for ``error`` where the table gives one
    (``context_length_exceeded``, ``server_busy``), else "" (the status is the code)."""
    if isinstance(error, RequestRefusedError):  # its own status, not its base classes' row
        return ""
    return next((code for kind, _, code in _HTTP_STATUSES if isinstance(error, kind)), "")


_RUST_SOURCE = re.compile(r",?\s*(?:[\w.~-]*/)+[\w.-]+\.rs:\d+:\d+")


def _describe(error: BaseException) -> str:
    from pgpt.runtime.sanitize import strip_controls

    text = " ".join(strip_controls(str(error)).split())
    if len(text) > 400:
        text = text[:397] + "..."
    if text and text[-1] not in ".!?":
        text += "."
    return text


_FOREIGN_ERRORS: list[tuple[type[BaseException], str, str]] = [
    # a download's own stop says that the same command resumes it (runtime/hub/download.py)
    (KeyboardInterrupt, "Interrupted", "Stopped by the user; nothing was left half-written."),
    (PermissionError, "Permission denied", "Check the folder's owner and mode, or choose another folder."),
    (FileNotFoundError, "File not found", "Check the path and run the command again."),
    (MemoryError, "Out of memory", "Close other programs or use a smaller model or a narrower type."),
    (OSError, "System error", "Check free disk space and permissions of the data folders (pgpt-tui doctor)."),
]

# HTTP statuses of pgpt-serve, and the JSON error's code where clients test for one (else the status
# is the code), first match wins: the caller's mistakes are 4xx, the server's 5xx.
_HTTP_STATUSES: list[tuple[type[BaseException], int, str]] = [
    (ContextLengthError, 400, "context_length_exceeded"),  # OpenAI's code: its clients look for it
    (ConfigError, 400, ""),
    (UsageError, 400, ""),
    (ModelNotFoundError, 404, ""),
    (IngestLockedError, 409, ""),
    (IndexModelMismatchError, 409, ""),
    (Cancelled, 499, ""),  # the client closed the connection (nginx's code); nobody reads the answer
    (ServerBusyError, 503, "server_busy"),
    (EngineClosedError, 503, ""),  # the model unloaded under the request: a retry loads it again
    (ServerStoppingError, 503, "server_stopping"),
    (ModelDamagedError, 500, "model_damaged"),  # not "busy, retry": the openai client retried each 503
    (ModelLoadError, 503, ""),
    (ServerError, 502, ""),
    (DiskFullError, 507, ""),  # Insufficient Storage: the server's disk, not the request
    (StorageError, 500, "storage_error"),  # a read-only or forbidden data folder: no retry mends it (t60)
]
