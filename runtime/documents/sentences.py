"""Sentences and the facts in them: how the check (grounding) and the passage views cut text into
sentences and list items, and read a statement's content words, numbers and names.

Words are read in the alphabets written with spaces (Latin with accents, Greek, Cyrillic), and by
character pairs in CJK; a sentence may also start in a script without capitals (Hebrew, Arabic, CJK).
"""

from __future__ import annotations

import re

# Sentences end at . ! ? before a capital, digit, quote or bracket; lines are joined (PDF and plain
# text wrap sentences over lines) except at a blank line or a line that starts a list item, a
# heading or a table row. A hyphen at a line's end before a lower-case letter joins the word.
# Not after a title or "e.g.": "Dr. Ilse Varga" was cut into "... is Dr. [1] Ilse Varga. [1]".
_TITLES = "".join(rf"(?<!\b{re.escape(t)})" for t in ("Dr.", "Mr.", "Ms.", "Mrs.", "Prof.", "St.", "vs.", "e.g.", "i.e."))
# Scripts without capitals (Hebrew, Arabic, CJK, kana, Hangul) start a sentence with any letter: an
# Arabic sentence after an English one was quoted as part of it.
_CASELESS = "\u0590-\u08ff\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af"
_CAPITALS = "A-Z\u00c0-\u00d6\u00d8-\u00de\u0391-\u03a9\u0410-\u042f"  # "Émilie ..." starts a sentence too
SENTENCE_END = re.compile(rf"(?<=[.!?\u3002]){_TITLES}\s*(?<=\s|\u3002)(?=[\"'\u201c(\[{_CAPITALS}0-9*`_{_CASELESS}])")
# man pages hyphenate with U+2010 ("inter\u2010\n preted"), some PDFs with a soft hyphen
HYPHEN_BREAK = re.compile(r"(?<=[a-z])[-\u2010\u00ad]\n\s*(?=[a-z])")
_BLOCK = re.compile(r"\n\s*\n")
LONG_UNIT = 300  # characters: a longer run of lines without a sentence end may be records (see _records)
LIST_ITEM = re.compile(r"(?:[-*\u2022]|\d{1,3}[.)])\s")  # "- Linux", "2. Copy the file"
_NEW_UNIT = re.compile(r"\n(?=\s*(?:[-*\u2022+]\s|\d{1,3}[.)]\s|[a-zA-Z][.)]\s|#{1,6}\s|\||```))")
# Box-drawing art (a console panel in a README) is read as white space: a whole panel, "╭──
# FastAPI CLI ──╮ │ │ │ Serving at: ... │ ...", was the quote of an answer. (Cut into its lines,
# the panel's "API docs: <address>" lost the words around it, and a right answer its relevance.)
_BOX_ART = {code: " " for code in range(0x2500, 0x2580)}
# A block's first line in capitals, before a line with small letters, is a heading (a man page's
# "ESCAPE CHARACTERS" was glued to the sentence after it, and quoted so); a paragraph in capitals
# (a licence's disclaimer) goes on over lines in capitals and stays one.
_CAPS_HEADING = re.compile(r"\A\s*[A-Z][A-Z0-9 &/,'()-]*[A-Z0-9)][ \t]*\n(?=[^\n]*[a-z])")
_CITATION = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
# Letters of the alphabets with spaces between words (Latin with accents, Greek, Cyrillic): read
# as ASCII only, "Quiría" was "Quir" + "a", and "Quir" stood in "Quirós" (a changed surname passed).
# Armenian, Hebrew and Arabic letters (with their vowel marks, without their punctuation), Devanagari,
# Georgian, and Latin and Greek extended too: an Arabic sentence had no words at all (t50).
_LETTERS = ("0-9A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u0370-\u03ff\u0400-\u04ff\u0531-\u0587"
            "\u0591-\u05bd\u05d0-\u05ea\u0620-\u065f\u0660-\u0669\u066e-\u06d3\u06fa-\u06ff\u0900-\u0963"
            "\u10a0-\u10ff\u1e00-\u1fff")
