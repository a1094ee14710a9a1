"""Grounded answers: each statement of a drafted answer checked against the sources' sentences.

A statement that carries a fact (a content word the question does not already hold, a number or
a name) is supported when one sentence of the sources covers it: enough of its content words,
close in embedding space, every number and name of the statement found in the sources, and a
statement that denies ("is not") backed by a sentence that denies. A statement the draft repeats
counts once. What comes out is one of three kinds:

- ``answer``: the supported statements, each cited with the source of its supporting sentence,
  and those sentences as quotes;
- ``quote``: nothing of the draft held, but one sentence answers the question well enough: that
  sentence, quoted and cited (a small model often cannot phrase what it read);
- ``not_found``: nothing in the sources answers the question; the closest passages are listed
  so the user can judge.

Why not trust the prompt alone: with the default 135M model, "say that you could not find it"
almost never fires when related text exists, and numbers and names no source contains are
common. The thresholds below were chosen on bench-docs' development questions only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import Any

import numpy as np

from pgpt.runtime.documents.attachment import (
    anothers_value, misattached_number, numbers_in_sentence, recased_code, wrong_end,
)
from pgpt.runtime.documents.sentences import (
    LIST_ITEM, NUMBER, contains_fact, content_words, dates_named, days_named, denies, key_facts, numbered_things,
    split_sentences, strip_citations, unbulleted, without_dates, without_emphasis, without_section_number,
)
from pgpt.runtime.documents.statements import (
    POINTER, mended, reuses_a_definition, without_attribution, without_bare_lead_ins,
    without_restatements,
)
from pgpt.runtime.documents.list_runs import another_record, in_a_list, lead_in, table_header
from pgpt.runtime.documents.question_kinds import (
    another_code, another_time, asked_attribute, asked_codes, asks_a_count, asks_what_is_not, answers_the_kind,
    other_thing, the_other_extreme, unknown_codes, unknown_names, wants_a_number,
)
from pgpt.runtime.documents.quote_choice import CERTAIN_QUOTE, QUOTE_MIN, QuoteChoice, covered
from pgpt.runtime.documents.subjects import about_elsewhere, about_other_version
from pgpt.runtime.sanitize import without_invisible

# A statement's support: SUPPORT_LEXICAL * (share of its content words in the sentence) +
# (1 - SUPPORT_LEXICAL) * (embedding cosine); supported at SUPPORT_MIN or more.
SUPPORT_LEXICAL = 0.5
SUPPORT_MIN = 0.6
# How well a sentence answers the question, the same mix over the question's content words. An
# answer needs RELEVANCE_MIN when a name or number it adds stands in its supporting sentence itself
# (a terse reference line such as "``MMM``: month name" shares few words with a question, yet pins
# the answer), RELEVANCE_MIN_WORDS when only its words are supported: a fluent sentence that
# borrows the sources' words was the small models' most common wrong answer. Chosen on the
# development drafts of both models (bench/grounding_drafts.py), then checked on held-out ones.
RELEVANCE_MIN = 0.4
RELEVANCE_MIN_WORDS = 0.5
# A draft that states a number or name found in no source was invented: the model had nothing to
# go on, which says more about the question (unanswerable) than any score of the sources does.
INVENTED_MEANS_NOT_FOUND = True
# A supported statement whose sentence is this far from the question is dropped from an answer that
# has a closer one: a sentence copied from an unrelated source ("Hidden fact: zebra count 44.") was
# shown, cited, after the answer. The highest value that lost no right development answer.
OFF_TOPIC = 0.35
# ... and one whose sentence is below this share of the closest's relevance: "Within how many days are late
# claims rejected?" was answered with the 90 days, the 30 days to submit and a support guide's 2 days (t81).
# No development or held-out draft has such an answer (0.5-0.8 changed none); 0.7 was set on t81's.
OFF_TOPIC_SHARE = 0.7
# The similar-question cache replays checked answers: its scope holds this, so a release whose check
# answers differently does not serve the old verdicts (a wrong answer it now refuses stayed cached).
# Change it with any change of what the check answers.
# c: no quote of the question's own words; d: records, numbered things; 07b: releases; 07c: ways, "v7.3.20";
# 07d: another weekday; 07e: a question's unknown code, a broken word mended; 07f: a definition reused
CHECK_VERSION = "2026-12-08d"
CLOSEST_PASSAGES = 3
CLOSEST_CHARS = 240  # how much of each a "not found" answer shows, around its sentence closest to the question

# A code fence and its language tag ("```python"): the lines inside are checked as statements like
# any other, but the marker is no statement, and left in it showed as "```python import time [1]".
_FENCE = re.compile(r"```[A-Za-z0-9_+.-]*")
# An HTML tag that no source holds: a model that read an HTML page copied "</pre> <pre><code>" after a
# supported statement, and it was shown in the answer (one that a source holds, "<b>", may be the answer)
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>\n]{0,200})?/?>")
_ANY_WORD = re.compile(r"\w")
_INLINE_HEADING = re.compile(r"(?:(?<=[.!?:])|^)[ \t]*#{1,6}[ \t]+", re.MULTILINE)


@dataclass(frozen=True)
class SourceSentence:
    """One sentence of a source handed to the model: its number [n], file, page and text."""

    number: int
    file: str
    page: int
    text: str
    heading: bool = False  # a title of its passage (RST, HTML, Word headings carry no "#")
    trail: str = ""  # its passage's headings ("pluggy 1.6.0 > Removals"): which release a changelog line is of

    def as_quote(self) -> dict[str, Any]:
        """The JSON of a supporting quote: file, page, sentence and the source's number."""
        return {"file": self.file, "page": self.page, "sentence": without_emphasis(unbulleted(self.text)),
                "source": self.number}


