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