_WORD = re.compile(rf"[{_LETTERS}][{_LETTERS}_+#-]*(?:\.[{_LETTERS}_+#-]+)*")
# Chinese and Japanese put no spaces between words (Korean does, but joins its particles to them):
# read by character pairs, a Chinese answer had no words, so no statement could be supported and
# no sentence quoted, and every answer was "not found".
CJK_RUN = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]+")
# A number stands alone: the digits inside "1DS", "SHA256", "IPv6", "S3" or "v3-8" are no number of
# their own (the word itself is the fact); read alone, "256" was an invented number that no source
# sentence held as a word, and a sentence copied from its source was dropped.
# Not a manual's section ("tar(1)", "ssh_config(5)"): a man page's header line "TAR(1) GNU TAR Manual
# TAR(1)" was the supporting quote of "The default N is 1".
# Not the tail of a number that a letter starts: "PyPy v7.3.20+" held the number "3.20", which no source
# holds as a whole number, and a right answer copied from its source was called invented (t68).
NUMBER = re.compile(r"(?<![A-Za-z0-9])(?<!\d[.,:])(?!(?<=\w\()\d+\))\d+(?:[.,:]\d+)*(?![A-Za-z0-9])")
# A numbered thing, a name and its number: "Larkspur-7", "ZEBRA_4471", "server number 7", "room no. 12",
# "issue #123". Asked about server number 7, "The backup server number 74 runs on port 9074." was the
# supporting quote of a wrong answer (t66): two numbered things are two things (numbered_things).
THING = re.compile(r"\b([A-Za-z]+)(?:[-_]|\s+(?:number|no\.|nr\.)\s*|\s*#\s*)(\d+)\b", re.IGNORECASE)
_CODE_SPAN = re.compile(r"`([^`\n]{1,40})`")
# A symbol in quotes, as a code span: "The default escape character is '~'." (it was no fact at all)
_QUOTED_SYMBOL = re.compile(r"""(?<!\w)['"\u2018\u201c]([^\w\s'"\u2018\u2019\u201c\u201d]{1,3})"""
                            r"""['"\u2019\u201d](?!\w)""")
