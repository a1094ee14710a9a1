"""The log file: pgpt's own lines and everyone's warnings, not the libraries' info chatter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import logging, sys
from pathlib import Path
from pgpt.runtime.logs import setup_logging
from pgpt.runtime.settings import Settings
setup_logging(Settings(home=Path(sys.argv[1]), model_cache=Path(sys.argv[1]) / "models"))
logging.info('Quantization parameters for tensor:"x" not specified')  # ONNX Runtime's quantizer, on the root
logging.getLogger("fusion_base").info("Fused Gelu: 6")
logging.getLogger("onnxruntime.quantization").warning("a library warning")
logging.getLogger("pgpt.documents").info("ingest started: 3 files")
"""


def test_the_log_keeps_pgpts_info_and_every_warning_but_no_library_chatter(tmp_path: Path) -> None:
    """A tester's first start wrote 56 lines, 42 of them the quantizer's "Quantization parameters ..."."""
    subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], check=True, timeout=60)
    log = (tmp_path / "logs" / "pgpt.log").read_text(encoding="utf-8")
    assert "ingest started: 3 files" in log and "a library warning" in log
    assert "Quantization parameters" not in log and "Fused Gelu" not in log


def test_a_crash_in_native_code_leaves_its_stacks_in_the_log(tmp_path: Path) -> None:
    """An `ask` ended by SIGBUS (a model file rewritten under it by `cp`) left no word anywhere."""
    import signal

    code = ("import os, signal\nfrom pathlib import Path\nfrom pgpt.runtime.logs import setup_logging\n"
            "from pgpt.runtime.settings import Settings\n"
            f"setup_logging(Settings(home=Path({str(tmp_path / 'home')!r}), model_cache=Path({str(tmp_path)!r})))\n"
            "os.kill(os.getpid(), signal.SIGBUS)\n")
    crashed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert crashed.returncode == -signal.SIGBUS
    log = (tmp_path / "home" / "logs" / "pgpt.log").read_text(encoding="utf-8")
    assert "Fatal Python error: Bus error" in log and "line 6 in <module>" in log, log


def test_a_log_cut_in_place_goes_on_from_its_start_and_lines_name_their_process(tmp_path: Path) -> None:
    """deploy/pgpt-serve.logrotate cuts the log in place (copytruncate) under a running server: the
    next line must start the file again, not follow a gap of zeros; and two servers on one home wrote
    lines nobody could tell apart (t46)."""
    import time

    flag = tmp_path / "truncated"
    code = ("import logging, sys, time\nfrom pathlib import Path\nfrom pgpt.runtime.logs import setup_logging\n"
            "from pgpt.runtime.settings import Settings\n"
            f"setup_logging(Settings(home=Path({str(tmp_path / 'home')!r}), model_cache=Path({str(tmp_path)!r})))\n"
            "logging.getLogger('pgpt.serve').warning('first line ' + 'x' * 500)\n"
            f"while not Path({str(flag)!r}).exists(): time.sleep(0.05)\n"
            "logging.getLogger('pgpt.serve').warning('second line')\n")
    process = subprocess.Popen([sys.executable, "-c", code])
    log = tmp_path / "home" / "logs" / "pgpt.log"
    deadline = time.monotonic() + 60
    while not (log.is_file() and "first line" in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.truncate(log, 0)  # what copytruncate does after its copy
    flag.touch()
    assert process.wait(timeout=60) == 0
    text = log.read_text(encoding="utf-8")
    assert text[:2] == "20" and "\x00" not in text and "first line" not in text, text[:80]  # a date first
    assert f" [{process.pid}] WARNING pgpt.serve: second line" in text
    rotate = (Path(__file__).resolve().parents[2] / "deploy" / "pgpt-serve.logrotate").read_text()
    assert "/var/lib/pgpt/logs/pgpt.log {" in rotate and "    copytruncate" in rotate  # the unit's PGPT_HOME
