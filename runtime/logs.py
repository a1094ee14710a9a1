"""Logging to a 0600 file under PGPT_HOME, with tokens and controls removed; a server also shows its
warnings and errors on stderr, one line each."""

from __future__ import annotations

import faulthandler
import logging
import os
import re

from pgpt.runtime.sanitize import strip_controls
from pgpt.runtime.settings import Settings, ensure_private_dir

_TOKEN = re.compile(r"hf_[A-Za-z0-9]{8,}")


class RedactTokens(logging.Filter):
    """Replace anything that looks like a Hugging Face token before it is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _TOKEN.sub("hf_***", record.getMessage())
        record.args = ()
        return True


class PgptInfoOnly(logging.Filter):
    """Libraries' info lines stay out of the file; their warnings and errors, and pgpt's own info
    lines, go in. A first start's log was 42 lines of ONNX Runtime's quantizer ("Quantization
    parameters for tensor ... not specified", logged on the root logger) out of 56, and no line
    said an ingest had started or stopped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.name == "pgpt" or record.name.startswith("pgpt.")


class SafeFormatter(logging.Formatter):
    """The formatted line, tracebacks included, without tokens or terminal controls: a log file
    is read with ``cat`` and ``less``, and file names in it come from the user's folders."""

    def format(self, record: logging.LogRecord) -> str:
        return strip_controls(_TOKEN.sub("hf_***", super().format(record)))


class QuietFileHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A log file handler that goes quiet when the file cannot be written (a full disk, say).

    logging's default prints "--- Logging error ---" and a traceback to stderr, in the middle of
    the command's output or the app's screen; a log that cannot be written is not worth that.
    """

    failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        """Drop the record; the command's own error message still reaches the user."""
        self.failed = True


def setup_logging(settings: Settings, level: int = logging.INFO) -> None:
    """Send pgpt's (and its libraries') logs to the log file; failures fall back to no logging."""
    root = logging.getLogger()
    if any(getattr(h, "_pgpt", False) for h in root.handlers):
        return
    try:
        ensure_private_dir(settings.log_file.parent)
        fd = os.open(settings.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        stream = os.fdopen(fd, "a", encoding="utf-8")
        handler: logging.Handler = QuietFileHandler(stream)
        # A crash in native code (SIGBUS when a model file mapped in memory is rewritten under it,
        # `cp` over a model cache in use) ended the process with no word anywhere: its stacks go here,
        # through a descriptor of its own (logging closes its stream at exit, and the number may be
        # reused by another file by then).
        faulthandler.enable(file=os.fdopen(os.dup(fd), "a", encoding="utf-8"), all_threads=True)
    except OSError:
        handler = logging.NullHandler()
    handler._pgpt = True  # type: ignore[attr-defined]
    handler.addFilter(PgptInfoOnly())
    handler.addFilter(RedactTokens())
    # the process id: servers (and apps) sharing a home write one file, and their lines were not told apart
    handler.setFormatter(SafeFormatter("%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)


class BriefFormatter(logging.Formatter):
    """``PREFIX: level: message`` on one line, no traceback (the log file has it), without
    tokens or terminal controls: for a service's stderr, which journalctl shows."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def format(self, record: logging.LogRecord) -> str:
        line = " ".join(record.getMessage().split())
        line = line if len(line) <= 400 else line[:400] + "… (the rest in the log file)"
        return strip_controls(_TOKEN.sub("hf_***", f"{self.prefix}: {record.levelname.lower()}: {line}"))


def warnings_to_stderr(prefix: str) -> None:
    """Also send warnings and errors to stderr, briefly (a server's failed model load or version
    switch was only in the log file, while ``journalctl -u pgpt-serve`` shows stderr)."""
    import sys

    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.addFilter(PgptInfoOnly())
    handler.addFilter(RedactTokens())
    handler.setFormatter(BriefFormatter(prefix))
    logging.getLogger("pgpt").addHandler(handler)
