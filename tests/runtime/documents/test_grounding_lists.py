"""The check and lists: a list in an answer stays a list and keeps every item, a quoted lead-in brings
its items, and an answer grows by a list's items only, not by the sentences around its answer."""

from __future__ import annotations

from grounding_support import grounder_over
from pgpt.runtime.documents.grounding import SourceSentence
from pgpt.runtime.documents.sentences import split_sentences


def test_a_list_in_the_answer_stays_one_item_a_line(embedder) -> None:  # type: ignore[no-untyped-def]
    """"The platforms that tmux runs on are: [1] - Linux [1] - MacOS [1]" was one line."""
    sentences = [SourceSentence(1, "README", 0, "tmux runs on OpenBSD, FreeBSD, NetBSD, Linux, macOS and Solaris.")]
    ask = grounder_over(embedder, "Which platforms does tmux run on?", sentences)
    result = ask.check("tmux runs on these platforms:\n- Linux\n- macOS", abstained=False)
    assert result.kind == "answer", result
    assert result.text.splitlines()[1:] == ["- Linux [1]", "- macOS [1]"], result.text


def test_every_item_of_a_list_answer_is_kept(embedder) -> None:  # type: ignore[no-untyped-def]
    """A list's items share no word with the question, their lead-in does: the check kept the first
    item and dropped the rest as far from the question."""
    sentences = [SourceSentence(1, "notes.txt", 0, text) for text in (
        "Harbour safety", "The crew safety checklist has these items:", "- life jackets counted", "- radio tested",
        "- flares checked", "- engine oil level read", "The harbour opens at six.")]
    ask = grounder_over(embedder, "What items are on the crew safety checklist?", sentences)
    draft = "The crew safety checklist has these items:\n- life jackets counted\n- radio tested\n- flares checked"
    result = ask.check(draft + "\n- engine oil level read", abstained=False)
    assert result.kind == "answer" and result.text.splitlines() == [
        "- life jackets counted [1]", "- radio tested [1]", "- flares checked [1]",
        "- engine oil level read [1]"], result


def test_a_quoted_lead_in_brings_its_list(embedder) -> None:  # type: ignore[no-untyped-def]
    """"Quote from the documents: “Every sailor must bring the following:”" showed none of the items."""
    sentences = [SourceSentence(1, "club.html", 0, text) for text in (
        "Sailing club", "Every sailor must bring the following:", "a waterproof jacket", "a head torch",
        "a first aid kit", "Boots are provided by the club.")]
    ask = grounder_over(embedder, "What must every sailor bring?", sentences)
    result = ask.check("Sailors must bring a lifeboat and a compass.", abstained=False)  # nothing of it holds
    assert result.kind == "quote", result
    assert result.text == ("Quote from the documents: \u201cEvery sailor must bring the following:\n"
                           "a waterproof jacket\na head torch\na first aid kit\u201d [1]")
    assert [q.text for q in result.quotes][-1] == "a first aid kit"
    # a marked list ends at its first line without a marker: the quote ran on into the next lead-in
    orchard = [SourceSentence(1, "orchard.html", 0, text) for text in (
        "The Pellwick orchard grows the following apple varieties:", "- Amber Quill", "- Frostnell Red",
        "To prune a Pellwick tree, the gardener follows these steps:", "- Cut the dead branches first.")]
    quoted = grounder_over(embedder, "Which apple varieties does the Pellwick orchard grow?", orchard).check(
        "It grows pears and plums.", abstained=False)
    assert quoted.kind == "quote" and quoted.text.endswith("- Amber Quill\n- Frostnell Red\u201d [1]"), quoted


HANDBOOK = """# Platform Team On-Call Handbook

## Rotation

The on-call rotation changes every Monday at 10:00 UTC. Each engineer is on call for one week, then off for at
least four weeks. The primary on-call engineer carries the pager; the secondary is the backup when the primary
does not acknowledge within 15 minutes.

## Compensation

Each week of on-call duty is compensated with a flat payment of 450 EUR plus one day off in lieu.
Night pages between 22:00 and 07:00 are paid an extra 60 EUR each.
"""


