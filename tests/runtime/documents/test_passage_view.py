"""Passage views (search hits, sources, "not found" excerpts): a run-on sentence is cut around its
start, and a table's rows and a list's items stay on lines of their own."""

from __future__ import annotations

def test_a_run_on_sentence_is_shown_cut_around_its_start() -> None:
    """A search hit whose "sentence" was 150 words without a full stop filled 14 rows of an 80x24 screen."""
    from pgpt.runtime.documents.passage_view import sentence_window

    run_on = " ".join(["keeper stone bread ferry lantern rope harbor sail meadow bridge"] * 15)
    before, shown, after = sentence_window("Intro. " + run_on, run_on, 300)
    assert before == "\u2026" and after == "\u2026" and len(shown) <= 300 and run_on.startswith(shown)
    assert sentence_window("One. Two is short. Three.", "Two is short.", 300) == ("One. ", "Two is short.", " Three.")



def test_a_window_starts_and_ends_at_whole_words() -> None:
    """A search hit began "…ble" (the end of "timetable") and a window could end mid-word; a word longer
    than a line (a URL) is still cut where it is rather than dropped; a window that would open a little
    into a line opens at its start ("…°C only" lost "Stout is crashed to 4", t84)."""
    from pgpt.runtime.documents.passage_view import sentence_window

    text = "Ferry timetable\nThe ferry to Inselby leaves at noon. Bikes cost 3 euros each way on every crossing."
    before, sentence, after = sentence_window(text, "The ferry to Inselby leaves at noon.", 60)
    assert before == "Ferry timetable " and sentence == "The ferry to Inselby leaves at noon."
    assert after.endswith("\u2026") and text.replace("\n", " ").find(after[:-1].strip()) > 0
    assert after[:-1].rstrip().split()[-1] in text.split()  # ends at a whole word
    url = "x" * 200 + " The answer. " + "y" * 200
    assert sentence_window(url, "The answer.", 40) == ("\u2026", "The answer.", "\u2026")
    before, _, after = sentence_window(url, "The answer.", 100)
    assert before.startswith("\u2026x") and after.endswith("y\u2026")  # an overlong word cut, not dropped
    items = "- Ales are crashed to 2 °C.\n- Hollow Oak Stout is crashed to 4 °C only, because its oat proteins haze.\n"
    before, sentence, _ = sentence_window(items + "- Frostbound is conditioned at 10 °C.", "- Frostbound is "
                                          "conditioned at 10 °C.", 110)
    assert before.startswith("\u2026- Hollow Oak Stout is crashed to 4") and sentence.startswith("- Frostbound")

def test_table_rows_are_shown_on_lines_of_their_own() -> None:
    """An HTML table's rows ran together in search and "not found" views ("... Closes Monday | 07:00 ...")."""
    from pgpt.runtime.documents.sentences import flatten_text
    from pgpt.runtime.documents.passage_view import sentence_window, shown_text

    text = ("Oskar's Bakery\n\nOpening hours of the bakery.\n\nDay | Opens | Closes\n\nMonday | 07:00 | 14:00\n\n"
            "Friday | 06:30 | 18:00\n\nBread is baked\ndaily.")
    shown = shown_text(text)
    assert shown.replace("\n", " ") == flatten_text(text)  # positions in the flattened text hold here
    assert "Day | Opens | Closes\nMonday | 07:00 | 14:00\nFriday | 06:30 | 18:00\nBread is baked daily." in shown
    before, sentence, after = sentence_window(text, "Monday | 07:00 | 14:00 Friday | 06:30 | 18:00 Bread is baked "
                                                    "daily.", 300)
    assert sentence == "Monday | 07:00 | 14:00\nFriday | 06:30 | 18:00\nBread is baked daily."
    assert before.endswith("Closes\n") and after == ""


def test_csv_rows_are_shown_on_lines_of_their_own() -> None:
    """A CSV passage read as one line in the closest passages and `search` ("... +44 20 7946 0101
    2026-12-07,Marta Kowalska,..."), its header and rows' edges unseen (t83); prose keeps its lines joined."""
    from pgpt.runtime.documents.sentences import flatten_text
    from pgpt.runtime.documents.passage_view import shown_text

    text = ("week,primary,secondary,phone\n2026-12-07,Marta Kowalska,Jonas Berg,+44 20 7946 0101\n"
            "2026-12-14,Jonas Berg,Luis Romero,+44 20 7946 0102\n")
    shown = shown_text(text)
    assert shown.replace("\n", " ") == flatten_text(text)
    assert shown.splitlines() == text.strip().splitlines()
    prose = "Tea, coffee, and cake\nare served at ten, noon, and four."
    assert "\n" not in shown_text(prose)


