"""Parallel facts: documents give the same attribute for several subjects (employees and contractors,
London and elsewhere, Beacon 2.0 and 3.0), and an answer must take the asked subject's (t81), with the
real embedder."""

from __future__ import annotations

from grounding_support import grounder_over
from pgpt.runtime.documents.grounding import SourceSentence
from pgpt.runtime.documents.sentences import split_sentences

HANDBOOK = ("Every employee gets a blue access badge on their first day from reception. Contractors receive a grey "
            "badge that expires after 90 days. Laptops are replaced every four years. New starters receive a "
            "ThinkPad T14 and a 27-inch monitor.")
EXPENSES = "Hotels are booked through the travel desk. The nightly limit is £150 in London and £110 elsewhere in the UK."
MINUTES = ("Release planning for Beacon 2.0. Tom reported that the Beacon 2.0 beta slipped by two weeks. The public "
           "beta will now start on 16 March 2026. General availability remains planned for 4 May 2026.")
WIFI = "The guest wifi password for team B is bluewhale-42. It changes every quarter."


def sources(*texts: tuple[str, str]) -> list[SourceSentence]:
    return [SourceSentence(n, file, 0, s) for n, (file, text) in enumerate(texts, 1) for s in split_sentences(text)]


def test_a_value_beside_the_asked_subject_is_not_its_value(embedder) -> None:  # type: ignore[no-untyped-def]
    """"What colour badge do contractors get?" was answered "blue", the employees' badge, supported by
    its sentence while the next one gives the contractors' grey badge."""
    given = sources(("office_handbook.md", HANDBOOK))
    result = grounder_over(embedder, "What colour badge do contractors get?", given).check(
        "The colour badge for contractors is blue.", abstained=False)
    assert "blue" not in result.text, result
    assert result.kind == "quote" and "grey" in result.text, result
    # the employees' own badge is answered, and so is the contractors' grey one
    result = grounder_over(embedder, "What colour access badge does every employee get?", given).check(
        "Every employee gets a blue access badge.", abstained=False)
    assert result.kind == "answer" and "blue" in result.text, result
    result = grounder_over(embedder, "What colour badge do contractors get?", given).check(
        "Contractors receive a grey badge.", abstained=False)
    assert result.kind == "answer" and "grey" in result.text, result


def test_which_asks_for_one_of_a_kind_that_a_name_answers(embedder) -> None:  # type: ignore[no-untyped-def]
    """"Which laptop do new starters receive?" quoted "Laptops are replaced every four years.": the
    quote had to name "laptop", and the ThinkPad's sentence does not."""
    given = sources(("office_handbook.md", HANDBOOK))
    result = grounder_over(embedder, "Which laptop do new starters receive?", given).check(
        "The laptop that is mentioned in the source is the laptop that is mentioned in the source.", abstained=False)
    assert result.kind == "quote" and "ThinkPad T14" in result.text, result


def test_another_version_of_the_asked_product_answers_nothing(embedder) -> None:  # type: ignore[no-untyped-def]
    """"When will Beacon 3.0 be released?" was answered with a quote of 2.0's release planning."""
    given = sources(("minutes.txt", MINUTES))
    ask = grounder_over(embedder, "When will Beacon 3.0 be released?", given)
    result = ask.check("The Beacon 3.0 beta will be released on 16 March 2026.", abstained=False)
    assert result.kind == "not_found", result
    # 2.0's dates answer for 2.0, the line without a version beside its name included
    result = grounder_over(embedder, "When is general availability of Beacon 2.0 planned?", given).check(
        "General availability of Beacon 2.0 is planned for 4 May 2026.", abstained=False)
    assert result.kind == "answer" and "4 May 2026" in result.text, result


def test_a_place_no_source_names_is_not_answered_with_another_s(embedder) -> None:  # type: ignore[no-untyped-def]
    """"What is the nightly hotel limit in Manchester?" was answered "£150", London's."""
    given = sources(("expense_policy.md", EXPENSES))
    result = grounder_over(embedder, "What is the nightly hotel limit in Manchester?", given).check(
        "The nightly hotel limit in Manchester is £150.", abstained=False)
    assert "£150" not in result.text or result.kind == "quote", result
    assert result.kind != "answer", result
    result = grounder_over(embedder, "What is the nightly hotel limit in London?", given).check(
        "The nightly hotel limit in London is £150.", abstained=False)
    assert result.kind == "answer" and "£150" in result.text, result


