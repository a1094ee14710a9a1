"""Grounding: statements are checked against source sentences with the real embedder; a quote or
"not found" replaces what is not supported (prompt markup: test_markup.py; passage views:
test_passage_view.py)."""

from __future__ import annotations

import pytest

from grounding_support import grounder_over
from pgpt.runtime.documents.grounding import Grounder, SourceSentence
from pgpt.runtime.documents.sentences import content_words, key_facts, split_sentences
from pgpt.runtime.documents.passage_view import matching_sentences


def test_words_facts_and_sentences() -> None:
    assert key_facts("Use FanoutCache or snapshot_download; Rich needs Python 3.8 and utf-8.") >= {
        "fanoutcache", "snapshot_download", "rich", "python", "3.8", "utf-8"}
    assert "use" not in key_facts("Use it.")  # a capital that only starts the sentence is no name
    assert {"~", "yy", "branch"} <= key_facts("Join with `~`; `YY` is the year; `--branch`.")  # code spans
    assert content_words("The caches were cached by caching servers.") == {"cach", "server"}
    assert split_sentences("One two. Three four!\n- item five\n\nok") == ["One two.", "Three four!", "- item five"]
    # PDF and plain text wrap sentences over lines and break words with hyphens
    assert split_sentences("A compilation of a covered work is called an\naggregate. It is pack-\naged.\nd) If the"
                           " work has an inter-\nface.") == [
        "A compilation of a covered work is called an aggregate.", "It is packaged.", "d) If the work has an interface."]
    # a title or "e.g." ends no sentence: answers read "... is Dr. [1] Ilse Varga. [1]"
    assert split_sentences("The lead is Dr. Ilse Varga. Ask Mr. Quince, e.g. Monday. Done.") == [
        "The lead is Dr. Ilse Varga.", "Ask Mr. Quince, e.g. Monday.", "Done."]


def test_man_page_headings_and_console_panels_are_units_of_their_own() -> None:
    # a man page: its heading in capitals was glued to the first sentence (and quoted so), and
    # groff breaks words with U+2010
    man = "ESCAPE CHARACTERS\n     When a pty was requested, ssh supports an escape char\u2010\n     acter.\n"
    assert split_sentences(man) == ["ESCAPE CHARACTERS", "When a pty was requested, ssh supports an escape character."]
    # a paragraph in capitals (a licence's disclaimer) is sentences, not a heading and the rest
    caps = "THERE IS NO WARRANTY FOR THE PROGRAM, TO THE\nEXTENT PERMITTED BY LAW. THE ENTIRE RISK IS YOURS.\n"
    assert split_sentences(caps) == ["THERE IS NO WARRANTY FOR THE PROGRAM, TO THE EXTENT PERMITTED BY LAW.",
                                     "THE ENTIRE RISK IS YOURS."]
    # a README's console panel is read without its box-drawing art
    panel = "\u256d\u2500\u2500 Dev mode \u2500\u2500\u256e\n\u2502 Serving at: http://127.0.0.1:8000 \u2502\n\u2570\u2500\u256f"
    assert split_sentences(panel) == ["Dev mode Serving at: http://127.0.0.1:8000"]


SOURCES = [(1, "zephyr.md", 0, "Project Zephyr is a weather balloon. The launch code of project Zephyr is 7341. "
                               "It flies from the harbour."),
           (2, "ferry.pdf", 3, "The ferry to the island leaves at noon every Tuesday. Tickets cost 4 euros.")]


def grounder(embedder, question: str) -> Grounder:  # type: ignore[no-untyped-def]
    sentences = [SourceSentence(n, f, p, s) for n, f, p, text in SOURCES for s in split_sentences(text)]
    return grounder_over(embedder, question, sentences)


def test_a_supported_answer_is_kept_and_cited_by_its_supporting_sentence(embedder) -> None:  # type: ignore[no-untyped-def]
    result = grounder(embedder, "What is the launch code of project Zephyr?").check(
        "Sure! The launch code of project Zephyr is 7341 [2].", abstained=False)
    assert result.kind == "answer" and "7341" in result.text
    assert result.text.endswith("[1]")  # re-cited: the supporting sentence is in source 1, not 2
    [quote] = result.quotes
    assert quote.as_quote() == {"file": "zephyr.md", "page": 0, "source": 1,
                                "sentence": "The launch code of project Zephyr is 7341."}


