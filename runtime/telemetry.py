"""ONNX Runtime's telemetry, turned off: pgpt sends nothing anywhere.

onnxruntime 1.31 on Linux and macOS writes a device id and queues usage events (the process, the
interpreter's path, a machine hash, the network type) under ``~/.cache/Microsoft`` to upload them to
Microsoft, from every process that creates a session (t50 found 1,984 queued events). Its own
opt-out, ``ORT_DISABLE_TELEMETRY=1``, must be set before the first session is created; the Python
call ``disable_telemetry_events()`` comes too late for the first event. Each pgpt program sets it in
its ``main()``, and every session pgpt creates sets it first, so library use is covered too.
"""

from __future__ import annotations

import os

OPT_OUT = "ORT_DISABLE_TELEMETRY"


def telemetry_off() -> None:
    """Set ONNX Runtime's opt-out for this process and its children (a value set already is kept)."""
    os.environ.setdefault(OPT_OUT, "1")
