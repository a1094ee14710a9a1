"""Keys of the chat pressed while something runs (an answer, the model's load, an add of documents), and the
command palette, driven by Pilot on the real default models."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Input

from pgpt.runtime.conversations import load_conversation
from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.settings import Settings
from pgpt.tui.chat.app import ChatApp
from pgpt.tui.chat.library import MODES, UNCHECKED
from test_app import SIZE, ask, endless_app, start_a_long_answer, turns, wait_until


def index_a_note(settings: Settings, folder: Path) -> None:
    """Index one small text file, so that the app starts in Documents mode."""
    from pgpt.runtime.documents.ingest import ingest
    from pgpt.runtime.llm.embeddings import default_embedder

    folder.mkdir()
    (folder / "zephyr.txt").write_text("Project Zephyr is a weather balloon. The launch code of project Zephyr "
                                       "is 7341. The ferry to the island leaves at noon every Tuesday.\n")
    ingest(settings, [folder], default_embedder(settings))


def saved_chats(settings: Settings) -> list[Path]:
    return sorted((settings.home / "conversations").glob("*.json"))


async def test_ctrl_n_during_an_answer_keeps_it_stopped_and_saved_then_opens_a_new_chat(settings: Settings) -> None:
    """Ctrl+N while an answer streamed threw the question and the partial answer away: no "(stopped)",
    and no saved chat held the question (Ctrl+Q at the same moment kept and saved it)."""
    app = endless_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await start_a_long_answer(pilot)
        await pilot.press("ctrl+n")
        assert turns(app) == [] and app.conversation == [] and not app.answering and app.saved is None
        (path,) = saved_chats(settings)
        saved = load_conversation(settings, path.stem)
        question, answer = saved.turns
        assert question == {"kind": "user", "text": "Tell me a very long story."}
        assert answer["kind"] == "assistant" and answer["text"].strip() and answer["mark"] == "(stopped)"
        assert saved.context == [{"role": "user", "content": question["text"]},
                                 {"role": "assistant", "content": answer["text"]}]
        await app.workers.wait_for_complete()  # the stopped answer's last messages change nothing
        assert turns(app) == []
        app.sampling = SamplingOptions(max_new_tokens=8)
        await ask(pilot, "Hi")  # the new chat answers, and is saved in a file of its own
        assert [t.kind for t in turns(app)] == ["user", "assistant"] and turns(app)[1].text
        assert len(saved_chats(settings)) == 2
        assert load_conversation(settings, path.stem).turns == saved.turns


async def test_ctrl_n_during_a_documents_answer_keeps_it_marked_as_esc_does(settings: Settings,
                                                                           tmp_path: Path) -> None:
    """In Documents mode the unchecked draft goes, as Esc takes it away, with Esc's mark."""
    index_a_note(settings, tmp_path / "docs")
    app = endless_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.engine is not None)
        assert app.mode == "docs"
        await pilot.press(*"Tell me everything about project Zephyr.", "enter")
        await wait_until(pilot, lambda: bool(app.answering and turns(app)[-1].text))
        await pilot.press("ctrl+n")
        assert turns(app) == [] and not app.answering
        (path,) = saved_chats(settings)
        question, answer = load_conversation(settings, path.stem).turns
        assert question["text"] == "Tell me everything about project Zephyr."
        assert answer == {"kind": "assistant", "text": "", "mark": UNCHECKED}


