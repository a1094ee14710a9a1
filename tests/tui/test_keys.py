"""Keys of the chat pressed while something runs (an answer, the model's load, an add of documents), and the
command palette, driven by Pilot on the real default models."""

from __future__ import annotations

from pathlib import Path

from pgpt.runtime.conversations import load_conversation
from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.settings import Settings
from pgpt.tui.chat.library import UNCHECKED
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