def test_a_statement_the_model_repeats_is_answered_once(embedder) -> None:  # type: ignore[no-untyped-def]
    result = grounder(embedder, "What is the launch code of project Zephyr?").check(
        "The launch code of project Zephyr is 7341 [1]. The launch code of project  zephyr is 7341. "
        "The launch code of project Zephyr is 7341 [1].", abstained=False)
    assert result.kind == "answer" and result.measures["statements"] == 1
    assert result.text == "The launch code of project Zephyr is 7341. [1]"


def test_a_function_named_with_empty_parentheses_is_found_where_the_source_calls_it(  # type: ignore[no-untyped-def]
        embedder) -> None:
    """The right draft "use the `tqdm.write()` method" was dropped as invented: the sources call
    tqdm.write("Done task %i") and speak of "a .write() method", never "tqdm.write()" itself."""
    sentences = [SourceSentence(1, "tqdm.rst", 0, text) for text in (
        "To write messages in the terminal without any collision with the bar display, a .write() method is provided:",
        '# Print using tqdm class method .write() sleep(0.1) if not (i % 3): tqdm.write("Done task %i" % i)',
        "Uses file.write(str) and file.flush() methods.")]
    result = grounder_over(embedder, "How do I print messages while a tqdm progress bar is running?", sentences).check(
        "To print messages without breaking the progress bar, you can use the `tqdm.write()` method.", abstained=False)
    assert result.kind == "answer" and "`tqdm.write()`" in result.text, (result.kind, result.text, result.measures)
    assert "tqdm.write" in key_facts("Use `tqdm.write()`.") and "tqdm.write()" not in key_facts("Use `tqdm.write()`.")


def test_code_fences_of_a_draft_never_reach_the_answer(embedder) -> None:  # type: ignore[no-untyped-def]
    """A small model wraps what it read in a fence; the marker ("```python") went into the answer
    with the line after it, supported by a source that mentions Python: "```python launch(7341) [1]"."""
    sentences = [SourceSentence(1, "zephyr.md", 0, "The launch code of project Zephyr is 7341."),
                 SourceSentence(1, "zephyr.md", 0, "The launcher is a Python program.")]
    check = grounder_over(embedder, "What is the launch code of project Zephyr?", sentences).check
    result = check("The launch code of project Zephyr is 7341 [1].\n```python\nlaunch(7341)\n```", abstained=False)
    assert result.kind == "answer" and "`" not in result.text, result.text
    assert result.text.startswith("The launch code of project Zephyr is 7341. [1]")


def test_a_statement_that_denies_needs_a_sentence_that_denies(embedder) -> None:  # type: ignore[no-untyped-def]
    # Pygments' changelog: the model turned "added as a recognized file type" into its opposite,
    # and words and embeddings alone took the sentence as support
    sentences = [SourceSentence(1, "CHANGES.txt", 0,
                                "- Add ``*.pyi`` (for typing stub files) as a recognized file type for Python (#2231)"),
                 SourceSentence(2, "lexers.md", 0, "The Python lexer does not treat print as a keyword any more.")]
    question = "Which file pattern for typing stubs does Pygments recognise as Python?"
    ask = Grounder(question, embedder.embed([question])[0], sentences,
                   embedder.embed([s.text for s in sentences]), embedder.embed)
    denied = ask.check("The file pattern for typing stubs is not recognized as Python [1].", abstained=False)
    assert denied.kind == "quote" and "*.pyi" in denied.text and denied.measures["supported"] == 0
    assert ask.check("The file pattern `*.pyi` is recognized as Python [1].", False).kind == "answer"
    # a denial that a sentence makes is supported as before
    kept = ask.check("The Python lexer does not treat print as a keyword [2].", abstained=False)
    assert kept.measures["supported"] == 1


