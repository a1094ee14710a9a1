"""The one error hierarchy of pgpt: every error it raises on purpose, with its title and hint."""

from __future__ import annotations

from pathlib import Path


class PgptError(Exception):
    """Base of every error pgpt raises on purpose; ``hint`` is the next step for the user;
    ``details``: facts a script reads from a `--json` error instead of parsing the paragraph."""

    title = "pgpt error"
    hint = ""
    details: dict[str, object] = {}

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


class TensorShapeError(SourceError):
    """The model file's tensors do not have the shapes its architecture gives them."""

    title = "Tensors do not fit the architecture"
    hint = ("The file may be damaged or mislabelled (its header names an architecture whose shapes it does not "
            "have): download it again and compare its sha256 with the publisher's, or use another file of the model.")


class OutputExistsError(PgptError, FileExistsError):
    """The export's output folder already exists."""

    title = "Output folder exists"
    hint = "Choose another folder with -o, or delete the old one first (pgpt never overwrites it)."


class DiskSpaceError(PgptError, OSError):
    """Not enough free disk for the work asked for."""

    title = "Not enough disk space"
    hint = "Free some space or point PGPT_MODEL_CACHE / -o at a bigger disk."


class MemoryNeedError(PgptError, MemoryError):
    """Not enough memory for the work asked for (checked before it starts, or met while it ran)."""

    title = "Not enough memory"
    hint = ("Close other programs, run it on a machine with more memory, or choose a smaller model "
            "or a narrower type (--dtype int4 needs the least).")


class QualityError(PgptError):
    """An exported model lost more quality than the threshold allows."""

    title = "Quality check failed"
    hint = "Pass --accept-quality-loss to keep it anyway."  # the export adds the wider types to try


class ModelNotFoundError(PgptError, LookupError):
    """No exported model of that name, or no model at all."""

    title = "Model not found"
    hint = "Run `pgpt-export --default` (or `pgpt-tui models` to list exported models)."


class ModelIntegrityError(PgptError):
    """A model folder's files do not match its manifest; ``folder`` names it in the hint."""

    title = "Model files damaged"
    hint = "The folder was changed after export. Export the model again (pgpt-export)."

    def __init__(self, message: str, *, folder: Path | str = "", hint: str | None = None) -> None:
        if hint is None and folder:
            hint = ("The folder was changed after export. Export the model again: `pgpt-export` (and `--default` "
                    "for the built-in models) replaces a damaged version of the model cache by itself. Or remove "
                    f"it: {_deletion(Path(folder))}.")
        super().__init__(message, hint=hint)
        self.folder = str(folder)


def _deletion(path: Path) -> str:
    """The command that removes the damaged model folder ``path``: a kept version
    (<cache>/.versions/NAME/VERSION) alone, as NAME@VERSION; the active one (the cache's NAME links to
    it), which `--delete NAME@VERSION` refuses, with every version (t63)."""
    if path.parent.parent.name != ".versions":
        return f"`pgpt-tui models --delete {path.name}`"
    name = path.parent.name
    try:
        active = (path.parent.parent.parent / name).resolve() == path.resolve()
    except (OSError, RuntimeError):
        active = False
    if active:
        return (f"`pgpt-tui models --delete {name}` deletes every version of {name} (this is the active one; "
                f"`pgpt-tui models --rollback {name}` makes the one before it active instead)")
    return f"`pgpt-tui models --delete {name}@{path.name}`"


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


class AnswerTooLongError(ContextLengthError):
    """The prompt is short, but the answer length asked for does not fit after it."""

    title = "Answer length too large"


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


class UsageError(PgptError, ValueError):
    """The command line was given something it cannot use (an empty prompt, say): exit 2."""

    title = "Usage error"
    hint = "See the command's --help."


class NotIndexedError(UsageError):
    """A path or name to forget that no indexed document has (exit 2; `forget --missing-ok`: nothing to do)."""


class SourceNotFoundError(SourceError, UsageError):
    """The export's SOURCE is no file, folder or repo id (a typo): exit 2, as ingest's wrong path (it was 1)."""

    title = SourceError.title


class InvalidRequestError(UsageError):
    """An HTTP request to pgpt-serve that it cannot use as sent (a field, a message, an input): 400."""

    title = "Invalid request"
    hint = "Fix the request (the README's pgpt-serve section lists the fields) and send it again."

    def __init__(self, message: str, *, param: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.param = param  # the field at fault, answered as OpenAI's error.param


class StorageError(PgptError, OSError):
    """A data folder cannot be used: a full disk, a read-only folder, missing permissions.

    ``folder`` is the folder named in the message; the hint says what to do about it.
    """

    title = "Cannot use the data folder"
    hint = "Check free space (df -h) and the folder's owner and mode (ls -ld), then run the command again."

    def __init__(self, message: str, *, folder: Path | str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.folder = str(folder)


class DiskFullError(StorageError):
    """The disk holding a data folder is full."""

    title = "Disk full"
    hint = ("Free some space on that disk (df -h shows how much is left), or use a folder on another disk "
            "(PGPT_HOME for data, PGPT_MODEL_CACHE for models), then run the command again.")


class ReadOnlyError(StorageError):
    """A data folder is read-only, by its mode or because its file system is mounted read-only."""

    title = "Read-only folder"
    hint = ("Make it writable (chmod u+w on the folder and its files, or remount the disk read-write), "
            "or use a writable folder instead (PGPT_HOME for data, PGPT_MODEL_CACHE for models, -o for an export).")


class FolderPermissionError(StorageError):
    """pgpt may not read or write a data folder or file."""

    title = "Permission denied"
    hint = ("Check the owner and mode of the folder and its files (ls -l), or point PGPT_HOME (data) or "
            "PGPT_MODEL_CACHE (models), whichever holds it, to a folder you may write.")


class ServerBusyError(PgptError):
    """A limit of concurrent work is reached (running sequences and waiting requests, or loaded
    models); the request was refused at once, nothing was queued. ``limit`` names the limit.
    pgpt-serve answers it with 503 and Retry-After; a client raises it when a server does."""

    title = "Server busy"
    hint = "Try again in a moment, or raise the limit the message names."

    def __init__(self, message: str, *, limit: str = "", retry_after_s: int = 1, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.limit, self.retry_after_s = limit, retry_after_s


class ServerStoppingError(PgptError):
    """pgpt-serve was told to stop (Ctrl-C, SIGTERM, systemctl stop) while an answer ran: the
    answer is cut at once, with this error inside its stream, instead of after a 10 s wait."""

    title = "Server stopping"
    hint = "Send the request again once the server is back."


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


class ModelDamagedError(ModelLoadError):
    """A model version's files are damaged (they fail their manifest's check, or ONNX Runtime cannot
    read them): a retry cannot help, unlike a load that ran out of memory."""

    title = "Model files damaged"


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
            "or leave out --server (and PGPT_SERVER) to run the model in this process.")


class ServerAuthError(ServerError):
    """The server refused the API key (or the Host name)."""

    title = "Server refused the key"
    hint = ("Set PGPT_API_KEY (or PGPT_API_KEY_FILE) to the key the server was started with "
            "(its --api-key-file); pgpt never prints it. The app reads the key file again at its next "
            "question; a changed PGPT_API_KEY needs a restart.")


class ServerUsageError(ServerError, UsageError):
    """The server refused what the client asked for (a collection, a model, a setting): a usage
    error (exit 2), as the same mistake is without a server; its title is the server's own."""
