"""The chat app at 80x24 on the real default model: a long conversation (in this process and as a
client of pgpt-serve), a question too long, an answer with no text, and Ctrl+C while an answer is
written (user test t37, findings 9, 10, 16)."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from pgpt.runtime.conversations import load_conversation
from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.settings import Settings
from pgpt.tui.chat.app import ChatApp
from test_app import SIZE, endless_app, status, stop_a_long_answer, turns, wait_until

from serve_support import RunningServer, start_server

CONTEXT = 400  # the model's 8,192 tokens made to look small: the same trimming, read in a second


async def loaded(pilot: Pilot, context: int = CONTEXT) -> ChatApp:
    """The app once its model is loaded, with a context of ``context`` tokens."""
    app = pilot.app
    assert isinstance(app, ChatApp)
    await wait_until(pilot, lambda: app.engine is not None)
    assert app.engine is not None
    app.engine.model.max_context = context
    return app


async def send(pilot: Pilot, question: str) -> None:
    """Type ``question``, press Enter and wait until the answer (or its refusal) ends."""
    app = pilot.app
    assert isinstance(app, ChatApp)
    await pilot.press(*question, "enter")
    await wait_until(pilot, lambda: not app.answering)
    await app.workers.wait_for_complete()


async def answered_past_the_context(pilot: Pilot) -> str:
    """Give the app's chat three long turns (more than CONTEXT tokens), ask a question, check that it
    was answered, and return the one note under it."""
    app = pilot.app
    assert isinstance(app, ChatApp)
    for number in range(3):
        app.conversation += [{"role": "user", "content": f"Question {number}: " + "harbor " * 60},
                             {"role": "assistant", "content": f"Answer {number}: " + "ferry " * 60}]
    await send(pilot, "What is two plus two?")
    answer = [t for t in turns(app) if t.kind == "assistant"][-1]
    assert answer.text.strip() and not answer.mark.startswith("(failed"), answer.mark
    (note,) = app.query("Turn.note")
    return str(note.text)


def refusals(server: RunningServer) -> float:
    """The server's 400 answers to /v1/chat/completions, as its /metrics counts them."""
    with server.http() as client:
        lines = client.get("/metrics").text.splitlines()
    return sum(float(line.split()[-1]) for line in lines if line.startswith("pgpt:http_requests_total{")
               and 'status="400"' in line and "/v1/chat/completions" in line)


async def test_a_long_chat_leaves_out_its_oldest_turns_and_says_so_once(settings: Settings) -> None:
    """Every turn failed with "Prompt too long" once a chat outgrew the context; nothing dropped old turns."""
    app = ChatApp(settings, SamplingOptions(max_new_tokens=16), use_cache=False)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        note = await answered_past_the_context(pilot)
        assert note == "Older turns are left out to fit the model's 400 tokens (Ctrl+N starts a new chat)."
        assert len(app.conversation) == 8  # the chat keeps every turn; only what the model reads is cut
        left_out = app.left_out_turns
        assert left_out >= 1
        await send(pilot, "And three plus three?")
        assert len(app.query("Turn.note")) == 1  # said once a chat, not under every answer
        assert "TTFT" in status(app)
        # reopened (F5), the chat keeps its note and does not send its left-out turns again (t72)
        assert app.saved is not None
        saved = load_conversation(settings, app.saved.id)
        assert saved.left_out >= left_out and saved.turns[-3]["kind"] == "note"
        app.open_conversation(saved)
        await pilot.pause()
        assert app.left_out_turns == saved.left_out and [t.text for t in app.query("Turn.note")] == [note]


@pytest.mark.slow  # a server subprocess
async def test_a_client_leaves_out_the_oldest_turns_its_server_refuses(settings: Settings) -> None:
    """As a client of pgpt-serve, a chat past the server's context failed every turn with "Prompt too
    long" (the server's API refuses rather than shortens), and the note about left-out turns asked
    a server's model for its size, which only the server knows."""
    import dataclasses

    server = start_server(dataclasses.replace(settings, home=settings.home / "server"), "--context", str(CONTEXT))
    try:
        client = Settings(home=settings.home / "client", model_cache=settings.home / "no-models", server=server.url)
        app = ChatApp(client, SamplingOptions(max_new_tokens=16), use_cache=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.engine is not None)
            assert app.mode == "chat"  # the server has no documents
            note = await answered_past_the_context(pilot)
            assert note == "Older turns are left out to fit the server model's context (Ctrl+N starts a new chat)."
            assert len(app.conversation) == 8 and status(app).startswith("server 127.0.0.1:")
            # the next turn starts from what fitted: it asked the full chat again, one more refusal
            # for each turn left out, every turn (t72)
            refused = refusals(server)
            assert refused == app.left_out_turns >= 1
            await send(pilot, "And three plus three?")
            assert refusals(server) == refused and "TTFT" in status(app)
    finally:
        server.stop()


async def test_a_question_too_long_alone_is_refused_with_the_apps_advice_and_kept_selected(
        settings: Settings) -> None:
    """The refusal named --max-tokens, which the app has not; the question came back with the cursor at
    its start, and the next question typed was glued before it."""
    app = ChatApp(settings, SamplingOptions(max_new_tokens=16), use_cache=False)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        long_question = "harbor " * CONTEXT
        prompt = app.query_one("#prompt", Input)
        prompt.value = long_question
        await pilot.press("enter")
        await wait_until(pilot, lambda: not app.answering)
        await app.workers.wait_for_complete()
        assert turns(app)[-1].mark.startswith("(failed: Prompt too long: ")
        (toast,) = [n for n in app._notifications if n.title == "Prompt too long"]
        assert "--max-tokens" not in toast.message and "Ctrl+N" not in toast.message  # a new chat has no turns to drop
        assert "Shorten the question: by itself" in toast.message
        assert "back in the input, selected" in toast.message
        assert prompt.value == long_question.strip() and prompt.selected_text == prompt.value
        await pilot.press(*"Hi")  # a new question replaces it
        assert prompt.value == "Hi"


async def test_an_answer_with_no_text_says_no_answer_and_is_not_cached(settings: Settings,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """It showed "…", and the same question later got the empty answer back from the cache, "cached"."""
    app = ChatApp(settings, SamplingOptions(max_new_tokens=16))
    async with app.run_test(size=SIZE) as pilot:
        engine = (await loaded(pilot, 8192)).engine
        assert engine is not None
        with monkeypatch.context() as patch:  # the model ends at once: its first token is the end token
            patch.setattr(engine.model, "generate", lambda *args, **kwargs: iter(()))
            await send(pilot, "Hello there")
        answer = turns(app)[-1]
        assert (answer.text, answer.mark) == ("", "(no answer)")
        assert "…" not in str(answer.render()) and "(no answer)" in str(answer.render())
        await send(pilot, "Hello there")
        assert turns(app)[-1].text.strip() and not status(app).endswith("cached")


async def test_ctrl_c_stops_a_running_answer_and_otherwise_says_how_to_quit(settings: Settings) -> None:
    """Ctrl+C only said "Press ctrl+q to quit the app" while the answer went on."""
    app = endless_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        answer = await stop_a_long_answer(pilot, "ctrl+c")
        assert answer.mark == "(stopped)" and answer.text.strip()
        assert not any(n.title == "Do you want to quit?" for n in app._notifications)
        await pilot.press("ctrl+c")  # nothing to stop: Textual's own hint
        await pilot.pause()
        assert any(n.title == "Do you want to quit?" for n in app._notifications)
        assert app.is_running
