"""The app's first start: the note while the built-in models are prepared, and the tips under it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from test_app import SIZE, status, turns, wait_until
from textual.widgets import Static

from pgpt.runtime.settings import Settings
from pgpt.tui.chat.app import ChatApp, Turn
from pgpt.tui.chat.widgets import ChatLog
from support import defaults_only


async def test_the_first_start_tip_names_the_bigger_model_path_once(settings: Settings, tmp_path: Path) -> None:
    from pgpt.tui.chat.first_run import TIP

    settings = defaults_only(settings, tmp_path / "models")  # no 1.5B model of other tests in it
    for start in (1, 2):
        app = ChatApp(settings)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            tips = [str(w.render()) for w in app.query(".tip").results(Static)]
            if start == 1:  # the measured path: a 1.5B GGUF exported to int4, then chosen in F3
                assert tips == [TIP] and "pgpt-export FILE.gguf --dtype int4" in TIP and "1.5B" in TIP
            else:
                assert tips == []


async def test_the_first_start_tip_chooses_a_bigger_model_already_exported(settings: Settings,
                                                                          tmp_path: Path) -> None:
    """It told the user to export a 1.5B model that was in the model cache already."""
    import dataclasses

    from pgpt.runtime.manifest import write_manifest
    from pgpt.tui.chat.first_run import first_start_tip

    settings = defaults_only(settings, tmp_path / "models")
    big = settings.model_cache / "qwen2.5-1.5b-instruct-int4"
    big.mkdir()  # a manifest is all the tip reads: a real 1.5B export takes minutes and 1.3 GB
    write_manifest(big, {"kind": "llm", "dtype": "int4", "parameters": 1_543_714_304})
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        (tip,) = [str(w.render()) for w in app.query(".tip").results(Static)]
    assert "qwen2.5-1.5b-instruct-int4 (1.54B weights) is already exported" in " ".join(tip.split())
    assert "pgpt-tui models --use qwen2.5-1.5b-instruct-int4" in tip and "pgpt-export" not in tip
    assert "F3 (Models)" in tip and "F1 lists the keys" in tip
    serving_it = dataclasses.replace(settings, model="qwen2.5-1.5b-instruct-int4")  # PGPT_MODEL
    assert first_start_tip(serving_it) == ("Tip: F2 (Setup) stores your token and checks the network; F4 adds "
                                           "documents; F1 lists the keys.")


def test_the_tip_names_the_small_model_that_is_active_not_the_built_in_one(settings: Settings,
                                                                            tmp_path: Path) -> None:
    """With a small model of the user's own active, the tip said "this is pgpt's small built-in
    model (SmolLM2-135M)" above a status line naming the other model (t62)."""
    import dataclasses

    from pgpt.runtime.manifest import write_manifest
    from pgpt.tui.chat.first_run import BUILT_IN, first_start_tip

    settings = defaults_only(settings, tmp_path / "models")
    small = settings.model_cache / "tiny-llama-int4"
    small.mkdir()
    write_manifest(small, {"kind": "llm", "dtype": "int4", "parameters": 14_000_000})
    tip = first_start_tip(dataclasses.replace(settings, model="tiny-llama-int4"))
    assert tip.startswith("Tip: tiny-llama-int4 is a small model (14M weights): quick, but often wrong about "
                          "documents. A 1.5B model answers better") and "built-in" not in tip
    assert first_start_tip(settings).startswith(BUILT_IN)  # the built-in one active: as before


def test_the_client_tip_gives_the_command_that_adds_documents_to_the_server(settings: Settings) -> None:
    """In client mode the tip said "F4 adds documents to its index", but F4 there only lists them."""
    import dataclasses

    from pgpt.tui.chat.first_run import first_start_tip

    tip = first_start_tip(dataclasses.replace(settings, server="http://127.0.0.1:8642"))
    assert "add documents with `pgpt-tui --server http://127.0.0.1:8642 ingest PATH`" in tip
    assert "F4 adds" not in tip and "F4 lists them" in tip


async def test_a_damaged_config_file_is_named_in_the_chat_and_left_as_it_is(settings: Settings) -> None:
    """A config.json with {"active_model": 42} crashed every start; the app now starts and says
    which file is damaged and how to repair it, and does not rewrite it (the first-start tip neither)."""
    settings.home.mkdir(parents=True)
    settings.config_file.write_text('{"active_model": 42}')
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(app.load_error), timeout=60)
        (notice,) = turns(app)
        assert notice.kind == "notice" and "is damaged" in notice.text and "models --use NAME" in notice.text
        assert status(app) == "No chat model loaded"
    assert settings.config_file.read_text() == '{"active_model": 42}'


async def test_the_first_start_note_comes_before_the_tip_and_says_when_it_is_done(
        settings: Settings, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The 9-line tip pushed the first-start note half-way down a 24-row screen, and once the models
    were ready the note still said "pgpt is exporting ..." with no line saying it had finished."""
    import dataclasses

    from pgpt.tui.chat import first_run

    release = threading.Event()

    def fake_prepare(settings: Settings, report: Callable[[str, int, int], None], cancel: threading.Event) -> None:
        report("smollm2 int8, export (1.0s): exporting", 1, 2)
        release.wait(60)

    monkeypatch.setattr(first_run, "prepare", fake_prepare)
    app = ChatApp(dataclasses.replace(settings, home=tmp_path / "home"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: any(t.kind == "notice" for t in turns(app)))
        shown = [w for w in app.query_one(ChatLog).children if w.has_class("tip") or isinstance(w, Turn)]
        assert [getattr(w, "text", "tip") for w in shown] == [first_run.FIRST_RUN, "tip"]
        release.set()
        await wait_until(pilot, lambda: app.engine is not None)
        assert [t.text for t in turns(app) if t.kind == "notice"] == [first_run.FIRST_RUN_DONE]


def test_the_first_start_bar_never_goes_backwards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The prefill graph's float pass reports "export" after "quantize" began: the bar went 33% -> 25% ->
    42% (t53)."""
    import threading

    from pgpt.export import defaults
    from pgpt.tui.chat import first_run

    order = ("resolve", "load", "export", "quantize", "export", "quantize", "validate", "done")

    def exported(settings, progress, cancel, models):  # type: ignore[no-untyped-def]
        for stage in order:
            progress(stage, f"[   1.0s] {stage}")

    monkeypatch.setattr(first_run, "models_to_prepare", lambda settings: [defaults.missing_defaults(tmp_path)[0]])
    monkeypatch.setattr(defaults, "prepare_defaults", exported)
    steps: list[int] = []
    first_run.prepare(Settings(home=tmp_path / "home", model_cache=tmp_path), lambda text, step, total:
                      steps.append(step), threading.Event())
    assert steps == sorted(steps) and steps[-1] == len(first_run.LLM_STAGES), steps