def test_a_name_in_its_sentence_lowers_the_relevance_gate(embedder) -> None:  # type: ignore[no-untyped-def]
    # A terse reference line pins the answer ("``MMM``") though it shares few words with the
    # question; a fluent sentence supported by words alone, equally far from the question, is
    # what small models answer wrongly with, so it needs RELEVANCE_MIN_WORDS.
    sentences = [SourceSentence(n, "dates.md", 0, text) for n, text in enumerate(
        ["``MMM``: abbreviated month name, such as Jan.", "Names of weekdays and months depend on the locale."], 1)]
    question = "Which date format code prints the month name?"
    ask = Grounder(question, embedder.embed([question])[0], sentences,
                   embedder.embed([s.text for s in sentences]), embedder.embed)
    assert 0.4 <= ask.relevance[1] < 0.5 and 0.4 <= ask.relevance[0] < 0.5  # both between the two gates
    pinned = ask.check("The format code `MMM` prints the month name [1].", abstained=False)
    assert pinned.kind == "answer" and pinned.text.endswith("[1]")
    words_only = ask.check("Names of months depend on the locale [2].", abstained=False)
    assert words_only.measures["supported"] == 1 and words_only.kind == "not_found"


def test_a_bare_restatement_and_a_heading_are_no_answers(embedder) -> None:  # type: ignore[no-untyped-def]
    """A small model ends with the bare value ("... is 7341. [1] 7341 [1]"); and a heading that
    repeats the question's words ("# The Harbor Lighthouse") was quoted as the answer."""
    result = grounder(embedder, "What is the launch code of project Zephyr?").check(
        "The launch code of project Zephyr is 7341 [1]. 7341", abstained=False)
    assert result.kind == "answer" and result.text == "The launch code of project Zephyr is 7341. [1]"
    sentences = [SourceSentence(1, "harbor.md", 0, "# The Harbor Lighthouse"),
                 SourceSentence(1, "harbor.md", 0, "The lamp was electrified in 1931.")]
    check = grounder_over(embedder, "Who built the harbor lighthouse?", sentences).check
    heading_first = check("It was built by the harbour masters of old.", abstained=False)
    assert heading_first.measures["best_relevance"] >= 0.6  # the heading is the closest sentence
    assert "#" not in heading_first.text and heading_first.kind != "quote" or "1931" in heading_first.text


def test_a_sentence_of_the_questions_own_words_is_never_the_quote(embedder) -> None:  # type: ignore[no-untyped-def]
    """A file stuffed with "Wifi password office wifi password what is the office wifi password."
    had that sentence quoted as the answer (t65); a sentence that adds a word may be quoted."""
    echo = "Wifi password office wifi password what is the office wifi password."
    sentences = [SourceSentence(1, "seo.txt", 0, echo), SourceSentence(2, "it.txt", 0, "Guests use the lobby kiosk.")]
    check = grounder_over(embedder, "What is the office wifi password?", sentences).check
    result = check("The password is on the fridge.", abstained=False)
    assert result.measures["best_relevance"] >= 0.6 and echo not in result.text, result
    sentences.append(SourceSentence(3, "it.txt", 0, "The office wifi password is harbour-42."))
    found = grounder_over(embedder, "What is the office wifi password?", sentences).check(
        "The password is on the fridge.", abstained=False)
    assert found.kind == "quote" and "harbour-42" in found.text, found


def test_a_number_is_checked_as_the_reader_sees_it(embedder) -> None:  # type: ignore[no-untyped-def]
    """"77\u200b88" shows as 7788: the draft "7788" was unsupported, while the model's copy of the
    hidden zero-width space passed (t65)."""
    sentences = [SourceSentence(1, "display.txt", 0, "The visitor code is 77\u200b88.")]
    check = grounder_over(embedder, "What is the visitor code?", sentences).check
    for draft in ("The visitor code is 7788 [1].", "The visitor code is 77\u200b88 [1]."):
        result = check(draft, abstained=False)
        assert result.kind == "answer" and result.text == "The visitor code is 7788. [1]", result


