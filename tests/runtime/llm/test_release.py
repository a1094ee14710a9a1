"""A closed model gives its memory back: the app switches models on F3, a server unloads them."""

from __future__ import annotations

import subprocess
import sys

from pgpt.runtime.models import DEFAULT_LLM
from pgpt.runtime.settings import Settings

# Loads the fp32 default model (about 540 MB) three times, closing it each time, and prints the
# RSS in MB when loaded and after each close.
SCRIPT = """
import sys
from pathlib import Path
from pgpt.runtime.llm.chat import ChatEngine
from pgpt.runtime.settings import Settings

def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmRSS"))

settings = Settings(home=Path(sys.argv[1]), model_cache=Path(sys.argv[2]))
for _ in range(3):
    engine = ChatEngine(settings, sys.argv[3], use_cache=False)
    loaded = rss()
    engine.close()
    del engine
    print(loaded, rss(), flush=True)
"""


def test_a_closed_chat_engine_hands_its_model_back(default_models: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Each model chosen on F3 stayed in the app's RSS (glibc kept the pages ONNX Runtime freed)."""
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), str(default_models.model_cache),
                             f"{DEFAULT_LLM}-fp32"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = [tuple(map(int, line.split())) for line in result.stdout.splitlines()]
    assert len(rows) == 3
    for loaded, after in rows[1:]:  # the first load also brings in the imports' lasting memory
        assert after < loaded - 300, rows  # the weights (about 540 MB) went back to the system
