"""A number stated with another unit or another qualifier than its source gives it is no supported
answer: a scale tester's "17 critical findings" (the source: 17 findings, 3 of them critical) and
"within 15 seconds" (the source: 15 minutes) were shown as supported answers."""

from __future__ import annotations

import pytest

from grounding_support import grounder_over
from pgpt.runtime.documents.attachment import bound_elsewhere
from pgpt.runtime.documents.grounding import SourceSentence
from pgpt.runtime.documents.sentences import NUMBER, content_words

FINDINGS = "The penetration test by Bluefin Labs found 17 findings, of which 3 were rated critical."
TICKETS = "Priority one tickets must receive a first response within 15 minutes, around the clock."


@pytest.mark.parametrize("value, statement, source, refused", [
    ("17", "The Bluefin Labs penetration test found 17 critical findings.", FINDINGS, True),
    ("3", "The penetration test found 3 critical findings.", FINDINGS, False),
    ("17", "The penetration test found 17 findings.", FINDINGS, False),
    ("15", "Priority one tickets get a first response within 15 seconds.", TICKETS, True),
    ("15", "Priority one tickets get a first response within 15 min.", TICKETS, False),  # a short form
    ("5", "The crate weighs 5 kg.", "The crate weighs 5 pounds.", True),
    ("10", "Each user may store 10 GB.", "Each user may store 10 GiB.", False),
    ("5", "The screen is 5 inch wide.", "The screen is 5 inches wide.", False),  # singular and plural
    ("40", "The Lisbon office seats 40 people.", "The Lisbon office seats 40 people and has 3 meeting rooms.", False),
    ("30", "Returns are accepted within 30 days.", "Returns are accepted within 30 calendar days.", False),
    ("8080", "The default port is 8080.", "The server listens on port 8080; the console uses port 9090.", False),
])
def test_the_word_after_a_number_must_be_bound_to_it_in_the_source(value: str, statement: str, source: str,
                                                                     refused: bool) -> None:
    assert bound_elsewhere(value, statement, [source], NUMBER.findall, content_words) is refused


def test_the_testers_two_wrong_numbers_are_no_supported_answers(embedder) -> None:  # type: ignore[no-untyped-def]
    report = [SourceSentence(1, "report-fact.md", 0, FINDINGS)]
    critical = grounder_over(embedder, "How many critical findings did the Bluefin Labs penetration test find?",
                             report)
    wrong = critical.check("The Bluefin Labs penetration test found 17 critical findings. [1]", abstained=False)
    assert wrong.kind != "answer", wrong  # a quote of the sentence, or "not found"
    right = critical.check("The Bluefin Labs penetration test found 3 critical findings. [1]", abstained=False)
    assert right.kind == "answer" and "3 critical" in right.text, right
    sla = grounder_over(embedder, "How fast must priority one tickets get a first response?",
                        [SourceSentence(1, "sla.md", 0, TICKETS)])
    seconds = sla.check("Priority one tickets must receive a first response within 15 seconds, around the clock. [1]",
                        abstained=False)
    assert seconds.kind != "answer", seconds
    minutes = sla.check("Priority one tickets must receive a first response within 15 minutes. [1]", abstained=False)
    assert minutes.kind == "answer" and "15 minutes" in minutes.text, minutes


def test_a_manual_section_number_is_no_number(embedder) -> None:  # type: ignore[no-untyped-def]
    """A man page's header line "TAR(1) GNU TAR Manual TAR(1)" was the supporting quote of "The default
    N for tar's --occurrence option is 1" (the "1" of a section number), over the sentence that says it."""
    assert NUMBER.findall("TAR(1) GNU TAR Manual TAR(1), see ssh_config(5)") == []
    assert NUMBER.findall("Python (3.6) and items (1) and (2)") == ["3.6", "1", "2"]
    sentences = [SourceSentence(1, "tar.1", 0, "--occurrence[=N] Process only the Nth occurrence of each file in "
                                               "the archive."),
                 SourceSentence(1, "tar.1", 0, "The default N is 1."),
                 SourceSentence(2, "tar.1", 0, "TAR(1) GNU TAR Manual TAR(1)")]
    ask = grounder_over(embedder, "What is the default N for tar's --occurrence option?", sentences)
    result = ask.check("The default N for tar's --occurrence option is 1. [2]", abstained=False)
    assert "TAR(1)" not in " ".join(q.text for q in result.quotes), result
    assert result.kind == "answer" and [q.text for q in result.quotes] == ["The default N is 1."], result