def test_an_answer_grows_by_list_items_not_by_the_sentences_before_it(embedder) -> None:  # type: ignore[no-untyped-def]
    """A tester's "How much is a week of on-call duty paid?" came fourth, after three rotation rules
    the model copied: each was supported, and the run of kept sentences grew through all of them."""
    sentences = [SourceSentence(1, "handbook.md", 0, text) for text in split_sentences(HANDBOOK)]
    ask = grounder_over(embedder, "How much is a week of on-call duty paid?", sentences)
    result = ask.check("Each engineer is on call for one week, then off for at least four weeks. [1] The primary "
                       "on-call engineer carries the pager; the secondary is the backup when the primary does not "
                       "acknowledge within 15 minutes. [1] Each week of on-call duty is compensated with a flat "
                       "payment of 450 EUR plus one day off in lieu. [1]", abstained=False)
    assert result.kind == "answer" and result.text == (
        "Each week of on-call duty is compensated with a flat payment of 450 EUR plus one day off in lieu. [1]"), result



def test_a_lead_in_whose_list_was_not_supported_is_no_answer(embedder) -> None:  # type: ignore[no-untyped-def]
    """A tester's "To close a frozen SSH connection from your side, you can type the following command:
    [1] If you want to ..." was shown as a supported answer: the command after the lead-in (wrong) was
    taken out, the lead-in left, running on into the next sentence."""
    from pgpt.runtime.documents.statements import without_bare_lead_ins

    lead = "To close a frozen SSH connection from your side, you can type the following command:"
    after = "If you want to end the session at once, type the escape character and a full stop."
    assert without_bare_lead_ins([(lead, 0), (after, 3)]) == [(after, 3)]
    assert without_bare_lead_ins([(after, 3), (lead, 0)]) == [(after, 3)]
    listed = [("tmux runs on these platforms:", 0), ("- Linux", 1), ("- macOS", 2)]
    assert without_bare_lead_ins(listed) == listed  # a list answer keeps its lead-in
    table = [("The opening hours are:", 0), ("| Monday | 07:00 | 14:00 |", 1)]
    assert without_bare_lead_ins(table) == table
    sentences = [SourceSentence(1, "README", 0, "tmux runs on OpenBSD, FreeBSD, NetBSD, Linux, macOS and Solaris.")]
    ask = grounder_over(embedder, "Which platforms does tmux run on?", sentences)
    result = ask.check("tmux runs on these platforms:\n- Linux\n- macOS", abstained=False)
    assert result.kind == "answer" and result.text.splitlines()[0] == "tmux runs on these platforms: [1]", result


def test_an_rst_directive_is_never_the_quote(embedder) -> None:  # type: ignore[no-untyped-def]
    """"What license is psutil distributed under?" got the quote ".. |license| image:: https://...
    :target: ... :alt: License" (a README's badge) from a tester's unseen documents."""
    sentences = [SourceSentence(1, "psutil.md", 0, ".. |license| image:: https://img.shields.io/pypi/l/psutil.svg "
                                                   ":target: https://github.com/giampaolo/psutil/blob/master/LICENSE "
                                                   ":alt: License"),
                 SourceSentence(1, "psutil.md", 0, "psutil is a cross-platform library for process and system "
                                                   "monitoring in Python.")]
    ask = grounder_over(embedder, "What license is psutil distributed under?", sentences)
    result = ask.check("The license is shown in the badge.", abstained=False)  # nothing to support: a quote
    assert not any(q.text.startswith("..") for q in result.quotes), result


def test_a_quoted_list_item_is_shown_without_its_bullet(embedder) -> None:  # type: ignore[no-untyped-def]
    """“- The bakery closes for annual holidays from 1 August to 21 August.” was quoted with its dash
    (t77), in the answer and under it; a numbered step keeps its number."""
    sentences = [SourceSentence(1, "handbook.md", 0, text) for text in (
        "Holidays", "- The bakery closes for annual holidays from 1 August to 21 August.",
        "- Staff get a 20 percent discount on bread.")]
    ask = grounder_over(embedder, "When does the bakery close for its annual holidays?", sentences)
    result = ask.check("The bakery is closed in winter.", abstained=False)  # not supported: the quote stands in
    assert result.kind == "quote" and "\u201cThe bakery closes for annual holidays" in result.text, result
    assert result.quotes[0].as_quote()["sentence"].startswith("The bakery closes"), result.quotes
    assert SourceSentence(1, "a.md", 0, "2. Copy the file.").as_quote()["sentence"] == "2. Copy the file."


