"""What the chat app sends its model of a conversation (tui/chat/context.py): turns left out stay
out, Documents answers are context for Chat mode, and the notes a long chat gets (user test t72)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgpt.runtime.conversations import load_conversation, new_conversation, save_conversation
from pgpt.runtime.errors import PgptError
from pgpt.runtime.settings import Settings
from pgpt.tui.chat.context import REWORK_HINT, close_turn, messages_to_send, repeats, rework_hint, uncited


def chat(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    """A conversation of (question, answer) pairs."""
    return [m for q, a in pairs for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})]


def test_turns_left_out_once_are_not_sent_again() -> None:
    """A client of pgpt-serve sent the whole chat each turn: one refused request per turn left out (t72 M5)."""
    conversation = chat(("one", "1"), ("two", "2"), ("three", "3")) + [{"role": "user", "content": "four"}]
    assert messages_to_send(conversation, [], "chat", 0) == conversation
    assert messages_to_send(conversation, [], "chat", 2) == conversation[4:]
    assert messages_to_send(conversation, [], "chat", 9) == conversation[-1:]  # the question always goes
    system = [{"role": "system", "content": "Be brief."}]
    assert messages_to_send(system + conversation, [], "chat", 1) == system + conversation[2:]


def test_documents_mode_sends_its_earlier_questions_then_this_one() -> None:
    conversation = chat(("Who runs the club?", "Ann. [1]")) + [{"role": "user", "content": "And on Sunday?"}]
    asked = ["q1", "q2", "q3", "q4", "Who runs the club?"]
    sent = messages_to_send(conversation, asked, "docs", 0)
    assert [m["content"] for m in sent] == ["q2", "q3", "q4", "Who runs the club?", "And on Sunday?"]


def test_a_documents_answer_stays_in_the_context_search_results_do_not() -> None:
    """Switched to Chat mode, "say that shorter" was answered blind: the documents turns were not sent (t72 M1)."""
    conversation, asked = [{"role": "user", "content": "Who runs the club?"}], []
    close_turn(conversation, asked, "docs", "Quote from the documents: \u201cAnn runs the club.\u201d [1]")
    # without pgpt's label, nor the citation markers Chat mode's replies copied ("[2]", t76)
    assert conversation[-1] == {"role": "assistant", "content": "Ann runs the club."}
    assert uncited("Ann [1] and Bo [2, 3] run it.[4]") == "Ann and Bo run it."
    assert asked == ["Who runs the club?"]
    conversation.append({"role": "user", "content": "club"})
    close_turn(conversation, asked, "search", "[1] club.txt: Ann runs the club.")
    assert len(conversation) == 2  # a passage list is no answer
    conversation.append({"role": "user", "content": "When?"})
    close_turn(conversation, asked, "docs", "")  # stopped before it was checked: nothing to keep
    assert len(conversation) == 2 and asked[-1] == "When?"
    conversation.append({"role": "user", "content": "Who runs the chess club?"})
    close_turn(conversation, asked, "docs", "I could not find a clear answer to this in the indexed documents.")
    assert len(conversation) == 2  # the model gave a "not found" it read back as its next answer (t75)


def test_the_same_answer_to_different_questions_is_counted() -> None:
    """28 questions in a row got one answer, with no hint (t72 M6); the same question may get the same answer."""
    assert repeats([]) == 0
    assert repeats(chat(("a", "X"), ("b", "Y"))) == 1
    assert repeats(chat(("a", "Y"), ("b", "X"), ("c", "X"), ("d", "X "))) == 3
    assert repeats(chat(("a", "X"), ("a", "X"), ("a", "X"))) == 1


def test_a_short_message_not_found_after_an_answer_points_to_chat_mode() -> None:
    """"say that shorter" in Documents mode was "not found" with no word of Chat mode (t72 M2)."""
    not_found = {"kind": "not_found"}
    earlier = chat(("Who runs the club?", "Ann. [1]"))
    assert rework_hint(earlier + [{"role": "user", "content": "Say that shorter."}], not_found) == REWORK_HINT
    assert rework_hint(earlier + [{"role": "user", "content": "Say that shorter."}], {"kind": "quote"}) == ""
    assert rework_hint([{"role": "user", "content": "Say that shorter."}], not_found) == ""  # nothing to rework
    long = "How many passengers can the ferry to the island carry in winter?"
    assert rework_hint(earlier + [{"role": "user", "content": long}], not_found) == ""


def test_a_saved_chat_keeps_what_it_left_out(tmp_path: Path) -> None:
    """Reopened from F5, a long chat sent its whole context again and lost its note (t72 M4)."""
    settings = Settings(home=tmp_path, model_cache=tmp_path / "models")
    conversation = new_conversation()
    conversation.context, conversation.left_out = chat(("one", "1"), ("two", "2")), 1
    path = save_conversation(settings, conversation)
    assert load_conversation(settings, conversation.id).left_out == 1
    path.write_text(path.read_text().replace('"left_out": 1', '"left_out": -1'))
    with pytest.raises(PgptError, match="left_out is not a count"):
        load_conversation(settings, conversation.id)


def test_a_draft_the_check_trimmed_is_told_apart_from_one_it_kept() -> None:
    """The draft streamed "</pre> ... document.write(...)" for 15 s, then the checked answer took its place
    with no mark, though a quote or "not found" in its place is marked (t73 C6)."""
    from pgpt.tui.chat.library import trimmed

    answer = "The fire assembly point is the car park. [1]"
    assert not trimmed("The fire assembly point is the car park [2].", answer)  # citations renumbered only
    assert not trimmed("", answer)  # a cached answer streams nothing of its own
    assert trimmed("</pre> document.write(`<h1>The fire assembly point is the car park.</h1>`);", answer)