def test_an_answer_about_another_numbered_thing_is_no_answer(embedder) -> None:  # type: ignore[no-untyped-def]
    """Asked for project Larkspur-7's budget code, the answer cited Larkspur-19's (t64): notes that
    differ in one number fill mail archives and ticket exports."""
    sentences = [SourceSentence(1, "post-019.txt", 0, "Meeting note 19: the budget code for project Larkspur-19 is LK-1019."),
                 SourceSentence(2, "post-008.txt", 0, "Meeting note 8: the budget code for project Larkspur-8 is LK-1008.")]
    check = grounder_over(embedder, "What is the budget code for project Larkspur-7?", sentences).check
    wrong = check("The budget code for project Larkspur-19 is LK-1019 [1].", abstained=False)
    assert wrong.kind == "not_found" and "LK-10" not in wrong.text, wrong
    sentences.append(SourceSentence(3, "post-007.txt", 0, "Meeting note 7: the budget code for project Larkspur-7 is LK-1007."))
    right = grounder_over(embedder, "What is the budget code for project Larkspur-7?", sentences).check(
        "The budget code for project Larkspur-7 is LK-1007 [3].", abstained=False)
    assert right.kind == "answer" and "LK-1007" in right.text, right


def test_server_number_7_is_not_server_number_74(embedder) -> None:  # type: ignore[no-untyped-def]
    """Asked for backup server number 7's port, "... number 7 runs on port 9074" was the checked answer,
    quoting server 74's page (t66): a thing numbered with "number", "no." or "#" is a numbered thing too."""
    from pgpt.runtime.documents.sentences import numbered_things

    assert numbered_things("Server number 7, room No. 12, issue #123 and the number 5") == {
        ("server", "7"), ("room", "12"), ("issue", "123")}  # "the number 5" names no thing
    question = "Which port does backup server number 7 run on?"
    sentences = [SourceSentence(1, "page074.md", 0, "The backup server number 74 runs on port 9074.")]
    wrong = grounder_over(embedder, question, sentences).check("The backup server number 7 runs on port 9074. [1]",
                                                                abstained=False)
    assert wrong.kind == "not_found", wrong
    sentences.append(SourceSentence(2, "page007.md", 0, "The backup server number 7 runs on port 9007."))
    right = grounder_over(embedder, question, sentences).check("Backup server number 7 runs on port 9007. [2]",
                                                                abstained=False)
    assert right.kind == "answer" and "9007" in right.text, right


def test_a_log_line_or_a_csv_row_is_a_sentence_of_its_own() -> None:
    """A log's chunk was one "sentence" of 40 lines: search and a "not found" showed its first lines,
    never the line that matched (t64). Prose wrapped at 80 columns stays whole."""
    from pgpt.runtime.documents.sentences import split_sentences

    log = "\n".join(f"2026-11-16T01:{m:02d}:31Z INFO auth: slow query took {m * 7} ms on table orders" for m in range(8))
    log += "\n2026-11-16T01:15:00Z ERROR payments: card processor rejected batch ZEBRA-4471: expired certificate"
    assert split_sentences(log)[-1] == ("2026-11-16T01:15:00Z ERROR payments: card processor rejected batch "
                                        "ZEBRA-4471: expired certificate") and len(split_sentences(log)) == 9
    rows = "id,customer,item,qty\n" + "\n".join(f"O-1123{i},Ann Lee,desk lamp,{i}" for i in range(10))
    assert split_sentences(rows + "\nO-112342,Velmora Quist,harpsichord tuning kit,1")[-1] == \
        "O-112342,Velmora Quist,harpsichord tuning kit,1"
    prose = ("This licence applies to the software, and to every copy of it that is made, in whole or in part,\n"
             "by anyone who has received it from the copyright holder or from anyone else, whatever the medium\n"
             "or the form, provided that this notice and the disclaimer below are kept intact in every copy and\n"
             "that no fee is charged for the licence itself, only for the act of transferring a copy.")
    assert len(split_sentences(prose)) == 1