def test_a_code_in_another_case_is_another_code(embedder) -> None:  # type: ignore[no-untyped-def]
    """The answer gave the password as "Bluewhale-42" while its quote read "bluewhale-42"."""
    given = sources(("wifi.txt", WIFI))
    ask = grounder_over(embedder, "What is the guest wifi password for team B?", given)
    result = ask.check("The guest wifi password for team B is Bluewhale-42.", abstained=False)
    assert "Bluewhale-42" not in result.text, result
    assert result.kind == "quote" and "bluewhale-42" in result.text, result
    result = ask.check("The guest wifi password for team B is bluewhale-42.", abstained=False)
    assert result.kind == "answer" and "bluewhale-42" in result.text, result


def test_an_answer_keeps_to_its_closest_sentence_s_facts(embedder) -> None:  # type: ignore[no-untyped-def]
    """"Within how many days are late claims rejected?" was answered with three day counts: the 90 asked
    for, the 30 days to submit a claim, and a support guide's 2 business days, each "supported"."""
    given = sources(("expense_policy.md", "Claims must be submitted within 30 days of the expense. Claims are approved "
                     "by the line manager. Late claims, older than 90 days, are rejected."),
                    ("support.txt", "Severity 3 - a minor issue or a question. Response within 2 business days."))
    result = grounder_over(embedder, "Within how many days are late claims rejected?", given).check(
        "Claims must be submitted within 30 days of the expense. Late claims, older than 90 days, are rejected. "
        "Response within 2 business days.", abstained=False)
    assert result.kind == "answer" and "90 days" in result.text, result
    assert "30 days" not in result.text and "2 business days" not in result.text, result


def test_a_version_that_is_a_floor_answers_for_later_ones(embedder) -> None:  # type: ignore[no-untyped-def]
    """"Python 3.8 or later" names another version than 3.12, and answers for it."""
    given = sources(("install.md", "Beacon runs on Linux and macOS. It requires Python 3.8 or later and PostgreSQL 14."))
    result = grounder_over(embedder, "Does Beacon run on Python 3.12?", given).check(
        "Beacon requires Python 3.8 or later, so it runs on Python 3.12.", abstained=False)
    assert result.kind == "answer" and "3.8 or later" in result.text, result



def test_a_plural_meets_its_singular() -> None:
    """"employees" stemmed to "employ" and "employee" to "employe": a question's word was not found in
    the sentence that wrote it in the singular (t83)."""
    from pgpt.runtime.documents.sentences import content_words

    assert content_words("employees badges caches") == content_words("employee badge cache") == {"employ", "badg", "cach"}


def test_the_maximum_does_not_answer_for_the_minimum(embedder) -> None:  # type: ignore[no-untyped-def]
    """"What is the minimum payment amount?" was answered "10,000 EUR" from "The maximum payment amount
    was raised from 10,000 EUR to 25,000 EUR." (t83)."""
    from pgpt.runtime.documents.question_kinds import the_other_extreme

    given = sources(("changelog.md", "The maximum payment amount was raised from 10,000 EUR to 25,000 EUR. Webhooks "
                                     "are retried 3 times."),
                    ("errors.md", "LDG-422: the amount is below the 50-cent minimum or above the 25,000 EUR maximum."))
    result = grounder_over(embedder, "What is the minimum payment amount?", given).check(
        "The minimum payment amount is 10,000 EUR.", abstained=False)
    assert "10,000" not in result.text, result
    assert the_other_extreme("What is the maximum timeout?", "The minimum timeout is 2 s.")
    assert not the_other_extreme("What is the maximum timeout?", "The timeout is at least 2 s and at most 60 s.")
    assert not the_other_extreme("What are the minimum and maximum amounts?", "The maximum amount is 25,000 EUR.")


