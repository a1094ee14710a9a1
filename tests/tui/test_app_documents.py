"""The chat app's documents mode driven by Pilot at 80x24 on the real default model: answers with
quotes, "not found" with the closest passages (and the files an add left out), search mode, and
adding a folder while chat goes on."""

from __future__ import annotations

import threading
from pathlib import Path

from textual.content import Content
from textual.widgets import Input

from pgpt.runtime.conversations import load_conversation
from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.settings import Settings
from pgpt.tui.chat.app import ChatApp
from pgpt.tui.chat.messages import ANSWER_STEPS
from pgpt.tui.chat.widgets import ChatLog
from test_app import SIZE, turns, wait_until


async def test_documents_mode_answers_with_quotes_and_search_mode_highlights_the_sentence(settings: Settings,
                                                                                       tmp_path: Path) -> None:
    from pgpt.runtime.documents.ingest import ingest
    from pgpt.runtime.llm.embeddings import default_embedder

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "zephyr.txt").write_text("Project Zephyr is a weather balloon. The launch code of project Zephyr is 7341. "
                                     "It flies from the harbour [bold]every[/] spring.\n")
    (docs / "ferry.txt").write_text("The ferry to the island leaves at noon every Tuesday.\n")
    (docs / "[b]timetable.xlsx").write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)  # no reader: left out
    ingest(settings, [docs], default_embedder(settings))
    app = ChatApp(settings, SamplingOptions(max_new_tokens=24))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.engine is not None)
        assert app.mode == "docs" and "documents" in app.query_one("#prompt", Input).placeholder
        said: list[str] = []
        set_status = app._set_status
        app._set_status = (  # type: ignore[method-assign]
            lambda *parts, **kw: (said.append(" · ".join(parts)), set_status(*parts, **kw))[1])
        await pilot.press(*"What is the launch code of project Zephyr?", "enter")
        await wait_until(pilot, lambda: not app.answering and len(turns(app)) == 4)
        # its steps, not "answering…" throughout (t53); a step may be replaced by the next before it is shown
        steps = [step for step in ANSWER_STEPS.values() if any(line.endswith(step) for line in said)]
        assert steps and steps[-1] == ANSWER_STEPS["checking"], said
        assert [step for line in said for step in steps if line.endswith(step)] == steps, said
        question, answer, quotes, sources = turns(app)
        assert answer.kind == "assistant" and "7341" in answer.text
        log = app.query_one(ChatLog)  # the question stays in view, though quotes and sources followed it
        await wait_until(pilot, lambda: log.scroll_y <= question.virtual_region.y)
        assert quotes.kind == "quotes" and "zephyr.txt" in quotes.text
        assert "\u201cThe launch code of project Zephyr is 7341.\u201d" in quotes.text
        assert sources.kind == "sources" and sources.text.startswith("[1] ") and "zephyr.txt" in sources.text
        # in the chat's context as shown, so that Chat mode (Ctrl+R) reads them too: "say that shorter" (t72),
        # but for the citation markers, which the model copied into its chat replies (t76)
        assert "[1]" in answer.text
        assert app.conversation == [{"role": "user", "content": "What is the launch code of project Zephyr?"},
                                    {"role": "assistant", "content": answer.text.replace(" [1]", "").strip()}]
        await pilot.press("ctrl+y")  # the answer with what supports it, as shown
        assert app.clipboard == f"{answer.text}\n\n{quotes.text}\n\n{sources.text}"
        assert list(app._notifications)[-1].message.startswith("Copied the last answer and its quotes and sources (")
        await pilot.press(*"How many passengers can the ferry to the island carry?", "enter")
        await wait_until(pilot, lambda: not app.answering and len(turns(app)) == 7)
        answer, closest = turns(app)[-2:]
        assert "could not find" in answer.text and closest.kind == "closest"
        # the draft streamed first ("The ferry ... leaves at noon"): its vanishing is explained
        assert answer.mark == "(replaced: the model's own answer was not supported by the sources)"
        assert closest.text.startswith("Closest passages") and "ferry.txt" in closest.text
        # the spreadsheet that may hold the answer was never read: said under the passages (t61), as plain text
        assert closest.text.endswith("Not searched: 1 file left out when added, so no answer comes from it: "
                                     f"{docs}/[b]timetable.xlsx (unsupported format (.xlsx)). `pgpt-tui docs` "
                                     "lists them with the way to add them.")
        assert "\\[b]timetable" in closest.markup
        await pilot.press("ctrl+y")  # it copied only "I could not find ...", not the passages to judge
        assert app.clipboard == f"{answer.text}\n\n{closest.text}" and "ferry.txt" in app.clipboard
        # kept for a follow-up ("And when does it close?" was searched alone and "not found" before the model ran)
        assert app.asked == ["What is the launch code of project Zephyr?",
                             "How many passengers can the ferry to the island carry?"]
        assert "[reverse]" in closest.markup  # each passage's sentence closest to the question stands out
        prompt = app.query_one("#prompt", Input)
        prompt.value = "Is the ferry late? " * 1300  # 24 KB: refused before the model reads it
        await pilot.press("enter")
        await wait_until(pilot, lambda: not app.answering and turns(app)[-1].mark.startswith("(failed"))
        assert turns(app)[-1].text == "" and any(n.title == "Prompt too long" for n in app._notifications)
        # why stays in the conversation once the toast is gone (it read "… (failed)"), on one line
        failed = turns(app)[-1]
        assert failed.mark.startswith("(failed: Prompt too long: ") and failed.mark.endswith(")"), failed.mark
        await pilot.pause()
        assert failed.content_size.height == 1 and "\n" not in failed.mark, (failed.content_size, failed.mark)
        await pilot.press("ctrl+y")
        assert list(app._notifications)[-1].message.startswith(
            "Nothing to copy: the last answer has no text (failed: Prompt too long: ")
        prompt.value = ""  # it came back to be shortened
        app.sampling = SamplingOptions(max_new_tokens=4000, ignore_eos=True)
        await pilot.press(*"Tell me everything about project Zephyr.", "enter")
        await wait_until(pilot, lambda: bool(app.answering and turns(app)[-1].text))
        await pilot.press("escape")  # Esc stops a document answer too
        await wait_until(pilot, lambda: not app.answering, timeout=30)
        # the draft, never checked against the documents, is not left on screen as if it were the
        # answer (it was, marked only "(stopped)", and saved as an answer without the mark)
        stopped = [t for t in turns(app) if t.kind == "assistant"][-1]
        assert stopped.text == "" and stopped.mark == "(stopped before the answer was checked against your documents)"
        saved = load_conversation(settings, app.saved.id).turns
        assert saved[-1] == {"kind": "assistant", "text": "", "mark": stopped.mark}
        # the refused question is no turn of the saved chat (it was, whole, marked "(failed)", and F5 counted it)
        assert [t["text"][:9] for t in saved if t["kind"] == "user"] == ["What is t", "How many ", "Tell me e"]
        assert not any(str(t.get("mark")).startswith("(failed") for t in saved)
        await pilot.press("ctrl+y")  # it said nothing at all: every Ctrl+Y says something
        assert app._notifications and list(app._notifications)[-1].message == (
            "Nothing to copy: the last answer was stopped before it was checked.")
        app.sampling = SamplingOptions(max_new_tokens=24)
        await pilot.press("ctrl+r")
        assert app.mode == "chat"
        await pilot.press("ctrl+r")
        assert app.mode == "search"
        await pilot.resize_terminal(80, 14)  # results taller than the log: the view must start at the query
        await pilot.press(*"Zephyr launch code", "enter")
        await wait_until(pilot, lambda: not app.answering and turns(app)[-1].kind == "assistant"
                         and "zephyr.txt" in turns(app)[-1].text)
        found = turns(app)[-1]
        assert "7341" in found.text and "[bold]every[/]" in found.text  # plain text, as the document has it
        query = turns(app)[-2]  # the view starts at the query, so that result [1] is in sight (it stayed at the bottom)
        await wait_until(pilot, lambda: log.scroll_y <= query.virtual_region.y < log.max_scroll_y)
        await pilot.resize_terminal(*SIZE)
        shown = Content.from_markup(found.markup)
        highlights = [shown.plain[s.start:s.end] for s in shown.spans if s.style == "reverse"]
        # one sentence a passage: zephyr.txt's matching one first, then the ferry's only one
        assert highlights == ["The launch code of project Zephyr is 7341.",
                              "The ferry to the island leaves at noon every Tuesday."]
        assert "[bold]every[/]" in shown.plain  # the document's brackets shown, not applied