def test_a_link_line_is_never_quoted_as_the_answer(embedder) -> None:  # type: ignore[no-untyped-def]
    """The 1.5B model's draft about psutil went unsupported and the closest "sentence", a README's
    link line, was quoted as the answer: "- `Documentation <http://psutil.readthedocs.io>`_"."""
    sentences = [SourceSentence(1, "psutil.rst", 0, "- `Documentation <http://psutil.readthedocs.io>`_"),
                 SourceSentence(1, "psutil.rst", 0, "- `Download <https://pypi.org/project/psutil/#files>`_")]
    check = grounder_over(embedder, "Where is the documentation of psutil?", sentences).check
    result = check("Its documentation explains everything about processes.", abstained=False)
    assert result.measures["best_relevance"] >= 0.6 and result.kind == "not_found", result
    # A short line of words and numbers is prose enough. And "what Python version" asks for a
    # number: a list of supported extras (the 1.5B model's answer, each with a quote) is no answer.
    sentences = [SourceSentence(1, "httpcore.md", 0, s) for s in (
        "Python 3.8+", "httpcore requires the optional extras anyio, trio and socksio for async support.",
        "Install with pip install httpcore.")]
    ask = grounder_over(embedder, "What Python version does httpcore require?", sentences)
    result = ask.check("httpcore requires the optional extras anyio, trio and socksio [1].", abstained=False)
    assert result.kind in ("quote", "not_found") and "anyio" not in result.text, result
    assert result.kind == "not_found" or "3.8" in result.text


def test_an_unsupported_draft_gives_way_to_the_best_sentence_quoted(embedder) -> None:  # type: ignore[no-untyped-def]
    ask = grounder(embedder, "What is the launch code of project Zephyr?")
    result = ask.check("Sure, the secret sequence is what the weather team keeps locked in a safe.", abstained=False)
    assert result.kind == "quote" and result.measures["supported"] == 0 and result.measures["invented"] == 0
    assert result.text == "Quote from the documents: \u201cThe launch code of project Zephyr is 7341.\u201d [1]"
    # a number that no source holds was invented; with a sentence this close to the question
    # (relevance >= CERTAIN_QUOTE) that sentence is quoted, else the answer is "not found" (below)
    invented = ask.check("The launch code of project Zephyr is 9902 [1].", abstained=False)
    assert invented.kind == "quote" and invented.measures["invented"] == 1 and "7341" in invented.text


def test_a_question_next_to_related_text_is_not_found(embedder) -> None:  # type: ignore[no-untyped-def]
    ask = grounder(embedder, "How many passengers does the ferry to the island carry?")
    # "how many" needs a number the question does not hold; only "4 euros" and "noon" are near
    invented = ask.check("The ferry carries 120 passengers [2].", abstained=False)
    assert invented.kind == "not_found" and invented.measures["invented"] == 1 and invented.text == ""
    assert ask.check("I could not find it in the sources.", abstained=True).kind == "not_found"


def test_an_answer_that_is_a_symbol_in_backticks_is_a_fact_to_check(embedder) -> None:  # type: ignore[no-untyped-def]
    # Jinja's manual (its DOCX table): the answer is one symbol, which holds no word at all
    sentences = [SourceSentence(1, "jinja.docx", 0, s) for s in split_sentences(
        "~ (tilde) Converts all operands into strings and concatenates them. {{ \"Hello \" ~ name ~ \"!\" }} "
        "would return Hello John!. + Adds two objects together.")]
    question = "Which Jinja operator converts operands to strings and joins them?"
    ask = Grounder(question, embedder.embed([question])[0], sentences,
                   embedder.embed([s.text for s in sentences]), embedder.embed)
    right = ask.check("The Jinja operator that converts operands to strings and joins them is `~` [1].", False)
    assert right.kind == "answer" and "`~`" in right.text
    invented = ask.check("The Jinja operator that converts operands to strings and joins them is `&` [1].", False)
    assert invented.kind != "answer" and invented.measures["invented"] == 1


def test_search_highlights_the_sentence_that_matches(embedder) -> None:  # type: ignore[no-untyped-def]
    query = "when does the ferry leave"
    sentences = matching_sentences(query, embedder.embed([query])[0], [text for *_, text in SOURCES] + [""],
                                   embedder.embed)
    assert sentences[1] == "The ferry to the island leaves at noon every Tuesday." and sentences[2] == ""


def test_digits_inside_a_word_are_no_number_of_their_own(embedder) -> None:  # type: ignore[no-untyped-def]
    """The 1.5B model copied "1DS" from its source; read alone, its "1" was a number no source
    sentence held as a word, and the copied sentence was dropped as an invention."""
    facts = key_facts("Sign it with SHA256 over IPv6 to S3 on a 1DS board, version 2.5.")
    assert {"sha256", "ipv6", "s3", "1ds", "2.5"} <= facts and not facts & {"256", "6", "3", "1"}
    sentences = [SourceSentence(1, "board.md", 0, "The 1DS board is flashed over USB with the SHA256 image."),
                 SourceSentence(1, "board.md", 0, "A second board is optional.")]
    ask = grounder_over(embedder, "How is the 1DS board flashed?", sentences)
    result = ask.check("The 1DS board is flashed over USB with the SHA256 image [1].", abstained=False)
    assert result.kind == "answer" and result.measures["invented"] == 0, result


