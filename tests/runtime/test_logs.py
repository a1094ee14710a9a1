"""The log file: pgpt's own lines and everyone's warnings, not the libraries' info chatter."""

from __future__ import annotations

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