@pytest.fixture()
def slow_model_load(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """The chat model's load waits until the event is set (it took a second here, minutes for a big model)."""
    from pgpt.runtime.llm.chat import ChatEngine

    loaded = threading.Event()
    real_init = ChatEngine.__init__

    def init_when_released(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        loaded.wait(120)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(ChatEngine, "__init__", init_when_released)
    yield loaded
    loaded.set()  # a test that failed early does not leave the worker waiting


async def test_ctrl_r_switches_modes_while_the_model_loads(settings: Settings, tmp_path: Path,
                                                           slow_model_load: threading.Event) -> None:
    """Ctrl+R during "Loading model…" was refused (Documents and Search "need the embedding model",
    which was only loading), so the question typed next went to Chat mode."""
    index_a_note(settings, tmp_path / "docs")
    app = ChatApp(settings, SamplingOptions(max_new_tokens=8))
    async with app.run_test(size=SIZE) as pilot:
        prompt = app.query_one("#prompt", Input)
        assert app.mode == "docs" and app.engine is None
        for mode in ("chat", "search", "docs", "chat", "search"):
            await pilot.press("ctrl+r")
            assert app.mode == mode and prompt.border_title.startswith(MODES[mode])
        assert not app._notifications  # nothing refused
        await pilot.press(*"launch code", "enter")  # waits for the model, in the mode shown
        assert app.answering and app.engine is None
        slow_model_load.set()
        await wait_until(pilot, lambda: not app.answering and len(turns(app)) == 2)
        found = turns(app)[1]
        assert "zephyr.txt" in found.text and "7341" in found.text  # Search's passages, not a chat answer
        assert app.mode == "search" and app.conversation == []


async def test_ctrl_c_while_documents_are_added_says_that_ctrl_x_stops_adding(settings: Settings,
                                                                               tmp_path: Path) -> None:
    """Ctrl+C on the Docs panel during an add said only "Press ctrl+q to quit the app"."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.txt").write_text("The harbour crane lifts forty tonnes.\n")
    app = ChatApp(settings, SamplingOptions(max_new_tokens=8))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.library is not None)
        release = threading.Event()  # the add waits before its first file: it is running when Ctrl+C comes
        real_embed = app.library.embedder.embed
        app.library.embedder.embed = lambda *args, **kwargs: release.wait(120) and real_embed(*args, **kwargs)
        try:
            await pilot.press("f4", *str(docs), "enter")
            await wait_until(pilot, lambda: app._ingesting())
            await pilot.press("ctrl+c")
            (toast,) = list(app._notifications)
            assert "Ctrl+X stops adding" in toast.message and "Ctrl+Q quits" in toast.message
            assert app._ingesting() and app.is_running  # Ctrl+C itself stops nothing
        finally:
            release.set()
        await wait_until(pilot, lambda: not app._ingesting(), timeout=60)
        app.clear_notifications()
        await pilot.press("ctrl+c")  # nothing running: Textual's hint that Ctrl+Q quits
        assert [n.title for n in app._notifications] == ["Do you want to quit?"]


async def test_the_palette_leaves_out_textuals_maximize(settings: Settings) -> None:
    """Ctrl+P offered Textual's "Maximize", which blanked the screen with hatching and named no way back."""
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        for key in (None, "f4"):  # the chat's input, then the Docs panel's
            if key:
                await pilot.press(key)
            assert app.screen.focused is not None and app.screen.focused.allow_maximize
            titles = [command.title for command in app.get_system_commands(app.screen)]
            assert "Maximize" not in titles and "Minimize" not in titles
            assert "Docs (F4)" in titles and "Quit (Ctrl+Q)" in titles and "Theme" in titles


async def test_ctrl_y_copies_the_answer_in_view_after_pgup(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the last answer could be copied: an earlier one, scrolled back to, had no key (t72 M7)."""
    from pgpt.runtime.conversations import new_conversation

    for name in ("TMUX", "STY"):  # a developer's tmux: the notice would name its paste buffer
        monkeypatch.delenv(name, raising=False)
    saved = new_conversation()
    for number in range(1, 7):
        saved.turns += [{"kind": "user", "text": f"Question {number}?"},
                        {"kind": "assistant", "text": f"Answer {number}. " + "The harbour is quiet. " * 30}]
    app = ChatApp(settings, SamplingOptions(max_new_tokens=8))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.engine is not None)
        app.open_conversation(saved)
        await pilot.pause()
        log = app.query_one("#log")
        await pilot.press("end")
        await wait_until(pilot, lambda: log.scroll_y == log.max_scroll_y)
        await pilot.press("ctrl+y")
        assert app.clipboard.startswith("Answer 6. ")
        assert list(app._notifications)[-1].message.startswith("Copied the last answer (")
        while log.scroll_y > 0:
            await pilot.press("pageup")
            await pilot.pause()
        await pilot.press("ctrl+y")  # the top of the chat: the first answer is the last one in view
        assert app.clipboard.startswith("Answer 1. ")
        assert list(app._notifications)[-1].message.startswith("Copied the answer in view (")
