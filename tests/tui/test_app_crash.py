"""A bug that reaches Textual ends the app: one paragraph on the terminal, the traceback in the log.

Tester t41 found one (F4 with a file in two collections, since fixed): Textual printed a page of
traceback with local variables over the user's terminal, and pgpt.log had no line about it."""

from __future__ import annotations

import logging

import pytest

from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.settings import Settings
from pgpt.tui.chat.app import ChatApp
from test_app import SIZE, wait_until


async def test_a_bug_in_a_handler_ends_the_app_with_one_paragraph_and_the_traceback_in_the_log(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]) -> None:
    from pgpt.tui.screens.documents.table import DocumentTable

    def broken(self: DocumentTable) -> None:
        raise KeyError("row key '/docs/\x1b]0;x\x07security.md' already exists")  # a path with an escape in it

    monkeypatch.setattr(DocumentTable, "_fill", broken)
    app = ChatApp(settings, SamplingOptions(max_new_tokens=8))
    with caplog.at_level(logging.ERROR), pytest.raises(KeyError):  # Pilot raises the app's error at its end
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.library is not None)
            await pilot.press("f4")
            await wait_until(pilot, lambda: app._exit_renderables or not app.is_running)
    shown = capsys.readouterr().err
    assert shown.startswith("pgpt-tui: Unexpected error: KeyError: "), shown
    # the console wraps the paragraph anywhere, inside the log's path too: compared without the spaces
    said = "This is a bug in pgpt. The details are in " + str(settings.log_file)
    assert "".join(said.split()) in "".join(shown.split()), shown
    assert "Traceback" not in shown and "\x1b]0;" not in shown and "locals" not in shown
    # a paragraph (wrapped by the console), not a page: as many lines as its length needs (the log's path
    # in a pytest-xdist worker's folder is longer, and made it 5 lines)
    lines = shown.strip().splitlines()
    assert len(lines) <= len(shown) // 60 + 1 and all(len(line) >= 40 for line in lines[:-1]), lines
    [record] = [r for r in caplog.records if r.message == "the app stopped on an unexpected error"]
    assert record.exc_info is not None and record.exc_info[0] is KeyError  # the traceback goes to the log
    assert app.return_code == 1


async def test_a_model_loaded_after_the_app_closed_is_released_not_a_crash(settings: Settings) -> None:
    """On a loaded CI machine the app was closed before its model finished loading, and the loaded
    message then looked for the chat screen of an app without screens: "Unexpected error: IndexError"."""
    from pgpt.runtime.llm.chat import ChatEngine
    from pgpt.tui.chat.messages import EngineLoaded

    app = ChatApp(settings, SamplingOptions(max_new_tokens=8))
    async with app.run_test(size=SIZE):
        pass
    engine = ChatEngine(settings)
    app._engine_loaded(EngineLoaded(engine))  # as the worker's message arrives after the exit
    assert app.engine is None and engine.model.session is None  # released, not kept by a closed app