def test_a_number_inside_a_time_and_a_changed_accented_name_are_inventions(embedder) -> None:  # type: ignore[no-untyped-def]
    """A tester's answers passed the check: "10%" on a sentence beside "returns at 18:10", and the
    surname "Quiría" for "Quirós" (read as ASCII words, "Quir" stood in both)."""
    ferry = [SourceSentence(1, "ferry.txt", 0, "The ferry leaves Port Quillan at 09:20 and returns at 18:10."),
             SourceSentence(1, "ferry.txt", 0, "A return ticket costs 55 krona for adults.")]
    result = grounder_over(embedder, "How much does an adult return ticket cost?", ferry).check(
        "The ticket is 55 krona, which is 10% of the ticket price. [1]", abstained=False)
    assert "10%" not in result.text and result.measures["invented"] == 1, result
    library = [SourceSentence(1, "espanol.txt", 0, "La biblioteca abrió en 1964 y guarda 52.300 libros."),
               SourceSentence(1, "espanol.txt", 0, "La directora actual es Begoña Ibáñez Quirós.")]
    question = "¿Quién es la directora de la biblioteca?"
    result = grounder_over(embedder, question, library).check("La directora actual es Begoña Ibáñez Quiría. [1]",
                                                              abstained=False)
    assert "Quiría" not in result.text and result.measures["invented"] == 1, result
    result = grounder_over(embedder, question, library).check("La directora actual es Begoña Ibáñez Quirós. [1]",
                                                              abstained=False)
    assert result.kind == "answer" and result.measures["invented"] == 0, result


def test_a_number_must_stand_in_the_supporting_sentence_itself(embedder) -> None:  # type: ignore[no-untyped-def]
    """A tester's "The lighthouse is open every day at 18:10" passed: the lighthouse's sentence
    supported its words and the ferry's, next to it, held 18:10. A heading the draft copied is no
    statement ("# LGPL 2." was the answer once the statement before it lost its support)."""
    harbor = [SourceSentence(1, "harbor.txt", 0, "The Velmora lighthouse is open to visitors every day from 09:40."),
              SourceSentence(1, "harbor.txt", 0, "The Velmora ferry to Quiska Island leaves the north pier at 18:10.")]
    ask = grounder_over(embedder, "When does the Velmora lighthouse open?", harbor)
    swapped = ask.check("The Velmora lighthouse is open to visitors every day at 18:10. [1]", abstained=False)
    assert "18:10" not in swapped.text.split("\u201c")[0], swapped  # not stated as the answer (a quote may follow)
    right = ask.check("The Velmora lighthouse is open to visitors every day from 09:40. [1]", abstained=False)
    assert right.kind == "answer" and "09:40" in right.text, right
    assert not ask._carries_fact("# LGPL 2.")


def test_html_tags_no_source_holds_leave_a_supported_answer(embedder) -> None:  # type: ignore[no-untyped-def]
    """A list answer ended in "</pre> <pre><code> <pre><code>", copied from an HTML page's markup."""
    mill = [SourceSentence(1, "mill.html", 0, "To start the mill wheel, the miller releases the brake lever."),
            SourceSentence(2, "tags.html", 0, "Wrap bold text in <b> and </b> tags.")]
    result = grounder_over(embedder, "How does the miller start the mill wheel?", mill).check(
        "The miller releases the brake lever. </pre> <pre><code> <pre><code> [1]", abstained=False)
    assert result.kind == "answer" and "<" not in result.text and "brake lever" in result.text, result
    tags = grounder_over(embedder, "Which tags make text bold?", mill).check(
        "Wrap bold text in <b> and </b> tags. [2]", abstained=False)
    assert tags.kind == "answer" and "<b>" in tags.text, tags  # the sources' own tags stay


