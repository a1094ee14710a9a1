"""The chat app driven by Pilot at 80x24 on the real default model (clean_text: test_clean_text.py; the
first-start note and tips: test_first_start.py; documents mode: test_app_documents.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input, Static

from pgpt.runtime.conversations import load_conversation
from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.settings import Settings
from pgpt.tui.chat.app import ChatApp, Turn
from pgpt.tui.chat.widgets import ChatLog

QUESTION = "What is the capital of France?"
SIZE = (80, 24)


async def wait_until(pilot: Pilot, condition: Callable[[], bool], timeout: float = 120.0) -> None:
    """Let the app run until ``condition`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the app"
        await pilot.pause(0.05)


async def ask(pilot: Pilot, question: str) -> None:
    """Type a question, press Enter and wait for the answer to end."""
    app = pilot.app
    assert isinstance(app, ChatApp)
    before = len(turns(app))
    await pilot.press(*question, "enter")
    await wait_until(pilot, lambda: len(turns(app)) == before + 2 and not app.answering)
    await app.workers.wait_for_complete()


def turns(app: ChatApp) -> list[Turn]:
    return list(app.query(Turn))


def status(app: ChatApp) -> str:
    return str(app.query_one("#status", Static).render())


async def test_question_gets_a_streamed_answer_with_timings_and_context(settings: Settings) -> None:
    app = ChatApp(settings, SamplingOptions(max_new_tokens=24))
    async with app.run_test(size=SIZE) as pilot:
        assert app.focused is app.query_one("#prompt", Input)
        await ask(pilot, QUESTION)
        user, answer = turns(app)
        assert (user.kind, user.text) == ("user", QUESTION)
        assert answer.kind == "assistant" and answer.text.strip() and answer.mark == ""
        line = status(app)
        assert line.startswith(("CPU · smollm2-135m-instruct", "CUDA · smollm2-135m-instruct"))
        assert "TTFT" in line and "tok/s" in line and "cached" not in line
        # which export answers, as the CLI and a server say it (the app never showed a version)
        info = app.engine.model.info
        assert f" · {info.name}@{info.version[:6]} · " in line and len(info.version) > 6
        assert app.query_one("#prompt", Input).value == ""

        await ask(pilot, "And of Italy?")  # the follow-up is sent with the first exchange
        assert [m["role"] for m in app.conversation] == ["user", "assistant", "user", "assistant"]
        assert app.conversation[1]["content"] == answer.text

        await pilot.press("ctrl+n")
        assert turns(app) == [] and app.conversation == []
        await ask(pilot, QUESTION)  # same prompt and options: served by the answer cache
        assert turns(app)[1].text == answer.text
        assert status(app).endswith("cached")


def endless_app(settings: Settings) -> ChatApp:
    """An app whose answers run until stopped."""
    return ChatApp(settings, SamplingOptions(max_new_tokens=4000, ignore_eos=True), use_cache=False)


async def start_a_long_answer(pilot: Pilot) -> None:
    """Ask for a story and wait until its first words are shown."""
    app = pilot.app
    assert isinstance(app, ChatApp)
    await pilot.press(*"Tell me a very long story.", "enter")
    await wait_until(pilot, lambda: bool(app.answering and turns(app)[-1].text))


async def stop_a_long_answer(pilot: Pilot, key: str) -> Turn:
    """Start a long answer, press ``key`` once its first words are shown, and return its turn once it ended."""
    app = pilot.app
    assert isinstance(app, ChatApp)
    await start_a_long_answer(pilot)
    await pilot.press(key)
    await wait_until(pilot, lambda: not app.answering, timeout=30)
    await app.workers.wait_for_complete()
    return turns(app)[1]


async def test_escape_stops_a_running_answer_and_keeps_the_partial_text(settings: Settings) -> None:
    app = endless_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        answer = await stop_a_long_answer(pilot, "escape")
        assert answer.mark == "(stopped)" and answer.text.strip()
        assert "(stopped)" in str(answer.render())
        assert status(app).endswith("stopped")
        assert app.conversation[-1] == {"role": "assistant", "content": answer.text}
        # saved with its mark, so that the chat reopened from F5 says so too (it read as a whole answer)
        saved = load_conversation(settings, app.saved.id)
        assert saved.turns[-1]["mark"] == "(stopped)"
        app.open_conversation(saved)
        await pilot.pause()
        assert turns(app)[1].mark == "(stopped)" and "(stopped)" in str(turns(app)[1].render())

        app.sampling = SamplingOptions(max_new_tokens=8)  # still answers after a cancel
        await ask(pilot, "Hi")
        # ... and its answer, cut at 8 tokens, says so: a cut answer must not look whole
        assert len(turns(app)) == 4 and turns(app)[3].text and turns(app)[3].mark == "(cut at the 8-token limit)"


async def test_quitting_during_a_first_answer_saves_the_chat_with_the_partial_answer(settings: Settings) -> None:
    """Ctrl+Q (or SIGTERM) while a chat's first answer streamed left nothing on disk: F5 did not list it."""
    app = endless_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await start_a_long_answer(pilot)
        await pilot.press("ctrl+q")  # the app ends; run_test returns once it has
    (path,) = (settings.home / "conversations").glob("*.json")
    saved = load_conversation(settings, path.stem)
    question, answer = saved.turns
    assert question == {"kind": "user", "text": "Tell me a very long story."}
    assert answer["kind"] == "assistant" and answer["text"].strip() and answer["mark"] == "(stopped)"
    assert saved.context == [{"role": "user", "content": question["text"]},
                             {"role": "assistant", "content": answer["text"]}]  # the chat goes on from there


async def test_a_missing_chosen_model_says_to_run_the_export(tmp_path: Path) -> None:
    # PGPT_MODEL names a model: the app does not replace it with the built-in default
    app = ChatApp(Settings(home=tmp_path / "home", model_cache=tmp_path / "empty", model="no-such-model"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(app.load_error), timeout=30)
        (notice,) = turns(app)
        assert notice.kind == "notice" and "pgpt-export --default" in notice.text
        assert "PGPT_MODEL names a model that is not exported" in notice.text  # where the name came from
        assert status(app) == "No chat model loaded"
        await pilot.press(*"hello", "enter")  # refused with a notification, nothing crashes
        assert not app.answering and len(turns(app)) == 1


async def test_choosing_a_model_on_f3_replaces_a_pgpt_model_that_names_none(settings: Settings) -> None:
    """With PGPT_MODEL naming no model, F3 said "... is now the chat model; the chat is loading it",
    and the chat failed again on PGPT_MODEL's name: there was no way out inside the app."""
    import dataclasses

    from pgpt.runtime.models import chat_model_name
    from pgpt.tui.chat.messages import ModelChanged

    app = ChatApp(dataclasses.replace(settings, model="no-such-model"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(app.load_error), timeout=30)
        (notice,) = turns(app)
        assert "PGPT_MODEL" in notice.text and "F3" in notice.text and "all-minilm" in notice.text
        name = chat_model_name(settings)  # what F3 writes as the active model, then announces
        app.post_message(ModelChanged(name))
        await wait_until(pilot, lambda: app.engine is not None, timeout=60)
        assert app.engine.model.info.name == name and app.settings.model == ""
        await ask(pilot, QUESTION)
        assert turns(app)[-1].kind == "assistant" and turns(app)[-1].text


async def test_a_long_question_is_shown_cut_but_kept_whole(tmp_path: Path) -> None:
    """A pasted 24 KB question filled the conversation with dozens of rows."""
    app = ChatApp(Settings(home=tmp_path / "home", model_cache=tmp_path / "empty", model="no-such-model"))
    async with app.run_test(size=SIZE) as pilot:
        question = "[b]Why?[/b] " * 500  # markup in it stays text
        turn = app.query_one(ChatLog).add_turn("user", question)
        await pilot.pause()
        shown = str(turn.render())
        assert turn.text == question and "(and 4,800 more characters)" in shown and "[b]Why?[/b]" in shown
        assert len(shown) < 1300


async def test_a_pasted_text_keeps_all_its_lines_and_loses_its_control_characters(tmp_path: Path) -> None:
    """A tester pasted "Summarise this:\nThe ferry leaves at noon.\n..." and the prompt kept only its first line."""
    from textual import events

    app = ChatApp(Settings(home=tmp_path / "home", model_cache=tmp_path / "empty", model="no-such-model"))
    async with app.run_test(size=SIZE) as pilot:
        prompt = app.query_one("#prompt", Input)
        await pilot.press(*"Q: ")
        prompt.post_message(events.Paste("Summarise this:\nThe ferry leaves at noon.\r\n\n  It costs 42 \x1b[31meuros.\n"))
        await pilot.pause()
        assert prompt.value == "Q: Summarise this: The ferry leaves at noon. It costs 42 euros."
        prompt.clear()  # as a terminal sends a paste: its line ends as CR (they were glued: "Skarhamn?Third", t54)
        prompt.post_message(events.Paste("When does it leave Skarhamn?\rThird line\rdaily.\r\nLine 2"))
        await pilot.pause()
        assert prompt.value == "When does it leave Skarhamn? Third line daily. Line 2"


async def test_typing_with_the_conversation_focused_goes_to_the_prompt(tmp_path: Path) -> None:
    """A click or a mouse selection in the conversation took the focus: the words typed then went
    nowhere until Tab (t54)."""
    app = ChatApp(Settings(home=tmp_path / "home", model_cache=tmp_path / "empty", model="no-such-model"))
    async with app.run_test(size=SIZE) as pilot:
        log = app.query_one(ChatLog)
        await pilot.click(ChatLog)
        log.focus()
        await pilot.pause()
        assert app.focused is log
        await pilot.press(*"Wann?")
        prompt = app.query_one("#prompt", Input)
        assert prompt.value == "Wann?" and app.focused is prompt


async def test_the_status_line_is_fitted_again_when_the_terminal_widens(tmp_path: Path) -> None:
    """At 200 columns it kept the model's name cut as at 50, until the next answer (t54)."""
    app = ChatApp(Settings(home=tmp_path / "home", model_cache=tmp_path / "empty", model="no-such-model"))
    async with app.run_test(size=(50, 16)) as pilot:
        await pilot.pause()
        parts = ("CPU", "smollm2-135m-instruct-int8@9d026a", "TTFT 0.28 s", "32.7 tok/s")
        app._set_status(*parts)
        assert "\u2026" in status(app)
        await pilot.resize_terminal(200, 50)
        await pilot.pause()
        await pilot.pause()
        assert status(app) == " · ".join(parts)


def test_the_status_line_shows_speeds_only_when_the_model_ran() -> None:
    """A "not found" decided before any model ran said "TTFT 0.00 s · 0.0 tok/s"."""
    from pgpt.runtime.llm.chat import ChatResult
    from pgpt.tui.chat.widgets import describe_result

    ran = ChatResult("x", "m", "cpu", timings={"ttft_s": 0.31, "decode_tok_s": 55.0})
    early = ChatResult("not found", "m", "cpu", timings={"embed_s": 0.01, "ttft_s": 0.0, "decode_tok_s": 0.0})
    assert describe_result(ran, False).endswith("m · TTFT 0.31 s · 55.0 tok/s")
    fast = ChatResult("x", "m", "cuda", timings={"ttft_s": 0.05, "decode_tok_s": 107.1})  # 3 digits are enough
    assert describe_result(fast, False).endswith("m · TTFT 0.05 s · 107 tok/s")
    assert describe_result(early, False).endswith(" · m") and "TTFT" not in describe_result(early, False)
    one_token = ChatResult("OK", "m", "cpu", timings={"ttft_s": 0.4, "decode_tok_s": 0.0})  # no decode step (t68)
    assert describe_result(one_token, False).endswith("m · TTFT 0.40 s")
    local = ChatResult("x", "m", "cpu", version="0123456789ab")  # a server's "m@0123456789ab" is shown as it is
    assert describe_result(local, False) == "CPU · m@012345"
    assert describe_result(ChatResult("x", "m@0123456789ab", "server h:1"), False) == "server h:1 · m@0123456789ab"


def test_the_status_line_keeps_its_speeds_within_80_columns() -> None:
    from pgpt.tui.chat.widgets import fit_status

    speeds = "TTFT 13.20 s · 11.3 tok/s"
    short = f"CPU · smollm2-135m-instruct-int8 · {speeds}"
    assert fit_status(short, 78) == short  # what fits stays whole
    versioned = f"server 127.0.0.1:41234 · qwen2.5-coder-1.5b-instruct-int4@1a2b3c4d5e6f · {speeds}"
    assert fit_status(versioned, 90) == f"server 127.0.0.1:41234 · qwen2.5-coder-1.5b-instruct-int4 · {speeds}"
    for width in (78, 60):  # then the longest part gives way, never the speeds
        fitted = fit_status(versioned, width)
        assert len(fitted) == width and fitted.endswith(speeds) and "int4@" not in fitted and "\u2026" in fitted


async def test_escape_is_acknowledged_at_once(settings: Settings) -> None:
    """Esc while a 1.5B model read its prompt showed "answering… Esc stops" for 3-4 s more (t53)."""
    app = endless_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await start_a_long_answer(pilot)
        app.action_stop()  # what Esc runs, read before the worker can answer
        assert "stopping after the model's current step…" in status(app)
        await wait_until(pilot, lambda: not app.answering, timeout=30)
        assert status(app).endswith("stopped")