def test_an_answer_that_first_says_where_it_read_is_checked_on_what_it_says(embedder) -> None:  # type: ignore[no-untyped-def]
    """"According to the OpenAI SDK documentation in the source file "openai-python-readme.md", the default
    ... is 1200 seconds ..." was "not found": the attribution's words are in no source sentence."""
    from pgpt.runtime.documents.statements import without_attribution

    assert without_attribution("According to the information provided in the sources, the port is 22.") == (
        "The port is 22.")
    kept = "According to the Mozilla Public License, the period is 30 days."  # a subject, not where it was read
    assert without_attribution(kept) == kept
    sentences = [SourceSentence(1, "openai-python-readme.md", 0, "You can also customize the token refresh buffer "
                                "(default is 1200 seconds (20 minutes) before expiration):")]
    ask = grounder_over(embedder, "How long before it expires does the SDK renew a workload identity token by default?",
                        sentences)
    result = ask.check('According to the OpenAI SDK documentation in the source file "openai-python-readme.md", the '
                       "default token refresh buffer is 1200 seconds (20 minutes) before expiration.", abstained=False)
    assert result.kind == "answer" and result.text.startswith("The default token refresh buffer is 1200 seconds"), result


def test_an_address_with_its_port_and_a_symbol_in_quotes_are_facts_as_written(embedder) -> None:  # type: ignore[no-untyped-def]
    """The 1.5B model's right answers "... served at http://127.0.0.1:8000/docs" (the address alone was
    read as a fact no source held: every source writes it with its port) and "The default escape
    character in ssh is '~'" (the symbol was no fact, so nothing was left to check) were "not found"."""
    from pgpt.runtime.documents.sentences import key_facts

    assert key_facts("The API docs are served at http://127.0.0.1:8000/docs.") == {"127.0.0.1:8000", "api"}
    assert "~" in key_facts("The default escape character in ssh is '~'.")
    docs = grounder_over(embedder, "At what address does fastapi dev serve the interactive API docs?",
                         [SourceSentence(1, "README.md", 0, "Run fastapi dev and open the interactive API docs at "
                                                            "http://127.0.0.1:8000/docs.")])
    served = docs.check("The interactive API docs are served at http://127.0.0.1:8000/docs. [1]", abstained=False)
    assert served.kind == "answer", served
    ssh = grounder_over(embedder, "What is the default escape character in ssh?",
                        [SourceSentence(1, "ssh.1", 0, "-e escape_char Sets the escape character for sessions with a "
                                                       "pty (default: \u2018~\u2019).")])
    assert ssh.check("The default escape character in ssh is '~'. [1]", abstained=False).kind == "answer"
    assert ssh.check("The default escape character in ssh is '^'. [1]", abstained=False).kind != "answer"


def test_a_number_written_as_a_word_is_a_fact_to_check(embedder) -> None:  # type: ignore[no-untyped-def]
    """"Ask IT for VPN access on day two" passed on "... on day one": four of its five words are there."""
    from pgpt.runtime.documents.sentences import key_facts

    assert {"two", "twelve", "hundred"} <= key_facts("Two forms, twelve rooms and a hundred keys.")
    assert "one" not in key_facts("Pick one of them.")  # a pronoun as often as a number
    sources = [SourceSentence(1, "onboarding.txt", 0, "On your first day, IT hands you a laptop and a badge."),
               SourceSentence(1, "onboarding.txt", 0, "Ask IT for VPN access on day one.")]
    ask = grounder_over(embedder, "What do I get on my first day?", sources)
    result = ask.check("You get a laptop and a badge. Ask IT for VPN access on day two.", abstained=False)
    assert result.kind == "answer" and "laptop" in result.text and "two" not in result.text, result
