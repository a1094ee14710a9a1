"""The one error hierarchy of pgpt, and the table that turns any error into a user message."""

from __future__ import annotations

from dataclasses import dataclass


class PgptError(Exception):
    """Base of every error pgpt raises on purpose; ``hint`` is the next step for the user."""

    title = "pgpt error"
    hint = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class ConfigError(PgptError, ValueError):
    """A setting or environment variable is invalid."""

    title = "Invalid setting"
    hint = "Fix the value (see README, Configuration) and run the command again."


class SourceError(PgptError, ValueError):
    """The model source given to the export cannot be used."""

    title = "Cannot use this model source"


class UnsafeWeightsError(SourceError):
    """Only pickle weights (.bin, .pt, .ckpt, .pkl) are available; pgpt never unpickles."""

    title = "Pickle weights refused"
    hint = (
        "Use a revision or a fork of the model that ships .safetensors weights; "
        "pgpt never loads pickle files because they can run code."
    )


class RemoteCodeError(SourceError):
    """The model needs trust_remote_code."""

    title = "Model needs remote code"
    hint = "Read the model's code first; if you trust it, pass --trust-remote-code."


class UnsupportedModelError(SourceError):
    """The architecture or task is not one the export supports."""

    title = "Unsupported model"


class OutputExistsError(PgptError, FileExistsError):
    """The export's output folder already exists."""

    title = "Output folder exists"
    hint = "Choose another folder with -o, or delete the old one first (pgpt never overwrites it)."


class DiskSpaceError(PgptError, OSError):
    """Not enough free disk for the work asked for."""

    title = "Not enough disk space"
    hint = "Free some space or point PGPT_MODEL_CACHE / -o at a bigger disk."


class QualityError(PgptError):
    """An exported model lost more quality than the threshold allows."""

    title = "Quality check failed"
    hint = (
        "Try a wider type (--dtype int8 or fp32), or pass --accept-quality-loss "
        "to keep it anyway."
    )


class ModelNotFoundError(PgptError, LookupError):
    """No exported model of that name, or no model at all."""

    title = "Model not found"
    hint = "Run `pgpt-export --default` (or `pgpt-tui models` to list exported models)."


class ModelIntegrityError(PgptError):
    """A model folder's files do not match its manifest."""

    title = "Model files damaged"
    hint = "The folder was changed after export. Export the model again (pgpt-export)."


class ProviderError(PgptError, RuntimeError):
    """The requested ONNX Runtime execution provider cannot be used."""

    title = "Execution provider unavailable"