TAPROOMS = ("This handbook applies to our two taprooms: the Millbrook Taproom, which sits beside the pilot brewhouse "
            "on Mill Lane, and the Harbourside Taproom on Quay Street.\n\nHarbourside Taproom:\n"
            "  Monday to Thursday   15:00 - 23:00\n  Friday and Saturday  12:00 - 00:30\n  Sunday 12:00 - 22:00\n")
SAFETY = ("Assembly points: Dunmore - the staff car park by the gatehouse. Harbourside - the quay railings outside "
          "the main entrance.")


def test_an_opening_time_is_no_closing_time(embedder) -> None:  # type: ignore[no-untyped-def]
    """"What time does the Harbourside taproom close on a Saturday?" was answered "12:00", the start of
    "Friday and Saturday 12:00 - 00:30" (t84)."""
    from pgpt.runtime.documents.attachment import wrong_end

    given = sources(("taproom_handbook.txt", TAPROOMS))
    question = "What time does the Harbourside taproom close on a Saturday?"
    result = grounder_over(embedder, question, given).check(
        "The Harbourside taproom closes at 12:00 on Saturday.", abstained=False)
    assert result.kind != "answer", result
    result = grounder_over(embedder, question, given).check(
        "The Harbourside taproom closes at 00:30 on Saturday.", abstained=False)
    assert result.kind == "answer" and "00:30" in result.text, result
    hours = "Friday and Saturday 12:00 - 00:30"
    assert wrong_end("When does it open on Friday?", {"00:30"}, hours)
    assert not wrong_end("When does it open on Friday?", {"12:00"}, hours)
    assert not wrong_end("When is it open on Friday?", {"12:00", "00:30"}, hours)  # both ends asked
    assert not wrong_end("What time does it close on Friday?", {"12:00", "00:30"}, hours)  # the span said whole


def test_a_section_number_is_no_value(embedder) -> None:  # type: ignore[no-untyped-def]
    """"What is the dissolved oxygen limit for cans?" was answered "6.2", the number of the heading
    "### 6.2 Dissolved oxygen" (t84)."""
    from pgpt.runtime.documents.sentences import without_section_number

    manual = ("### 6.2 Dissolved oxygen\n\nDissolved oxygen (DO) in the packaged beer is the test that most often "
              "fails. Limits:\n\n- Kegs: at most 50 ppb.\n- Cans: at most 80 ppb total package oxygen (TPO).")
    given = [SourceSentence(1, "quality_manual.md", 0, s, heading=s.startswith("#"))
             for s in split_sentences(manual)]
    question = "What is the dissolved oxygen limit for cans?"
    result = grounder_over(embedder, question, given).check("The dissolved oxygen limit for cans is 6.2.", False)
    assert "6.2" not in result.text, result
    result = grounder_over(embedder, question, given).check("The dissolved oxygen limit for cans is 80 ppb.", False)
    assert result.kind == "answer" and "80 ppb" in result.text, result
    assert without_section_number("6.2 Dissolved oxygen") == "Dissolved oxygen"
    for kept in ("## 2.3.0 (2024-05-01)", "## 2024 budget", "2. Copy the file", "6.2 million cans were sold."):
        assert without_section_number(kept) == kept


def test_the_attribute_asked_after_where_must_be_named(embedder) -> None:  # type: ignore[no-untyped-def]
    """"Where is the assembly point at Harbourside?" was answered "the corner of Quay Street and Mill
    Lane", the streets of two taprooms in a sentence that names no assembly point (t84)."""
    given = sources(("taproom_handbook.txt", TAPROOMS), ("site_safety_rules.txt", SAFETY))
    question = "Where is the assembly point at Harbourside?"
    result = grounder_over(embedder, question, given).check(
        "The assembly point at Harbourside is located at the corner of Quay Street and Mill Lane.", False)
    assert "Quay Street" not in result.text, result
    result = grounder_over(embedder, question, given).check(
        "The assembly point at Harbourside is the quay railings outside the main entrance.", False)
    assert result.kind == "answer" and "railings" in result.text, result