# A command-line option, "-J" or "--zstd" (its name without the dashes, as a code span's)
_OPTION = re.compile(r"(?<![\w-])(?:--([A-Za-z][\w-]*[A-Za-z0-9])|-([A-Za-z]))(?![\w-])")
# A statement that denies ("is not recognized as Python") is supported only by a sentence that
# denies something too: word overlap and embeddings cannot tell "X is a Y" from "X is not a Y".
_NEGATION = re.compile(r"\b(?:not|no|never|none|nothing|neither|nor|cannot|without)\b|n't\b", re.IGNORECASE)
STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being below between both
but by can could did do does doing done down during each either else few for from further get gets got had has
have having he her here hers him his how i if in into is it its itself just may me might more most must my no nor
not now of off on once only or other our out over own same shall she should so some such than that the their them
then there these they this those through to too under until up upon us use used uses using very via was we were
what when where which while who whom whose why will with would yes you your one ones way ways thing things give
gives tell say says said make makes made need needs want wants like also still well able per within without
does let lets know kind sort type
""".split())


def flatten_text(text: str) -> str:
    """``text`` with words broken over lines joined and all white space single spaces: the form
    in which ``split_sentences`` gives its sentences."""
    return " ".join(unhyphenated(text).split())


def unhyphenated(text: str) -> str:
    """``text`` with words broken over lines joined, and box-drawing art as spaces."""
    return HYPHEN_BREAK.sub("", text.translate(_BOX_ART))


def split_sentences(text: str) -> list[str]:
    """The sentences and list items of ``text``, flattened (see ``flatten_text``), at least 3 characters."""
    units = []
    for block in _BLOCK.split(unhyphenated(text)):
        heading = _CAPS_HEADING.match(block)
        if heading:
            units.append(" ".join(heading.group().split()))
            block = block[heading.end():]
        for part in _NEW_UNIT.split(block):
            flat = " ".join(part.split())
            records = _records(part) if len(flat) > LONG_UNIT else None
            units += records if records else SENTENCE_END.split(flat)
    return [unit.strip() for unit in units if len(unit.strip()) > 2]


def without_section_number(text: str, heading: bool = False) -> str:
    """``text`` without the section number a heading starts with ("### 6.2 Dissolved oxygen", a title
    line "6.2 Dissolved oxygen"): no value of what the section says, though the check read it as one
    ("The dissolved oxygen limit for cans is 6.2.", t84). A release's heading ("## 2.3.0 (2024-05-01)")
    and a year ("## 2024 budget") are kept: only numbers of up to two digits a part, before a word."""
    match = _SECTION_NUMBER.match(text)
    title = len(text.split()) <= 8 and not text.rstrip().endswith((".", "!", "?"))  # "6.2 Dissolved oxygen"
    if match and (heading or text.lstrip().startswith("#") or (title and re.search(r"\d\.\d", match["number"]))):
        return text[match.end():]
    return text


_SECTION_NUMBER = re.compile(r"\s*(?:#{1,6}\s*)?(?:\u00a7\s*)?(?P<number>\d{1,2}(?:\.\d{1,2})*\.?)"
                             r"\s+(?=[^\W\d_])")


def delimiter_counts(line: str) -> tuple[int, ...]:
    """How many commas, semicolons and tabs ``line`` holds, the shape a CSV's rows share; (0,) for a
    line that ends as a sentence does ("Tea, coffee, and cake." is prose)."""
    line = line.rstrip()
    return (0,) if line.endswith((".", "!", "?")) else tuple(line.count(mark) for mark in ",;\t")


def _records(part: str) -> list[str] | None:
    """The lines of ``part`` when they are records (a log's lines, a CSV's rows: most start with a
    digit, or hold as many delimiters as the first), else None. Read as one "sentence", a log's chunk
    showed its first lines in search and under a "not found", never the line that matched (t64)."""
    raw = [line for line in part.split("\n") if line.strip()]
    if len(raw) < 3:
        return None
    shape = [sum(line.count(mark) for mark in ",;\t|") for line in raw]  # before tabs become spaces
    lines = [" ".join(line.split()) for line in raw]
    alike = sum(count == shape[0] for count in shape) if shape[0] else 0
    numbered = sum(line[:1].isdigit() for line in lines)
    return lines if max(alike, numbered) >= 0.8 * len(lines) else None


def in_columns(line: str) -> bool:
    """Whether a line as written (its spaces not yet collapsed) sets cells apart by spaces or a tab, as
    a timetable does ("Sunday        12:00 - 22:00"), and is no line of code."""
    return bool(_COLUMNS.search(line)) and not _CODE_LINE.match(line)


# a field of a record: "Lead time: 7 working days", "Minimum order: none" (a name of up to 4 words)
FIELD = re.compile(r"[A-Z][\w()/'&.-]*(?: [\w()/'&.-]+){0,3}:\s+\S")
# cells set apart by spaces: "Sunday        12:00 - 22:00" (not two spaces after a sentence's end)
_COLUMNS = re.compile(r"[^\s.!?:;,](?: {2,}|\t)\S")
# a line of code or a shell session, whose spaces before a comment are no columns (">>> help(Cache)  # doctest")
_CODE_LINE = re.compile(r"\s*(?:>>>|\.\.\.|\$\s|#|//)|.*[=(){};<>\[\]`]")


def unbulleted(text: str) -> str:
    """A single list item's text without its bullet ("- The bakery closes ..." quoted with its dash,
    t77); a numbered step keeps its number, and several lines (a lead-in and its items) stay as they are."""
    return text if "\n" in text.strip() else _BULLET.sub("", text, count=1)


_BULLET = re.compile(r"^\s*[-*\u2022]\s+(?=\S)")


def without_emphasis(text: str) -> str:
    """``text`` without Markdown's bold marks ("**Packaging Lead** — Sinead Kerrigan." was quoted with
    its asterisks, t84); a lone asterisk ("5 * 3", a bullet) stays, and so do underscores ("__init__")."""
    return _BOLD.sub(r"\1", text)


_BOLD = re.compile(r"\*\*(?=\S)([^\n]+?)(?<=\S)\*\*")


def strip_citations(text: str) -> str:
    """``text`` without its [1], [2, 3] markers."""
    return _CITATION.sub("", text)


def stem(word: str) -> str:
    """A light stem, so "caches"/"cached"/"caching" meet "cache", and "employees" "employee" (t83)."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    while len(word) > 4 and word.endswith("e"):  # "employee" and "employe(es)" both "employ"
        word = word[:-1]
    return word