def test_a_question_that_denies_is_not_answered_by_a_quote_that_affirms(embedder) -> None:  # type: ignore[no-untyped-def]
    """ "Who is not the harbor master?" got the quote naming the harbor master."""
    harbor = [SourceSentence(1, "harbor.txt", 0, "The harbor master of Velmora is Odalric Brenneke, in post since 2019."),
              SourceSentence(1, "harbor.txt", 0, "The harbor office opens at 08:00.")]
    draft = "The harbor master is Ysolde Perrin. [1]"
    assert grounder_over(embedder, "Who is the harbor master of Velmora?", harbor).check(
        draft, abstained=False).kind == "quote"
    asks_not = grounder_over(embedder, "Who is not the harbor master of Velmora?", harbor)
    assert asks_not.check(draft, abstained=False).kind == "not_found"
    # nor by an answer that affirms, though its sentence supports it (a tester's fixed draft)
    affirmed = asks_not.check("The harbor master of Velmora is Odalric Brenneke. [1]", abstained=False)
    assert affirmed.kind == "not_found", affirmed


def test_a_title_is_never_the_quote(embedder) -> None:  # type: ignore[no-untyped-def]
    """An RST title carries no "#" once read: "Who wrote the guide?" was answered with a quote of
    the title "A guide to masked arrays in NumPy", which repeats the question's words."""
    from pgpt.runtime.documents.answers import _is_title

    trail = "A guide to masked arrays in NumPy > Background"
    assert _is_title("A guide to masked arrays in NumPy", trail, "") and not _is_title("Masks hide values.", trail, "")
    # a plain text file's title line: "On which day is the bakery closed?" was answered with "Velmora Bakery"
    bakery = "Velmora Bakery\n\nThe Velmora bakery opens at 05:30 every day except Monday.\n\nOpening Hours\nDaily."
    assert _is_title("Velmora Bakery", "", bakery)
    assert not _is_title("Opening Hours", "", bakery)  # not a line of its own: it runs on into "Daily."
    for line in ("- Radio Tested", "Monday | Closed", "Version 2 Notes", "The Bakery Is Closed.", "the bakery shop",
                 "Bring your board - we have none", "Open - closed on Sundays"):
        assert not _is_title(line, "", f"{line}\n\nMore text.")
    # nor one with a subtitle after a dash: it was quoted as when the club was founded (t77)
    for line in ("Riverside Chess Club - rules and history", "Pellworth Bakery \u2013 staff handbook"):
        assert _is_title(line, "", f"{line}\n\nThe club was founded in 1952.")
    sentences = [SourceSentence(1, "guide.rst", 0, "A guide to masked arrays in NumPy", heading=True),
                 SourceSentence(1, "guide.rst", 0, "Masked arrays hide invalid entries from every computation.")]
    result = grounder_over(embedder, "What is the guide to masked arrays in NumPy about?", sentences).check(
        "It was written by the NumPy steering council in 2019.", abstained=False)
    assert result.kind != "answer" and "A guide to masked arrays" not in result.text, result


def test_an_option_is_a_fact_and_a_source_file_name_is_no_invention(embedder) -> None:  # type: ignore[no-untyped-def]
    """tar's manual (a tester's corpus): an option was no fact, so a made-up one passed on its words;
    and a draft naming the file the prompt showed ("tar-man.txt") "invented" it."""
    assert key_facts("The option that makes tar filter through zstd is --xz.") == {"xz"}
    assert key_facts("Use -J, not x86-64 or e-mail.") >= {"j"} and not key_facts("an e-mail") & {"mail"}
    sentences = [SourceSentence(1, "tar-man.txt", 0, s) for s in (
        "--zstd Filter the archive through zstd(1).", "-J, --xz Filter the archive through xz(1).",
        "-C, --directory=DIR Change to DIR before performing any operations.")]
    ask = grounder_over(embedder, "What option makes tar filter the archive through zstd?", sentences)
    made_up = ask.check("The option that makes tar filter the archive through zstd is --lzma-zstd [1].", False)
    assert made_up.kind != "answer" and made_up.measures["invented"] == 1, made_up
    move = grounder_over(embedder, "How do I make tar change to a directory before performing any operations?",
                         sentences)
    named = move.check("Use tar --directory=/var/tmp/tar-man.txt to change to it first.", abstained=False)
    assert named.measures["invented"] == 0, named.measures