def test_a_quoted_table_row_comes_with_its_header(embedder) -> None:  # type: ignore[no-untyped-def]
    """A quoted row alone ("| Pro | 1,000 | Email, Slack, SMS | 90 days | £79 |") does not say which number is
    the price (t79): the quote brings the table's header row."""
    from pgpt.runtime.documents.list_runs import table_header

    rows = ["| Plan | Alert rules | Notification channels | Data retention | Price per month |",
            "|----------|-------------|-----------------------|----------------|-----------------|",
            "| Basic | 50 | Email | 14 days | £19 |", "| Pro | 1,000 | Email, Slack, SMS | 90 days | £79 |"]
    sentences = [SourceSentence(1, "lighthouse.md", 0, text) for text in ["Lighthouse plans.", *rows]]
    assert [table_header(sentences, i) for i in range(5)] == [-1, -1, -1, 1, 1]
    ask = grounder_over(embedder, "What does the Lighthouse Pro plan cost per month?", sentences)
    quoted = ask._quote(4, {})  # as a row that is the best quote is shown
    assert quoted.text == f"Quote from the documents: \u201c{rows[0]}\n{rows[3]}\u201d [1]", quoted.text
    assert [q.text for q in quoted.quotes] == [rows[0], rows[3]]
    assert table_header([SourceSentence(1, "a.csv", 0, "a | b"), SourceSentence(2, "b.csv", 0, "c | d")], 1) == -1


def test_a_quoted_csv_row_comes_with_its_header_line() -> None:
    """A CSV's row was quoted alone ("Backend,Tom Okafor,2026-07-06,2026-07-17,10,annual leave", t79):
    its header line comes with it, where the passage holds it (a line of as many commas, no digit)."""
    from pgpt.runtime.documents.list_runs import table_header
    from pgpt.runtime.documents.sentences import split_sentences

    text = ("team,employee,leave_start,leave_end,days,type\nBackend,Tom Okafor,2026-07-06,2026-07-17,10,annual leave\n"
            "Design,Lena Fischer,2026-06-22,2026-07-03,10,annual leave\nSales,Marco Ruiz,2026-05-25,2026-05-29,5,x\n"
            "Support,Aisha Bello,2026-09-14,2026-09-25,10,annual leave\nBackend,Priya Raman,2026-10-05,2026-10-09,5,x\n")
    sentences = [SourceSentence(1, "holidays.csv", 0, s) for s in split_sentences(text)]
    assert [table_header(sentences, i) for i in range(6)] == [-1, 0, 0, 0, 0, 0]
    # a passage from the middle of the file, without the header: no row is taken for it
    assert [table_header(sentences[1:], i) for i in range(5)] == [-1] * 5
    # nor is a sentence with two commas beside another such sentence a row
    prose = [SourceSentence(1, "a.txt", 0, t) for t in ("Tea, coffee, and cake.", "Open 9, 10, or 11 on Sundays.")]
    assert table_header(prose, 1) == -1


API = ["| Endpoint | Method | Rate limit | Timeout |", "|---|---|---|---|",
       "| /v2/payments | POST | 50 requests per second | 10 s |", "| /v2/reports | GET | 2 requests per minute | 120 s |"]
STAFF = ("name,team,role,office,start_date\nAna Lopes,Design,Designer,London,2020-02-03\n"
         "Erin Walsh,Finance,Controller,Edinburgh,2018-11-19\nGus Nilsson,Engineering,Frontend Engineer,Glasgow,2025-01-06\n"
         "Hana Kim,People,HR Partner,London,2021-10-04\nIvan Petrov,Engineering,Data Engineer,Cardiff,2023-12-01\n")


