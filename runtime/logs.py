"""Logging to a 0600 file under PGPT_HOME (never to the terminal), with token redaction."""

from __future__ import annotations

import logging
import os
import re

from pgpt.runtime.settings import Settings, ensure_private_dir

_TOKEN = re.compile(r"hf_[A-Za-z0-9]{8,}")


class RedactTokens(logging.Filter):
    """Replace anything that looks like a Hugging Face token before it is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _TOKEN.sub("hf_***", record.getMessage())
        record.args = ()
        return True


def setup_logging(settings: Settings, level: int = logging.INFO) -> None:
    """Send pgpt's (and its libraries') logs to the log file; failures fall back to no logging."""
    root = logging.getLogger()
    if any(getattr(h, "_pgpt", False) for h in root.handlers):
        return
    try:
        ensure_private_dir(settings.log_file.parent)
        fd = os.open(settings.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        handler: logging.Handler = logging.StreamHandler(os.fdopen(fd, "a", encoding="utf-8"))
    except OSError:
        handler = logging.NullHandler()
    handler._pgpt = True  # type: ignore[attr-defined]
    handler.addFilter(RedactTokens())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