class ContextLengthError(PgptError, ValueError):
    """The prompt plus the answer do not fit in the model's context window."""

    title = "Prompt too long"
    hint = "Shorten the prompt or lower --max-tokens."

    def __init__(self, message: str, *, prompt_tokens: int = 0, max_tokens: int = 0, context: int = 0,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.prompt_tokens, self.max_tokens, self.context = prompt_tokens, max_tokens, context


class TemplateError(PgptError):
    """The model's chat template failed to render (or tried something unsafe)."""

    title = "Chat template error"
    hint = "The model's chat template is broken or unsafe; export a model with a standard template."


class HubAccessError(PgptError):
    """The Hugging Face Hub refused or could not be reached; ``status`` is the preflight status."""

    title = "Hugging Face access"
    hint = ""

    def __init__(self, message: str, *, status: str = "network_error", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class IndexModelMismatchError(PgptError):
    """The document index was built with another embedding model than the one in use."""

    title = "Index built with another embedding model"
    hint = ("Re-index with `pgpt-tui ingest PATH... --reindex` (it rebuilds the index with the current "
            "model), or keep using the model it was built with: `--embedder NAME` on the command, "
            "or PGPT_EMBEDDER=NAME.")


class IngestLockedError(PgptError):
    """Another process is writing to the document index."""

    title = "Ingestion already running"
    hint = "Wait for it to finish (search and chat keep working meanwhile), then run this again."


class ServerBusyError(PgptError):
    """A limit of concurrent work is reached (running sequences and waiting requests, or loaded
    models); the request was refused at once, nothing was queued. ``limit`` names the limit.
    pgpt-serve answers it with 503 and Retry-After; a client raises it when a server does."""

    title = "Server busy"
    hint = "Try again in a moment, or raise the limit the message names."

    def __init__(self, message: str, *, limit: str = "", retry_after_s: int = 1, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.limit, self.retry_after_s = limit, retry_after_s


class EngineClosedError(PgptError):
    """A request reached a model engine that was shut down (its model was unloaded)."""

    title = "Model unloaded"
    hint = "Send the request again: the model is loaded anew."


class ModelLoadError(PgptError):
    """A model version could not be loaded (damaged files, out of memory, ONNX Runtime refused it)."""

    title = "Model could not be loaded"
    hint = "Check the version with `pgpt-tui models --versions NAME`; switch back with `--rollback NAME`."

    def __init__(self, message: str, *, name: str = "", version: str = "", reason: str = "",
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.name, self.version, self.reason = name, version, reason


class VersionNotFoundError(ModelNotFoundError):
    """``name@version`` names a version that is not on disk."""

    title = "Model version not found"
    hint = "Run `pgpt-tui models --versions NAME` to list the versions kept on disk."


class Cancelled(PgptError):
    """The user cancelled a long operation."""

    title = "Cancelled"
    hint = "Nothing was changed; run the command again to start over."


class RequestRefusedError(PgptError, ValueError):
    """The server refused a request it will never accept as sent (too large, bad file, bad key);
    ``status`` is the HTTP status it answers with."""

    title = "Request refused"

    def __init__(self, message: str, *, status: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class ServerError(PgptError):
    """A pgpt-serve that the app or the CLI talks to (``PGPT_SERVER``) could not answer;
    ``status`` is its HTTP status (0: it was not reached at all)."""

    title = "Server error"
    hint = "See the server's log (PGPT_HOME/logs/pgpt.log on the server) for details."

    def __init__(self, message: str, *, status: int = 0, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class ServerUnreachableError(ServerError):
    """Nothing answers at the server address."""

    title = "Server unreachable"
    hint = ("Start it with `pgpt-serve` (or open the SSH tunnel: ssh -L 8642:127.0.0.1:8642 HOST), "
            "or unset PGPT_SERVER to run the model in this process.")


class ServerAuthError(ServerError):
    """The server refused the API key (or the Host name)."""

    title = "Server refused the key"
    hint = ("Set PGPT_API_KEY (or PGPT_API_KEY_FILE) to the key the server was started with "
            "(its --api-key-file); pgpt never prints it.")


@dataclass(frozen=True)
class UserMessage:
    """What the CLI prints and the TUI shows for an error: a title and one paragraph."""

    title: str
    text: str
    exit_code: int = 1
    http_status: int = 500


def user_message(error: BaseException) -> UserMessage:
    """Map any error to a title and one paragraph naming the cause and the next step.

    Args:
        error: The exception that reached the user interface.

    Returns:
        The message to show. Never contains a traceback.
    """
    if isinstance(error, PgptError):
        text = str(error)
        if error.hint:
            text = f"{text} {error.hint}"
        return UserMessage(error.title, text, 2 if isinstance(error, ConfigError) else 1, http_status(error))
    for kind, title, hint in _FOREIGN_ERRORS:
        if isinstance(error, kind):
            return UserMessage(title, f"{_describe(error)} {hint}".strip())
    return UserMessage(
        "Unexpected error",
        f"{type(error).__name__}: {_describe(error)} This is a bug in pgpt; the log file has details.",
    )


def http_status(error: BaseException) -> int:
    """The HTTP status pgpt-serve answers with for ``error`` (500 for anything unexpected)."""
    status = getattr(error, "status", None)
    if isinstance(error, RequestRefusedError) and isinstance(status, int):
        return status
    return next((code for kind, code in _HTTP_STATUSES if isinstance(error, kind)), 500)


def _describe(error: BaseException) -> str:
    text = " ".join(str(error).split())
    if len(text) > 400:
        text = text[:397] + "..."
    if text and text[-1] not in ".!?":
        text += "."
    return text


_FOREIGN_ERRORS: list[tuple[type[BaseException], str, str]] = [
    (KeyboardInterrupt, "Interrupted", "Stopped by the user; nothing was left half-written."),
    (PermissionError, "Permission denied", "Check the folder's owner and mode, or choose another folder."),
    (FileNotFoundError, "File not found", "Check the path and run the command again."),
    (MemoryError, "Out of memory", "Close other programs or use a smaller model or a narrower type."),
    (OSError, "System error", "Check free disk space and permissions of the data folders (pgpt-tui doctor)."),
]

# HTTP statuses of pgpt-serve, first match wins: the caller's mistakes are 4xx, the server's 5xx.
_HTTP_STATUSES: list[tuple[type[BaseException], int]] = [
    (ContextLengthError, 400),
    (ConfigError, 400),
    (ModelNotFoundError, 404),
    (IngestLockedError, 409),
    (IndexModelMismatchError, 409),
    (Cancelled, 499),  # the client closed the connection (nginx's code); nobody reads the answer
    (ServerBusyError, 503),
    (EngineClosedError, 503),  # the model unloaded under the request: a retry loads it again
    (ModelLoadError, 503),
    (ServerError, 502),
]