def content_words(text: str) -> set[str]:
    """Stemmed lower-case words of ``text`` that are not stop words; in scripts written without
    spaces (CJK), each pair of neighbouring characters, as full-text search engines index them."""
    words = {stem(w) for w in (m.group().lower().strip("._-") for m in _WORD.finditer(text))
             if w and w not in STOPWORDS and (len(w) > 1 or w.isdigit())}
    return words | {run[i:i + 2] for run in CJK_RUN.findall(text) for i in range(max(len(run) - 1, 1))}


# Numbers written as words are facts as digits are: "Ask IT for VPN access on day two" passed on "...
# on day one" (four of its five words are there). Not "one", a pronoun as often as a number.
NUMBER_WORDS = frozenset("two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                         "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety "
                         "hundred thousand million billion dozen twice".split())


def key_facts(text: str) -> set[str]:
    """Numbers and names in ``text`` (lower case): what an invented answer gets wrong first.

    A name is a word with a capital after its first letter or with a digit, dot or underscore
    inside (FanoutCache, snapshot_download, utf-8), a command-line option (`--xz`, `-J`), or a
    capitalized word that does not start its sentence. What a sentence puts in backticks is a name
    too, words or not (`~`, `YY`, `dehumanize`): a model that answers with an operator or a format
    token states a fact. Dashes around a span go (`--branch` is the option a manual may call "branch").
    """
    # `tqdm.write()` names the function a source calls as tqdm.write("Done"): empty parentheses go
    facts = set(NUMBER.findall(text)) | {span.strip(" -").removesuffix("()").lower()
                                          for span in _CODE_SPAN.findall(text) if span.strip(" -").removesuffix("()")}
    facts |= set(_QUOTED_SYMBOL.findall(text))
    facts |= {"".join(option).lower() for option in _OPTION.findall(text)}  # "--xz", "-J" ("-cover" is a value)
    for sentence in split_sentences(text):
        for index, match in enumerate(_WORD.finditer(sentence)):
            word = match.group().strip("._-")
            inner = word[1:]
            if not any(c.isalpha() for c in word):  # a number (NUMBER's): "127.0.0.1" of "127.0.0.1:8000"
                continue  # was a fact of its own, held by no source that writes the address with its port
            if word.lower() in NUMBER_WORDS:
                facts.add(word.lower())
                continue
            if (any(c.isupper() for c in inner) or "_" in inner or "." in inner
                    or (any(c.isdigit() for c in word) and any(c.isalpha() for c in word))
                    or (index > 0 and word[:1].isupper() and word.lower() not in STOPWORDS)):
                facts.add(word.lower())
    return facts


def denies(text: str) -> bool:
    """Whether ``text`` says "not", "no", "never" or the like (curly apostrophes as straight)."""
    return _NEGATION.search(text.replace("\u2019", "'")) is not None