async def test_a_quote_found_without_the_model_is_not_said_to_replace_its_answer(settings: Settings,
                                                                                  tmp_path: Path) -> None:
    """No passage was close enough to give the model, and a sentence answered the question (t54):
    the quote is the answer itself, not "quoted: the model's own answer was not supported"."""
    from pgpt.runtime.documents.ingest import ingest
    from pgpt.runtime.llm.embeddings import default_embedder

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "lighthouse.md").write_text("# The Varnholm Lighthouse\n\nThe Varnholm lighthouse was built in 1887 on "
                                        "the island of Varnholm. Its keeper in 1920 was Edda Lund.\nThe light can "
                                        "be seen 22 nautical miles out to sea.\n")
    ingest(settings, [docs], default_embedder(settings))
    app = ChatApp(settings, SamplingOptions(max_new_tokens=24))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.engine is not None)
        await pilot.press(*"Who was the keeper in 1920?", "enter")
        await wait_until(pilot, lambda: not app.answering and len(turns(app)) == 3)
        answer, sources = turns(app)[1:3]
        assert answer.text.startswith("Quote from the documents:") and "Edda Lund" in answer.text
        # the quote is the answer: not printed again under "Supporting quotes" (t84), its file under Sources
        assert answer.mark == "" and sources.kind == "sources" and "lighthouse.md" in sources.text