def test_a_sentence_that_points_at_a_source_is_no_answer(embedder) -> None:  # type: ignore[no-untyped-def]
    """libtasn1's changelog names ASN1_MAX_NAME_SIZE but gives no value: the 1.5B model's invented
    "256" was dropped, and "This can be found in the changelog ..., which states ..." was shown."""
    sentences = [SourceSentence(1, "NEWS", 0, "The new names are ASN1_MAX_NAME_SIZE and ASN1_MAX_ERROR_DESCRIPTION_SIZE.")]
    ask = grounder_over(embedder, "What is the value of ASN1_MAX_NAME_SIZE in libtasn1?", sentences)
    result = ask.check("The value of ASN1_MAX_NAME_SIZE is 256. This can be found in the changelog of libtasn1, "
                       "which states that the new names are ASN1_MAX_NAME_SIZE and ASN1_MAX_ERROR_DESCRIPTION_SIZE.",
                       abstained=False)
    assert result.kind == "not_found", result


@pytest.mark.parametrize(("question", "source", "wrong", "right"), [
    ("What is the exit status of grep when an error occurred?",
     "Normally the exit status is 0 if a line is selected, 1 if no lines were selected, and 2 if an error occurred.",
     "The exit status of grep when an error occurred is 0.", "The exit status of grep when an error occurred is 2."),
    ("What is the default port?", "The server listens on port 8080 by default; the admin console uses port 9090.",
     "The default port is 9090.", "The default port is 8080."),
], ids=["enumeration", "two-ports"])
def test_a_number_the_sentence_ties_to_other_words_does_not_support(embedder, question: str, source: str,  # type: ignore[no-untyped-def]
                                                                     wrong: str, right: str) -> None:
    """An answer-quality tester's M1: any number of the sentence supported the statement."""
    ask = grounder_over(embedder, question, [SourceSentence(1, "manual.txt", 0, source)])
    assert ask.check(wrong, abstained=False).measures["supported"] == 0
    kept = ask.check(right, abstained=False)
    assert kept.kind == "answer" and kept.measures["supported"] == 1, kept


def test_the_quote_is_the_sentence_of_the_window_that_holds_the_fact(embedder) -> None:  # type: ignore[no-untyped-def]
    """An answer-quality tester's M8: the window around "License: curl" supported the copyright
    holder named in the line before, and "License: curl" was shown as the quote."""
    question = "Who holds the copyright of the curl license file?"
    sentences = [SourceSentence(1, "copyright", 0, s) for s in (
        "Files: *", "Copyright: 1996 - 2025, Daniel Stenberg, <daniel@haxx.se>, et al.", "License: curl file terms",
        "Permission to use, copy, modify, and distribute this software for any purpose is hereby granted.")]
    ask = grounder_over(embedder, question, sentences)
    result = ask.check("The copyright of the curl license file is held by Daniel Stenberg.", abstained=False)
    assert result.kind == "answer", result
    # under the field that starts its record, as a Debian copyright stanza starts with "Files:" (t85)
    assert [q.text for q in result.quotes] == [sentences[0].text, sentences[1].text]


def test_a_statement_copied_from_an_unrelated_source_is_dropped(embedder) -> None:  # type: ignore[no-untyped-def]
    """A tester's "How much is a cardamom bun?" was answered with the right sentence, then with
    sentences of other sources copied word for word ("Hidden fact: zebra count 44."), each cited."""
    question = "How much is a cardamom bun?"
    sentences = [SourceSentence(1, "bakery.md", 0, "A cardamom bun costs 3 euros at Oskar's Bakery."),
                 SourceSentence(2, "cafe.md", 0, "Café au lait costs 4 euros in Bergen."),
                 SourceSentence(3, "notes.txt", 0, "Hidden fact: zebra count 44.")]
    ask = grounder_over(embedder, question, sentences)
    result = ask.check("A cardamom bun costs 3 euros. Hidden fact: zebra count 44.", abstained=False)
    assert result.kind == "answer" and result.text == "A cardamom bun costs 3 euros. [1]", result
    assert [q.number for q in result.quotes] == [1]
