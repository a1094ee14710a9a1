"""Grounding across documents: another document's facts never answer for the subject a question names
(runtime/documents/subjects.py), with the real embedder."""

from __future__ import annotations

from grounding_support import grounder_over
from pgpt.runtime.documents.grounding import SourceSentence
from pgpt.runtime.documents.sentences import content_words, split_sentences
from pgpt.runtime.documents.subjects import about_elsewhere

LIGHTHOUSE = ("# The Varnholm Lighthouse\nThe Varnholm lighthouse was built in 1887. The lighthouse is open to "
              "visitors from May to September, daily from 10:00 to 16:00. The ferry leaves Skarhamn at 08:15.")
BAKERY = ("Grimsby Street Bakery\nThe bakery sells rye bread and cardamom buns. The bakery closes at 18:30 on weekdays "
          "and at 14:00 on Saturdays. It is closed on Sundays.")


def sources() -> list[SourceSentence]:
    return [SourceSentence(n, file, 0, s, heading=s.startswith("#"))
            for n, (file, text) in enumerate((("lighthouse.md", LIGHTHOUSE), ("bakery.txt", BAKERY)), 1)
            for s in split_sentences(text)]


def test_the_bakery_s_hours_do_not_answer_for_the_lighthouse(embedder) -> None:  # type: ignore[no-untyped-def]
    """A tester's "When does the lighthouse close?" was answered with the bakery's hours, the bakery's
    sentences as the supporting quotes: the check reads what a statement adds (the hours), and the
    question's "lighthouse" need not stand in the supporting sentence."""
    ask = grounder_over(embedder, "When does the lighthouse close?", sources())
    result = ask.check("The lighthouse closes at 18:30 on weekdays and 14:00 on Saturdays. It is closed on Sundays.",
                       abstained=False)
    assert all(q.file == "lighthouse.md" for q in result.quotes), result
    assert "18:30" not in result.text and "Sundays" not in result.text, result
    # the same hours for the bakery, which its own file names, are answered
    ask = grounder_over(embedder, "When does the bakery close?", sources())
    result = ask.check("The bakery closes at 18:30 on weekdays and at 14:00 on Saturdays.", abstained=False)
    assert result.kind == "answer" and "18:30" in result.text and result.quotes[0].file == "bakery.txt", result


def test_only_a_word_another_file_is_about_counts(embedder) -> None:  # type: ignore[no-untyped-def]
    """A paraphrased question's words stand in no file: they never move support to another one; nor
    does a word of the question that the supporting file writes in another passage."""
    ask = grounder_over(embedder, "At what hour do the bread sellers shut on a weekday?", sources())
    result = ask.check("The bakery closes at 18:30 on weekdays.", abstained=False)
    assert result.kind == "answer" and result.quotes[0].file == "bakery.txt", result
    # the lighthouse's file, in two passages: the second never says "lighthouse", its file does
    split = [SourceSentence(1, "notes/lighthouse.md", 0, "# The Varnholm Lighthouse", heading=True),
             SourceSentence(2, "notes/lighthouse.md", 0, "Its keeper in 1920 was Edda Lund."),
             *[SourceSentence(3, "bakery.txt", 0, s) for s in split_sentences(BAKERY)]]
    ask = grounder_over(embedder, "Who was the lighthouse keeper in 1920?", split)
    result = ask.check("The lighthouse keeper in 1920 was Edda Lund.", abstained=False)
    assert result.kind == "answer" and "Edda Lund" in result.text, result