@dataclass
class Grounding:
    """What the check made of a draft: the final text, its kind, quotes and the measures behind it."""

    kind: str  # "answer", "quote" or "not_found"
    text: str
    quotes: list[SourceSentence] = field(default_factory=list)
    measures: dict[str, float] = field(default_factory=dict)


class Grounder(QuoteChoice):
    """Checks drafts against the sentences of the sources one question was answered from.

    ``vectors`` are the unit embeddings of ``sentences`` (computed once, when the sentences
    shown to the model were chosen); ``embed`` embeds the draft's statements.
    """

    def __init__(self, question: str, question_vector: np.ndarray, sentences: Sequence[SourceSentence],
                 vectors: np.ndarray, embed: Callable[[list[str]], np.ndarray]) -> None:
        # read as shown: a zero-width space inside "77\u200b88" left the 7788 the reader sees unsupported (t65)
        sentences = [replace(s, text=without_invisible(s.text)) for s in sentences]
        self.question, self.sentences, self.vectors, self.embed = question, sentences, vectors, embed
        self._question_words = content_words(question)
        self._question_facts = key_facts(question)
        self._asked_things = numbered_things(question)
        self._asked_days = days_named(question)  # "open on Sunday?" (t72), "on weekdays?" (t80)
        self._asked_dates = dates_named(question)
        # "How do I make an option count how many times it is given?" asks for a way, not a number (t68)
        self._wants_number = wants_a_number(question)
        # a table's row is read with its header, which names what its cells are ("office" for "Glasgow", t83)
        self._headers = [table_header(self.sentences, i) for i in range(len(self.sentences))]
        self._words = [content_words(s.text) | (content_words(self.sentences[h].text) if h >= 0 else set())
                       for s, h in zip(self.sentences, self._headers)]
        self._window_words = [self._window(i) for i in range(len(self.sentences))]
        # what a sentence says, as the values are read: a heading's section number ("### 6.2 ...") is none
        self._said = [without_section_number(s.text, s.heading) for s in self.sentences]
        self._window_text = [" ".join(self._said[j] for j in self._near(i)).lower() for i in range(len(self.sentences))]
        # the passages and their files' names: the prompt shows each source's file, and a draft that
        # names it ("tar --directory=/var/tmp/tar-man.txt") invents nothing
        self._raw_text = " ".join(s.text for s in self.sentences)
        self._all_text = " ".join([s.text for s in self.sentences] + list({s.file: 0 for s in self.sentences})).lower()
        # a code of the question no source writes ("Q2", "room B30") is a fact a statement must find, not
        # one it may repeat from the question, and no quote of another code answers for it (t73, t75)
        trails = [s.trail for s in self.sentences]
        self._unknown_facts = (unknown_codes(self._question_facts, self._all_text, trails)
                               + unknown_names(self._question_facts, self._all_text, trails))
        self._codes = asked_codes(self._question_facts)  # no sentence of another one answers for them (t78)
        # per sentence, once: whether it and its neighbours name another code or year than the question's,
        # and not its own (B20's chairs for B5's, 2026's budget for 2027's: t77, t78)
        self._other_code = [another_code(self._codes, text) for text in self._window_text]
        self._other_time = [another_time(self._codes, self._asked_dates, text, s.text, f"{PurePath(s.file).name} "
                                         f"{s.trail}") for s, text in zip(self.sentences, self._window_text)]
        self._question_facts -= set(self._unknown_facts)
        # the attribute asked ("the payload of ..."), where a sentence names it: a quote must name it (t73)
        self._attribute = asked_attribute(question, self._words)
        self._denies = [denies(s.text) for s in self.sentences]
        self._other_end = [the_other_extreme(question, s.text) for s in self.sentences]  # the maximum for the minimum
        # the bakery's hours do not answer for the lighthouse: sentences of a file about another subject
        # and a record's fields do not answer for another's ("Clearflow Hygiene" / "Lead time: 2 working days")
        self._elsewhere = [file or record for file, record in zip(
            about_elsewhere(self.sentences, self._question_words),
            another_record(self.sentences, self._headers, self._words, self._question_words))]
        # "... as of pluggy 1.6.0?" is not answered by a line of 1.1.0's section (subjects.py)
        self._other_version = about_other_version(self.sentences, question)
        # "Who is not the harbor master?" is not answered by "The harbor master is Odalric Brenneke."
        self._asks_not = asks_what_is_not(question)
        self._counts = asks_a_count(question)
        self.relevance = self._relevance(question_vector)

    def _relevance(self, question_vector: np.ndarray) -> np.ndarray:
        """How well each sentence answers the question: its cosine and its share of the question's
        content words (with its neighbours: a sentence often names its subject one before)."""
        if not self.sentences:
            return np.zeros(0, dtype=np.float32)
        cosine = self.vectors @ question_vector
        lexical = np.array([covered(self._question_words, words) for words in self._window_words])
        if self._wants_number:  # "how many", "which version": a sentence without a new number cannot answer
            lexical = lexical * np.array([self._new_number(text) for text in self._said])
        return SUPPORT_LEXICAL * lexical + (1 - SUPPORT_LEXICAL) * cosine

    def _new_number(self, text: str) -> bool:
        text = without_dates(text) if self._counts else text  # a date is no count
        return bool(set(NUMBER.findall(text)) - set(NUMBER.findall(self.question)))

    def _near(self, index: int) -> list[int]:
        """The sentence and those beside it in the same source (a sentence often names its
        subject one before), as indices."""
        return [i for i in (index - 1, index, index + 1)
                if 0 <= i < len(self.sentences) and self.sentences[i].number == self.sentences[index].number]

    def _neighbours(self, index: int) -> list[str]:
        """The texts of ``_near``."""
        return [self.sentences[i].text for i in self._near(index)]

    def _window(self, index: int) -> set[str]:
        """The content words of ``_near`` and, for a line of a list or timetable, of its lead-in
        ("Harbourside Taproom:" over "Friday and Saturday 12:00 - 00:30", three lines up, t84)."""
        lead = -1 if self.sentences[index].text.rstrip().endswith((".", "!", "?")) else lead_in(self.sentences, index)
        return set().union(*(self._words[i] for i in self._near(index) + [lead] * (lead >= 0)))

    def best_sentence(self) -> int:
        """The index of the sentence that answers the question best (-1 when there is none)."""
        return int(np.argmax(self.relevance)) if len(self.relevance) else -1

    def check(self, draft: str, abstained: bool) -> Grounding:
        """The grounded answer for ``draft`` (already free of prompt markup); ``abstained``: the
        model itself said the sources do not hold the answer."""
        best = self.best_sentence()
        measures = {"best_relevance": round(float(self.relevance[best]), 4) if best >= 0 else 0.0}
        draft = without_invisible(draft)  # as the sentences are read
        supported = [] if abstained else self._on_topic(self._supported(draft, measures))
        if supported:
            measures["answer_relevance"] = round(max(float(self.relevance[i]) for _, i in supported), 4)
        supported = [(s, i) for s, i in without_bare_lead_ins(supported)  # a name for "who", not a time for "where"
                     if answers_the_kind(self.question, s, self._question_facts)]
        if self._wants_number and not any(self._new_number(statement) for statement, _ in supported):
            supported = []  # "how many ...?" answered without a number the question lacks: no answer
        if supported and measures["answer_relevance"] >= self._relevance_gate(supported):
            # a list stays a list: "are: [1] - Linux [1] - MacOS [1]" on one line read as a sentence
            supported = [(self._without_title(mended(statement, " ".join(self._neighbours(i))), i), i)
                         for statement, i in supported]
            text = "".join(("\n" if LIST_ITEM.match(statement) else " ") * bool(n) + statement
                           + f" [{self.sentences[i].number}]" for n, (statement, i) in enumerate(supported))
            shown = [self._shown(i, statement) for statement, i in supported]
            # a table's row with its header row, as a quote shows it (t83: which number is the rate limit)
            rows = (j for i in shown for j in (self._headers[i], i) if j >= 0)
            quotes = [self.sentences[i] for i in dict.fromkeys(rows)]
            return Grounding("answer", text, quotes, measures)
        best = self._best_quote()  # the quote's own relevance: the best sentence may be no quote (another code)
        invented = (INVENTED_MEANS_NOT_FOUND and measures.get("invented", 0) > 0
                    and (best < 0 or self.relevance[best] < CERTAIN_QUOTE))
        if best >= 0 and not abstained and not invented and self.relevance[best] >= QUOTE_MIN:
            return self._quote(best, measures)
        return Grounding("not_found", "", [], measures)

    def _on_topic(self, supported: list[tuple[str, int]]) -> list[tuple[str, int]]:
        """``supported`` without the statements whose sentence is far from the question (OFF_TOPIC),
        but for the one whose sentence is closest and those whose sentences run on from a kept one in
        its source: a list's items ("- radio tested") share no word with the question, their lead-in
        does, and the answer kept the first item only."""
        supported = [(statement, i) for statement, i in supported if not (
            self._other_thing(self.sentences[i].text) or self._other_thing(statement, said=True)
            or self._other_version[i])]
        closest = max((i for _, i in supported), key=lambda i: self.relevance[i], default=-1)
        floor = max(OFF_TOPIC, OFF_TOPIC_SHARE * self.relevance[closest]) if closest >= 0 else OFF_TOPIC
        kept = {i for _, i in supported if i == closest or self.relevance[i] >= floor}
        grown = True
        while grown:  # a run grows either way, a sentence at a time (one left out between may be its lead-in)
            # only by list items and lead-ins: grown by any sentence, three rotation rules copied from
            # the paragraph before came ahead of the on-call pay that was asked
            near = {i for _, i in supported if i not in kept and in_a_list(self.sentences[i].text)
                    and any(k in kept and self.sentences[k].number == self.sentences[i].number
                            for k in (i - 2, i - 1, i + 1, i + 2))}
            kept |= near
            grown = bool(near)
        return [(statement, i) for statement, i in supported if i in kept]

    def _other_thing(self, text: str, said: bool = False) -> bool:
        """Whether ``text`` names another numbered thing or weekday than the question's (other_thing)."""
        return other_thing(self._asked_things, self._asked_days, text, said)

    def _names_the_attribute(self, i: int, facts: set[str]) -> bool:
        """Whether sentence ``i`` (or the lead-in of its list) names the thing the question asks for,
        where a passage names it, and the sentence itself holds the statement's new ``facts``: "What
        discount do staff get?" was answered with the bakery's founding, the sentence before the
        discount's, supported through its neighbour (t77)."""
        if not self._attribute.words:
            return True
        lead = lead_in(self.sentences, i)
        named = self._words[i] | (self._words[lead] if lead >= 0 else set())
        text = self.sentences[i].text.lower()
        return (self._attribute.named_by(named, {f for f in facts if not NUMBER.fullmatch(f)})
                and all(contains_fact(text, fact) for fact in facts))

    def _names(self, text: str) -> set[str]:
        """The names (not numbers) of ``text`` that the question does not hold."""
        return {fact for fact in key_facts(text) - self._question_facts if not NUMBER.fullmatch(fact)}

    def _relevance_gate(self, supported: list[tuple[str, int]]) -> float:
        """RELEVANCE_MIN when a supported statement's new names and numbers all stand in its
        supporting sentence itself, else RELEVANCE_MIN_WORDS."""
        held = any((facts := key_facts(statement) - self._question_facts)
                   and all(contains_fact(self.sentences[index].text.lower(), fact) for fact in facts)
                   for statement, index in supported)
        return RELEVANCE_MIN if held else RELEVANCE_MIN_WORDS

    def _supported(self, draft: str, measures: dict[str, float]) -> list[tuple[str, int]]:
        """The draft's fact-carrying statements that a sentence supports, each with that sentence."""
        # once each: a small model often repeats a sentence until the token limit, and the
        # answer would repeat it as often, each time with its citation
        draft = _HTML_TAG.sub(lambda tag: tag[0] if tag[0].lower() in self._all_text else " ", draft)
        # a Markdown heading the model copied after a sentence starts a new one ("... approval. ## Production
        # Production deploys ..." was one statement, its "##" shown in the answer, t83)
        draft = _INLINE_HEADING.sub("\n\n", _FENCE.sub("\n\n", draft))
        said = [without_attribution(s) for s in split_sentences(strip_citations(draft))]
        unique = {" ".join(s.lower().split()): s for s in said if s}
        statements = [s for s in unique.values() if self._carries_fact(s)]
        measures["statements"] = len(statements)
        if not statements or not self.sentences:
            return []
        cosine = self.embed(statements) @ self.vectors.T
        supported, scores, invented = [], [], 0
        for row, statement in enumerate(statements):
            # What the statement adds to the question must come from the sentence (or the ones
            # beside it): its new content words count, and each new number or name must be there.
            words = content_words(statement)
            new_facts = key_facts(statement) - self._question_facts
            invented += sum(not contains_fact(self._all_text, fact) for fact in new_facts)
            if words - self._question_words or not new_facts:
                new_words = (words - self._question_words) or words
                lexical = np.array([covered(new_words, window) for window in self._window_words])
            else:  # all it adds is a symbol (`~`): a sentence beside it either holds it or not
                lexical = np.array([float(all(contains_fact(text, fact) for fact in new_facts))
                                    for text in self._window_text])
            score = SUPPORT_LEXICAL * lexical + (1 - SUPPORT_LEXICAL) * cosine[row]
            denial, recased = denies(statement), recased_code(statement, self._raw_text)
            holds = [i for i in np.argsort(-score, kind="stable") if score[i] >= SUPPORT_MIN and not recased
                     and all(contains_fact(self._window_text[i], fact) for fact in new_facts)
                     and numbers_in_sentence({f for f in new_facts if NUMBER.fullmatch(f)}, words,
                                             [(self._words[j], self._said[j].lower()) for j in self._near(i)])
                     and not self._misattached(new_facts, i, statement)
                     and not anothers_value(words, self._question_words, [self._words[j] for j in self._near(i)],
                                            [self.sentences[j].heading for j in self._near(i)])
                     and not any(reuses_a_definition(statement, text) for text in self._neighbours(i))
                     and not self._elsewhere[i] and self._names_the_attribute(i, new_facts)
                     and not self._other_code[i] and not self._other_time[i] and not self._other_end[i]
                     and not wrong_end(self.question, {f for f in new_facts if NUMBER.fullmatch(f)}, self._said[i])
                     and (not denial or self._denies[i])
                     and (denial or not self._asks_not)]
            scores.append(float(score.max()))
            if holds:
                supported.append((statement, int(holds[0])))
        measures["support_max"] = round(max(scores), 4)
        measures["invented"] = invented
        measures["supported"] = len(supported)
        return without_restatements(supported)

    def _misattached(self, facts: set[str], index: int, statement: str) -> bool:
        """Whether a new number of the statement is one the window's sentences tie to other words
        than the question's ("0 if a line is selected, ... 2 if an error occurred"), or give another
        unit or another number the statement's word after it (see attachment)."""
        near = self._neighbours(index)  # and a day of the year the window does not write: "12 April" of "£12 ... 2026"
        return bool(dates_named(statement) - self._asked_dates - dates_named(" ".join(near))) or misattached_number(
            {fact for fact in facts if NUMBER.fullmatch(fact)}, statement, near, self._question_words, self.question,
            NUMBER.findall, content_words)

    def _carries_fact(self, statement: str) -> bool:
        """Whether ``statement`` adds to the question: "The formatter was added in 2.9.0" restates "Which
        formatter was added in 2.9.0?"; "This can be found in the changelog ..." points at a source."""
        if POINTER.match(statement) or statement.lstrip().startswith("#"):  # a heading copied ("# LGPL 2.")
            return False
        if not _ANY_WORD.search(_HTML_TAG.sub(" ", statement)):  # markup alone ("<details>") says nothing
            return False
        return bool(key_facts(statement) - self._question_facts or content_words(statement) - self._question_words)