def test_list_items_and_markdown_rows_are_shown_on_lines_of_their_own() -> None:
    """A list read "- life jackets counted - radio tested" and a Markdown table's header was joined to the text."""
    from pgpt.runtime.documents.sentences import flatten_text
    from pgpt.runtime.documents.passage_view import shown_text

    text = ("The checklist has these items:\n- life jackets counted\n- radio tested\n\n"
            "Shifts:\n| Shift | Keeper |\n|---|---|")
    # the paragraph after a list (or a table) starts a line too: it read as the last item's
    assert shown_text(text) == ("The checklist has these items:\n- life jackets counted\n- radio tested\nShifts:\n"
                                "| Shift | Keeper |\n|---|---|")
    assert shown_text(text).replace("\n", " ") == flatten_text(text)
    after = "Steps:\n3. Ring the bell twice.\n\nGrain | Price\nRye | 14\n\nAfter the table.\nStill it."
    assert shown_text(after) == "Steps:\n3. Ring the bell twice.\nGrain | Price\nRye | 14\nAfter the table. Still it."
    titled = "Ostrava Mill Safety Rules\n\nBefore entering the mill, wash.\n\nThen go."  # a title read as the text's start
    assert shown_text(titled) == "Ostrava Mill Safety Rules\nBefore entering the mill, wash. Then go."


def test_a_markdown_heading_starts_a_line_of_its_own() -> None:
    """A tester's closest passage read "... SEV3 tickets are handled in business hours. ## Compensation"."""
    from pgpt.runtime.documents.passage_view import shown_text

    text = ("## Paging\n\nSEV3 tickets are handled in business hours.\n\n## Compensation\n\n"
            "Each week of on-call duty is paid 450 EUR.")
    assert shown_text(text) == ("## Paging\nSEV3 tickets are handled in business hours.\n## Compensation\n"
                                "Each week of on-call duty is paid 450 EUR.")


def test_the_highlighted_sentence_is_the_one_holding_the_words_in_any_alphabet(embedder) -> None:  # type: ignore[no-untyped-def]
    """A Cyrillic word inside a hyphenated name, and any Arabic word, highlighted the neighbouring
    sentence (Arabic had no words at all for the check), while Latin words worked (t50)."""
    from pgpt.runtime.documents.passage_view import matching_sentences
    from pgpt.runtime.documents.sentences import content_words

    assert content_words("إلى خادم في القاهرة كل ليلة.") >= {"خادم", "القاهرة"}
    for query, passage, expected in (
            ("Петербурге", "Ёлка в офисе ставится в декабре. Сервер находится в Санкт-Петербурге.",
             "Сервер находится в Санкт-Петербурге."),
            ("القاهرة", "يتم نسخ البيانات احتياطيا. إلى خادم في القاهرة كل ليلة.", "إلى خادم في القاهرة كل ليلة.")):
        vector = embedder.embed([query])[0]
        assert matching_sentences(query, vector, [passage], embedder.embed) == [expected], query


def test_a_long_record_is_shown_by_its_part_holding_the_asked_words(embedder) -> None:  # type: ignore[no-untyped-def]
    """t67: a JSON dump's chunk has no sentence end, so the highlighted "sentence" was the whole chunk
    from its start, and search's snippet (and `--json`'s sentence) stopped just before the asked bay."""
    from pgpt.runtime.documents.passage_view import FOCUS_CHARS, matching_sentences, sentence_window

    records = [f'{{"id": {n}, "name": "item{n}", "desc": "Spare part {name} is kept in aisle {n % 7}"}},'
               for n, name in ((7097, "Brasswick gear"), (7098, "Tollham valve"), (7099, "Mirefold seal"))]
    passage = " ".join(records) + ' {"id": 7100, "name": "item7100", "desc": "Spare part Glimmerwick rotor is ' \
        'stored in warehouse bay R-42 next to the loading dock"}'
    query = "Glimmerwick rotor warehouse bay"
    [sentence] = matching_sentences(query, embedder.embed([query])[0], [passage], embedder.embed)
    assert len(sentence) <= FOCUS_CHARS and "Glimmerwick rotor" in sentence and "bay R-42" in sentence, sentence
    before, shown, after = sentence_window(passage, sentence, 300)
    assert "bay R-42" in shown and (before + shown + after).startswith("\u2026")


def test_a_copy_of_the_same_name_is_named_by_its_path() -> None:
    """t70: "[1] /srv/copy/docs/recipe.txt (the same text in: recipe.txt)" read as a file copied onto itself."""
    from pgpt.runtime.documents.passage_view import copies_note

    assert copies_note(["/srv/moved/docs/recipe.txt", "/srv/old/cake.txt"], own="/srv/copy/docs/recipe.txt") == \
        " (the same text in: /srv/moved/docs/recipe.txt, cake.txt)"
    assert copies_note(["/a/ferry (1).md"], own="/a/ferry.md") == " (the same text in: ferry (1).md)"