def test_a_file_s_name_says_what_it_is_about() -> None:
    sentences = [SourceSentence(1, "/srv/docs/pension-fund_handbook.pdf", 3, "Staff get 25 days of leave."),
                 SourceSentence(2, "policies.txt", 0, "# Travel"),
                 SourceSentence(2, "policies.txt", 0, "Leave requests go to the office.")]
    # "pension" names the first file (its file name): the second file's sentences are elsewhere
    question = content_words("How much leave does the pension fund give?")
    assert about_elsewhere(sentences, question) == [False, True, True]
    # "handbook" is a kind of document, not its subject (nor is "changes" of "pygments-changes.txt")
    assert about_elsewhere(sentences, content_words("How much leave does the handbook give?")) == [False, False, False]
    # a heading's words are no subject: "Options" or "Usage" head many documents
    assert about_elsewhere(sentences, content_words("How much travel leave?")) == [False, False, False]
    assert about_elsewhere(sentences[:1], content_words("Is there a pension policy?")) == [False]
    # a file writes the parts of its joined words: the printer's page says "Wifi-Guest"
    printer = [SourceSentence(1, "printer.md", 0, "Guests on Wifi-Guest cannot print."),
               SourceSentence(2, "wifi.md", 0, "The office network is called Hafen.")]
    assert about_elsewhere(printer, content_words("Can I print from the guest wifi?")) == [False, False]
    # a question that names both files' subjects is about both: neither file's sentences are elsewhere
    # (t76: "I sit in room B30. How long is the onboarding?" beside rooms.md), a third file's are
    both = [SourceSentence(1, "onboarding.md", 0, "The buddy programme lasts 6 weeks."),
            SourceSentence(2, "rooms.md", 0, "Room B6 has 8 chairs."),
            SourceSentence(3, "bakery.txt", 0, "The bakery opens at 7.")]
    question = content_words("I sit in room B30. How long is the onboarding?")
    assert about_elsewhere(both, question) == [False, False, True]


def test_a_line_of_another_release_s_section_answers_nothing(embedder) -> None:  # type: ignore[no-untyped-def]
    """"Python 3.6 is no longer supported." stood under pluggy 1.1.0 and was quoted for "... as of pluggy
    1.6.0?", while source [1] was 1.6.0's section; "2.7.0 (2015-05-03)" answered when requests 2.0.0 was
    released (t68)."""
    question = "Which Python version is no longer supported as of pluggy 1.6.0?"
    sentences = [SourceSentence(1, "CHANGELOG.rst", 0, "- #556: Python 3.8 is no longer supported.", False,
                                "pluggy 1.6.0 (2025-05-15) > Deprecations and Removals"),
                 SourceSentence(2, "CHANGELOG.rst", 0, "- #364: Python 3.6 is no longer supported.", False,
                                "pluggy 1.1.0 (YANKED) > Deprecations and Removals")]
    check = grounder_over(embedder, question, sentences).check
    assert "3.6" not in check("Python 3.6 is no longer supported. [2]", abstained=False).text
    right = check("Python 3.8 is no longer supported. [1]", abstained=False)
    assert right.kind == "answer" and "3.8" in right.text, right
    dated = [SourceSentence(1, "HISTORY.md", 0, "2.7.0 (2015-05-03)", True, "2.7.0 (2015-05-03)")]
    answer = grounder_over(embedder, "When was requests 2.0.0 released?", dated).check("2015-05-03 [1]", abstained=False)
    assert answer.kind == "not_found", answer


def test_a_version_the_headings_do_not_rival_keeps_its_sentences() -> None:
    """A question that names Python 3.8 is answered from pluggy 1.6.0's section: no heading names 3.8."""
    from pgpt.runtime.documents.subjects import about_other_version

    sentences = [SourceSentence(1, "CHANGELOG.rst", 0, "- #556: Python 3.8 is no longer supported.", False,
                                "pluggy 1.6.0 (2025-05-15) > Deprecations and Removals")]
    assert about_other_version(sentences, "Which pluggy release dropped Python 3.8?") == [False]
    assert about_other_version(sentences, "What does pluggy 1.6 remove?") == [False]  # a release of 1.6
    assert about_other_version(sentences, "How long does the 1.5 s timeout last?") == [False]  # no section asked
