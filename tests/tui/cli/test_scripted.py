"""What a script or a cron job relies on (t71): errors that say where pgpt looked, listings that need no
model, a closed standard output named, a version to record, and JSON on stdout whatever went wrong."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pgpt.runtime.settings import Settings
from support import tui_cli


def cron(home: Path, fake_home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``pgpt-tui ARGS`` as cron runs it: a bare environment with PGPT_HOME only (PGPT_MODEL_CACHE forgotten)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(fake_home), "PGPT_HOME": str(home),
           "HF_HUB_OFFLINE": "1"}
    env.update({name: os.environ[name] for name in ("PYTHONPATH",) if name in os.environ})  # a checkout run so
    result = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", *args], capture_output=True, text=True,
                            env=env, stdin=subprocess.DEVNULL, timeout=600)
    assert "Traceback" not in result.stderr
    return result


def test_a_cron_job_without_the_model_cache_is_told_where_pgpt_looked_and_docs_still_lists(
        settings: Settings, tmp_path: Path) -> None:
    """t71: "not exported ... run `pgpt-export --default`" named no folder: following it exported the
    models a second time into root's ~/.cache; `docs`, a listing, refused to run at all."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ups.txt").write_text("The UPS in the server room holds for 41 minutes.\n")
    assert tui_cli(settings, "ingest", str(docs)).returncode == 0
    fake_home = tmp_path / "cron-home"
    fake_home.mkdir()
    listed = cron(settings.home, fake_home, "docs", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [d["path"] for d in json.loads(listed.stdout)["documents"]] == [str(docs / "ups.txt")]
    for args in (("search", "UPS"), ("chat", "hi", "--max-tokens", "2")):
        refused = cron(settings.home, fake_home, *args)
        shown = " ".join(refused.stderr.split())
        assert refused.returncode == 2, shown
        assert f"{fake_home}/.cache/pgpt/models (the default folder: PGPT_MODEL_CACHE is not set)" in shown, shown
        assert "set PGPT_MODEL_CACHE to it" in shown, shown