def test_a_table_s_header_names_its_rows_cells_and_is_no_answer_alone(embedder) -> None:  # type: ignore[no-untyped-def]
    """t83: "What is the timeout of the reports endpoint?" was answered with a quote of the header row
    alone, and "Which office is Gus Nilsson in?" was "not found" with the right CSV row closest (its
    header names the office; the row's commas made it "three words", under a quote's four)."""
    from pgpt.runtime.documents.list_runs import a_header_row

    rows = [SourceSentence(1, "api.md", 0, text) for text in ["Rate limits per endpoint.", *API]]
    assert [a_header_row(rows, i) for i in range(5)] == [False, True, False, False, False]
    ask = grounder_over(embedder, "What is the timeout of the reports endpoint?", rows)
    result = ask.check("The timeout of the reports endpoint is long.", abstained=False)
    assert result.kind == "quote" and "120 s" in result.text and API[0] in result.text, result
    staff = [SourceSentence(1, "staff.csv", 0, text) for text in split_sentences(STAFF)]
    ask = grounder_over(embedder, "Which office is Gus Nilsson in?", staff)
    best = ask._best_quote()  # the row, read with its header's "office", is the quote (with its header)
    assert best >= 0 and "Glasgow" in staff[best].text and ask.relevance[best] == max(ask.relevance), best
    assert ask._quote(best, {}).text.startswith("Quote from the documents: \u201cname,team,role,office")
    # a date's numbers count nothing: "How many days is Ivan Petrov off?" is not his row's start date
    result = grounder_over(embedder, "How many days is Ivan Petrov off?", staff).check(
        "Ivan Petrov,Engineering,Data Engineer,Cardiff,2023-12-01", abstained=False)
    assert result.kind != "answer", result


def test_a_heading_the_model_glued_to_a_statement_is_neither_shown_nor_quoted(embedder) -> None:  # type: ignore[no-untyped-def]
    """"... no approval. ## Production Production deploys need approval from the on-call lead." was one
    statement, its "##" in the answer and "## Production" its supporting quote (t83)."""
    text = ["## Staging", "Deploys to staging need no approval.", "## Production",
            "The production database is PostgreSQL 14.", "Production deploys need approval from the on-call lead."]
    given = [SourceSentence(1, "environments.md", 0, t, heading=t.startswith("#")) for t in text]
    result = grounder_over(embedder, "Who approves production deploys?", given).check(
        "Deploys to staging need no approval. ## Production Production deploys need approval from the on-call lead.",
        abstained=False)
    assert result.kind == "answer" and "#" not in result.text, result
    assert "Production deploys need approval from the on-call lead. [1]" in result.text, result
    assert "Production Production" not in result.text and all(not q.text.startswith("#") for q in result.quotes), result


def test_a_table_row_that_supports_an_answer_is_shown_with_its_header(embedder) -> None:  # type: ignore[no-untyped-def]
    """The "Quote from the documents" form brought a row's header, a supported answer's quote did not
    ("| /v2/payments | POST | 50 requests per second | 10 s |" alone, t83)."""
    rows = [SourceSentence(1, "api.md", 0, text) for text in ["Rate limits per endpoint.", *API]]
    result = grounder_over(embedder, "What is the rate limit for POST /v2/payments?", rows).check(
        "The rate limit for POST /v2/payments is 50 requests per second.", abstained=False)
    assert result.kind == "answer" and [q.text for q in result.quotes] == [API[0], API[2]], result


SUPPLIERS = """APPROVED SUPPLIERS

HOPS
  Greenbine Hop Merchants
    Supplies: Cascade, Centennial, Citra, Mosaic
    Lead time: 7 working days
    Minimum order: 5 kg per variety
  Westacre Hop Farm (English hops)
    Supplies: East Kent Goldings, Fuggles
    Lead time: 3 working days
    Minimum order: none
  Simcoe: the contract with Northline Hops ends in February 2027 and will not be renewed,
  because Northline could not guarantee the volume.
CLEANING
  Clearflow Hygiene
    Supplies: caustic, acid and sanitiser
    Lead time: 2 working days
"""