async def test_a_documents_question_with_nothing_indexed_says_how_to_add_documents(settings: Settings) -> None:
    app = ChatApp(settings, SamplingOptions(max_new_tokens=8))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.engine is not None)
        assert app.mode == "chat"
        await pilot.press("ctrl+r")
        assert app.mode == "search"
        await pilot.press(*"launch code", "enter")
        await pilot.pause(0.2)
        assert not turns(app) and not app.answering
        assert app.query_one("#prompt", Input).value == "launch code"  # kept, to ask again later
        [note] = [n for n in app._notifications if n.title == "No documents"]
        assert "Nothing is indexed yet" in note.message and "F4" in note.message


async def test_ctrl_o_adds_a_folder_with_progress_and_chat_keeps_answering(settings: Settings,
                                                                          tmp_path: Path) -> None:
    from textual.widgets import ProgressBar

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(40):
        (docs / f"note{i}.txt").write_text(f"Note {i}: the harbour crane number {i} lifts {i * 3} tonnes.\n\n" * 60)
    (docs / "blob.bin").write_bytes(bytes(range(256)) * 4)
    app = ChatApp(settings, SamplingOptions(max_new_tokens=8))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.engine is not None and app.library is not None)
        assert app.mode == "chat"  # nothing indexed yet
        # The real embedder waits for the test before its first file, so the running state is
        # seen on any machine (on a fast one all 40 files were in before Esc came back).
        release = threading.Event()
        embedder = app.library.embedder
        real_embed = embedder.embed

        def embed_when_released(*args, **kwargs):  # type: ignore[no-untyped-def]
            release.wait(120)
            return real_embed(*args, **kwargs)

        embedder.embed = embed_when_released
        await pilot.press("ctrl+o")  # the Docs screen, its path input focused
        await pilot.press(*str(docs), "enter")
        assert app.screen.query_one("#doc-progress-line").display  # shown at once, hidden at the end
        await pilot.press("escape")  # back to the chat, which answers while documents are being added
        await wait_until(pilot, lambda: app.query_one("#ingest-progress", ProgressBar).display)
        await pilot.press(*"Hi", "enter")
        await wait_until(pilot, lambda: not app.answering and any(t.kind == "assistant" and t.text for t in turns(app)))
        assert app._ingesting()  # the answer came while the ingestion was still running
        release.set()
        await wait_until(pilot, lambda: any(t.kind == "notice" and "added" in t.text for t in turns(app)), timeout=120)
        assert not app._ingesting()
        notice = [t for t in turns(app) if t.kind == "notice"][-1]
        assert "40 added" in notice.text and "skipped" in notice.text and "blob.bin" in notice.text
        assert app.mode == "docs" and app.library is not None and app.library.documents == 40
        assert not app.query_one("#ingest-progress", ProgressBar).display
