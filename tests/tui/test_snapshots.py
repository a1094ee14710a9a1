"""SVG snapshots of every screen at 80x24, and of the Docs panel at 60x15 too (see tests/snapshots.py
for how they are compared).

The app runs on fixed short paths (/tmp/pgpt-snap) so that wrapped lines do not move with the
length of pytest's temporary folders.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable

from fake_hub import FakeHub
from pgpt.runtime.conversations import new_conversation, save_conversation
from pgpt.runtime.models import DEFAULT_EMBEDDER, DEFAULT_LLM
from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.settings import Settings
from pgpt.tui.chat.app import ChatApp
from snapshots import check_snapshot, settle
from test_app import SIZE, turns, wait_until

ROOT = Path("/tmp/pgpt-snap")
ENVIRONMENT = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_CACHE",
               "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
               "no_proxy", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")


@pytest.fixture()
def snap(default_models: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings on fixed paths: a fresh home, the three default models linked into a cache, a
    document folder, an unreachable Hub, and the folder tree rooted at /tmp/pgpt-snap."""
    shutil.rmtree(ROOT, ignore_errors=True)
    (ROOT / "models").mkdir(parents=True)
    for name in (f"{DEFAULT_LLM}-fp32", f"{DEFAULT_LLM}-int8", DEFAULT_EMBEDDER):
        (ROOT / "models" / name).symlink_to(default_models.model_cache / name)
    (ROOT / "docs").mkdir()
    (ROOT / "docs" / "tides.txt").write_text("The tide tables of Port Vell are published each Monday.\n")
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    with FakeHub({}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setenv("HF_HOME", str(ROOT / "hf"))
        monkeypatch.chdir(ROOT)
        yield Settings(home=ROOT / "home", model_cache=ROOT / "models")
    shutil.rmtree(ROOT, ignore_errors=True)


async def mounted_table(pilot: Any, app: ChatApp) -> DataTable[str]:
    """The panel's table once it is mounted: right after the key that opens the panel, a busy CI
    machine had not mounted it yet (NoMatches)."""
    await wait_until(pilot, lambda: bool(app.screen.query(DataTable)))
    return app.screen.query_one(DataTable)


async def test_chat_first_start(snap: Settings) -> None:
    app = ChatApp(snap)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.engine is not None)
        await settle(pilot)
        check_snapshot(app, "chat-first-start")


async def test_chat_search_mode(snap: Settings) -> None:
    from pgpt.runtime.llm.embeddings import default_embedder
    from pgpt.runtime.documents.ingest import ingest

    ingest(snap, [ROOT / "docs"], default_embedder(snap))
    app = ChatApp(snap, SamplingOptions(max_new_tokens=8))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.engine is not None)
        await pilot.press("ctrl+r", "ctrl+r")  # documents -> chat -> search
        await pilot.press(*"When are the tide tables published?", "enter")
        await wait_until(pilot, lambda: not app.answering and len(turns(app)) == 2)
        await settle(pilot)
        check_snapshot(app, "chat-search")


async def test_setup_panel(snap: Settings) -> None:
    app = ChatApp(snap)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        screen = app.screen
        await wait_until(pilot, lambda: screen.token_status is not None and bool(screen.checks))
        await settle(pilot)
        check_snapshot(app, "setup")


@pytest.mark.parametrize(("size", "name"), [(SIZE, "docs"), ((60, 15), "docs-60x15")])
async def test_docs_panel_after_adding_a_folder(snap: Settings, size: tuple[int, int], name: str) -> None:
    """At 60x15 the folder tree narrows and the file column keeps the file's name (it read "…des.txt")."""
    app = ChatApp(snap)
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: app.library is not None)
        await pilot.press("f4", *str(ROOT / "docs"), "enter")
        table = await mounted_table(pilot, app)
        await wait_until(pilot, lambda: not app._ingesting() and table.row_count == 1)
        table.focus()
        await settle(pilot)
        check_snapshot(app, name)


async def test_docs_panel_with_a_gone_file(snap: Settings) -> None:
    """A file indexed, then moved away: marked in the list, named in the report, and Ctrl+G in the
    footer beside Delete (80 columns: every key still fits)."""
    from pgpt.runtime.llm.embeddings import default_embedder
    from pgpt.runtime.documents.ingest import ingest

    (ROOT / "docs" / "moved.txt").write_text("The harbour office moved to the old fish market.\n")
    ingest(snap, [ROOT / "docs"], default_embedder(snap))
    (ROOT / "docs" / "moved.txt").unlink()
    app = ChatApp(snap)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.library is not None)
        await pilot.press("f4", *str(ROOT / "docs"), "enter")
        table = await mounted_table(pilot, app)
        await wait_until(pilot, lambda: not app._ingesting() and app.screen.check_action("forget_gone", ()))
        table.focus()
        await settle(pilot)
        check_snapshot(app, "docs-gone")


async def test_chats_panel(snap: Settings) -> None:
    saved = new_conversation("chat", f"{DEFAULT_LLM}-int8")
    saved.turns = [{"kind": "user", "text": "What is the capital of France?"},
                   {"kind": "assistant", "text": "The capital of France is Paris."}]
    save_conversation(snap, saved)
    app = ChatApp(snap)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        table = await mounted_table(pilot, app)
        await wait_until(pilot, lambda: table.row_count == 1)
        await settle(pilot)
        check_snapshot(app, "chats")


async def test_models_panel(snap: Settings) -> None:
    app = ChatApp(snap)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.engine is not None)
        await pilot.press("f3")
        table = await mounted_table(pilot, app)
        await wait_until(pilot, lambda: table.row_count == 3)
        await settle(pilot)
        # Why fp16 is off depends on the machine (no driver, no GPU, ...).
        check_snapshot(app, "models", extra_masks=[(r"fp16 is off: [^)]*\)", "fp16 is off: <why>")])