def contains_fact(text: str, fact: str) -> bool:
    """Whether ``text`` holds ``fact`` as a word of its own; a number as a whole number ("10" is
    not in "18:10" or "2.10": "10%" passed on a time)."""
    # nor a manual's section, as NUMBER reads them ("1" is not in "tar(1)")
    whole = rf"(?<!\d[.,:])(?!(?<=\w\(){re.escape(fact)}\))", r"(?![.,:]\d)"
    head, tail = whole if fact[:1].isdigit() else ("", "")
    return re.search(rf"(?<![{_LETTERS}]){head}{re.escape(fact)}(?![{_LETTERS}]){tail}", text) is not None


def numbered_things(text: str) -> set[tuple[str, str]]:
    """The numbered things ``text`` names, as (name in lower case, number): see THING."""
    return {(name.lower(), number) for name, number in THING.findall(text) if name.lower() not in STOPWORDS}


WEEK = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_NAMES = "|".join(WEEK)
_DAY = re.compile(rf"\b({_DAY_NAMES})s?\b", re.IGNORECASE)
_SHORT = "mon|tues?|wed|thur?s?|fri|sat|sun"  # only in a span: "sat" and "sun" alone are words
# a span of days, "Monday to Friday", "Mon-Fri", "Tuesdays through Thursdays"
_SPAN = re.compile(rf"\b({_DAY_NAMES}|{_SHORT})s?\.?\s*(?:to|through|till|until|-|\u2013)\s*"
                   rf"({_DAY_NAMES}|{_SHORT})s?\b", re.IGNORECASE)
_GROUPS = ((re.compile(r"\b(?:week|working|work|business)[ -]?days?\b", re.IGNORECASE), WEEK[:5]),
           (re.compile(r"\bweek-?ends?\b", re.IGNORECASE), WEEK[5:]),
           (re.compile(r"\b(?:daily|every day|each day|all week|seven days)\b", re.IGNORECASE), WEEK))


def _day(name: str) -> int:
    return next(i for i, day in enumerate(WEEK) if day.startswith(name.lower()[:2]))


def days_named(text: str) -> set[str]:
    """The weekdays ``text`` names, in lower case, with spans read as their days: "weekdays" is Monday
    to Friday, "weekends" Saturday and Sunday, "Mon-Wed" three days, "daily" all seven. "On weekdays"
    was read as any day, and its sentence was the quote for Sunday's ferry (t80)."""
    days = {day.lower() for day in _DAY.findall(text)}
    for first, last in _SPAN.findall(text):
        start, end = _day(first), _day(last)
        days.update(WEEK[(start + n) % 7] for n in range((end - start) % 7 + 1))
    for group, named in _GROUPS:
        if group.search(text):
            days.update(named)
    return days


MONTHS = ("january|february|march|april|june|july|august|september|october|november|december"
           "|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec")
# "12 April", "12th of April", "April 12" (not "may 3": the verb as often as the month; "12 May" is one)
_DATE = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({MONTHS}|may)\b"
                   rf"|\b({MONTHS})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?![:.]\d)", re.IGNORECASE)


def without_dates(text: str) -> str:
    """``text`` with its days of the year (and a year after one) taken out: "started on 16 March 2026"
    holds no count of anything, yet answered "How many customers signed up?" (t79); nor does an ISO
    date, a CSV row's "2023-12-01" for "How many days is Ivan Petrov off?" (t83)."""
    text = re.sub(r"(?<![\d-])\d{4}-\d{2}-\d{2}(?![\d-])", " ", text)
    return re.sub(rf"(?:{_DATE.pattern})(?:,?\s+\d{{4}})?", " ", text, flags=re.IGNORECASE)


def dates_named(text: str) -> set[tuple[int, str]]:
    """The days of the year ``text`` names, as (day, month's first three letters): "12 April 2026"
    and "April 12" are (12, "apr"). A date is one fact, not a day and a year that stand anywhere:
    "12 April 2026" passed on "£12" and "2026" in another sentence (t79)."""
    return {(int(m[1] or m[4]), (m[2] or m[3])[:3].lower()) for m in _DATE.finditer(text)}