def lines(text: str) -> list[str]:
    """A record's lines as sentences of their own (as they are where each ends with a full stop)."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def test_a_record_s_field_answers_for_its_own_record_and_is_shown_with_its_name(embedder) -> None:  # type: ignore[no-untyped-def]
    """"What is the lead time for hops from Greenbine?" was answered "2 working days", Clearflow
    Hygiene's, from a lone "Lead time: 2 working days" (t84); a field is quoted under its record's name."""
    given = [SourceSentence(1, "suppliers.txt", 0, s) for s in lines(SUPPLIERS)]
    question = "What is the lead time for hops from Greenbine?"
    result = grounder_over(embedder, question, given).check("The lead time for Greenbine is 2 working days.", False)
    assert "2 working days" not in result.text, result
    result = grounder_over(embedder, question, given).check("The lead time for Greenbine is 7 working days.", False)
    assert result.kind == "answer" and "7 working days" in result.text, result
    assert [q.text for q in result.quotes] == ["Greenbine Hop Merchants", "Lead time: 7 working days"]
    result = grounder_over(embedder, "What is the lead time from Westacre Hop Farm?", given).check(
        "The lead time is 7 working days.", False)
    assert "7 working days" not in result.text, result  # Greenbine's, though both names hold "hop"


def test_a_quote_is_shown_without_markdown_bold_marks(embedder) -> None:  # type: ignore[no-untyped-def]
    """"**Packaging Lead** — Sinead Kerrigan." was quoted with its asterisks (t84)."""
    given = [SourceSentence(1, "staff_roles.md", 0, s) for s in split_sentences(
        "## Packaging\n\n**Packaging Lead** — Sinead Kerrigan. She plans every can run.")]
    ask = grounder_over(embedder, "Who is the Packaging Lead?", given)
    result = ask.check("The Packaging Lead is Sinead Kerrigan.", abstained=False)
    assert result.kind == "answer", result
    assert [q.as_quote()["sentence"] for q in result.quotes] == ["Packaging Lead \u2014 Sinead Kerrigan."]
    quoted = ask._quote(ask.best_sentence(), {})
    assert "**" not in quoted.text and "Sinead Kerrigan" in quoted.text


FLEET = ("Our vessels are listed below.\n\nVessel: MV Puffin\nLength: 30 m\nMinimum crew: 5\n\n"
         "Vessel: MV Gannet\nLength: 24 m\nMinimum crew: 3\n")


def test_a_record_that_starts_with_its_name_field_names_its_other_fields(embedder) -> None:  # type: ignore[no-untyped-def]
    """Records that start with "Vessel: MV Puffin" had no name line, so another vessel's "Minimum crew"
    answered (t85); "What is the minimum order from Westacre?" quoted Westacre's lead time (t85)."""
    from pgpt.runtime.documents.list_runs import table_header

    given = [SourceSentence(1, "fleet.txt", 0, s) for s in lines(FLEET)]
    names = {given[i].text: given[h].text if h >= 0 else None for i in range(len(given))
             for h in [table_header(given, i)]}
    assert names["Minimum crew: 3"] == "Vessel: MV Gannet" and names["Length: 30 m"] == "Vessel: MV Puffin"
    assert names["Vessel: MV Gannet"] is None  # a record's own name
    result = grounder_over(embedder, "What is the minimum crew of the MV Puffin?", given).check(
        "The minimum crew of the MV Puffin is 3.", False)
    assert "3" not in result.text, result
    suppliers = [SourceSentence(1, "suppliers.txt", 0, s) for s in lines(SUPPLIERS)]
    quoted = grounder_over(embedder, "What is the minimum order from Westacre?", suppliers).check(
        "The minimum order from Westacre is 5 kg.", False)
    assert "5 kg" not in quoted.text and "Lead time" not in quoted.text, quoted


def test_a_timetable_and_a_record_keep_their_lines_in_a_passage_view() -> None:
    """A plain text's timetable ran into one line in `search` and the closest passages (t85)."""
    from pgpt.runtime.documents.passage_view import shown_text
    from pgpt.runtime.documents.sentences import flatten_text

    text = ("Harbourside Taproom:\n  Monday to Thursday   15:00 - 23:00\n  Sunday               12:00 - 22:00\n\n"
            "Westacre Hop Farm\n    Lead time: 3 working days\n    Note: used for Old Tollgate and\n    the stout.")
    shown = shown_text(text)
    assert shown.replace("\n", " ") == flatten_text(text)
    assert shown.splitlines() == ["Harbourside Taproom:", "Monday to Thursday 15:00 - 23:00",
                                  "Sunday 12:00 - 22:00", "Westacre Hop Farm", "Lead time: 3 working days",
                                  "Note: used for Old Tollgate and the stout."]
