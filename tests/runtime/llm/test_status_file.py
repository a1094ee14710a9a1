"""A running server's status files: this home's own, and the model cache's, which every home reads
before it deletes a model (t70)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from pgpt.runtime.llm.serving.status_file import cache_run_folder, pools_over_cache, run_folder, running_pools
from pgpt.runtime.settings import Settings


def _write(folder: Path, name: str, **status: object) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps({"pid": os.getpid(), "loaded": ["m@1"], **status}))


def test_a_copied_homes_file_is_not_this_homes_and_the_cache_names_every_homes(tmp_path: Path) -> None:
    """A home copied while its server ran named the first home's server as its own: `models --use`
    said it had switched. A model cache shared by homes told only each home of its own servers."""
    mine = Settings(home=tmp_path / "home", model_cache=tmp_path / "models")
    other = Settings(home=tmp_path / "other", model_cache=mine.model_cache)
    _write(run_folder(mine), "pool-1-1.json", home=os.path.realpath(tmp_path / "first-home"))  # copied along
    assert running_pools(mine) == []
    _write(run_folder(mine), "pool-1-2.json")  # written before homes were recorded: taken as this home's
    assert len(running_pools(mine)) == 1
    _write(cache_run_folder(mine), "pool-2-1.json", home=os.path.realpath(other.home), host=socket.gethostname())
    _write(cache_run_folder(mine), "pool-3-1.json", home="/far", host="another-machine")  # a shared cache's
    assert [p.get("home") for p in pools_over_cache(other)] == [os.path.realpath(other.home)]
    dead = {"pid": 2 ** 22 + 7, "loaded": ["m@1"], "host": socket.gethostname()}
    (cache_run_folder(mine) / "pool-9-1.json").write_text(json.dumps(dead))
    pools_over_cache(mine)
    assert not (cache_run_folder(mine) / "pool-9-1.json").exists()  # a dead process's file goes
