"""Which source sentence to show: the quote that stands in for a draft the sources do not support,
the sentence shown under a supported statement, and a heading the model glued to a statement.

The Grounder (grounding.py) holds the question's facts and each sentence's measures; this mixin reads
them. A quote must answer the question itself, not stand near it: no heading, no line of a few
words, no sentence of another subject, code, time, version or end of a range, no table header alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pgpt.runtime.documents.list_runs import a_header_row, with_its_list
from pgpt.runtime.documents.question_kinds import another_code, answers_the_kind
from pgpt.runtime.documents.sentences import contains_fact, key_facts, unbulleted, without_emphasis
from pgpt.runtime.documents.statements import prose_words

if TYPE_CHECKING:
    from pgpt.runtime.documents.grounding import Grounding

QUOTE_MIN = 0.6  # a quote stands in for an unsupported draft only from this relevance up
# ... unless a sentence answers the question this well: no unanswerable development question
# came above 0.69, while a draft cut by the token limit ("... project Zephy") "invents" a name.
CERTAIN_QUOTE = 0.8
QUOTE_OWN_WORDS = 0.25  # of two quotes, the one whose own words cover more of the question's (_best_quote)
QUOTE_MIN_WORDS = 4  # words and numbers of a quoted sentence (links out): "Harbour ferry timetable." is a title


def covered(words: set[str], sentence: set[str]) -> float:
    """The share of ``words`` that ``sentence`` (content words) holds."""
    return len(words & sentence) / len(words) if words else 0.0


class QuoteChoice:
    """The Grounder's choice of the sentences to show (see the module's docstring)."""

    sentences: Any
    relevance: Any
    question: str
    _headers: list[int]  # each sentence's table header row (list_runs.table_header), -1 for none

    def certain_quote(self) -> Grounding | None:
        """A quote, with no draft, of a sentence that answers the question as well as CERTAIN_QUOTE,
        else None. For passages the search found too far from the question as wholes: "Who was the
        keeper in 1920?" is far from a page about a lighthouse (cosine 0.14), yet its sentence "Its
        keeper in 1920 was Edda Lund." answers it (0.85), and the answer was "not found" (t54)."""
        best = self._best_quote()
        if best < 0 or self.relevance[best] < CERTAIN_QUOTE:
            return None
        return self._quote(best, {"best_relevance": round(float(self.relevance[best]), 4)})

    def _quote(self, best: int, measures: dict[str, float]) -> Grounding:
        """Sentence ``best`` as the quote: with its table's header row, or its list."""
        from pgpt.runtime.documents.grounding import Grounding

        header = self._headers[best]  # a row with its table's header: which number is which
        quoted = [self.sentences[i] for i in [header] * (header >= 0) + with_its_list(self.sentences, best)]
        text = "\n".join(s.text for s in quoted) if len(quoted) > 1 else unbulleted(quoted[0].text)
        text = without_emphasis(text)  # "**Packaging Lead**" quoted with its asterisks (t84)
        return Grounding("quote", f"Quote from the documents: \u201c{text}\u201d [{quoted[0].number}]", quoted, measures)

    def _shown(self, index: int, statement: str) -> int:
        """The sentence of ``index``'s window to show as the quote: the window (the sentence and
        its neighbours) supports a statement, but one sentence is shown, and "License: curl" was
        the quote of a copyright holder named in the line before it."""
        facts = key_facts(statement) - self._question_facts

        def held(i: int) -> int:
            return sum(contains_fact(self.sentences[i].text.lower(), fact) for fact in facts)

        best = max((i for i in self._near(index) if i != index and not self._title(i)), key=held, default=index)
        return best if facts and held(best) > held(index) else index

    def _title(self, index: int) -> bool:
        """Whether sentence ``index`` is a heading ("## Production" was shown as a statement's quote, t83)."""
        return self.sentences[index].heading or self.sentences[index].text.lstrip().startswith("#")

    def _without_title(self, statement: str, index: int) -> str:
        """``statement`` without a heading of its passage glued before it ("Production Production deploys
        need approval ...": the model copied "## Production" and a sentence under it as one, t83)."""
        source = self.sentences[index]
        titles = [s.text.lstrip("# ").strip() for i, s in enumerate(self.sentences)
                  if s.number == source.number and self._title(i)] + source.trail.split(" > ")
        for title in filter(None, titles):
            rest = statement[len(title) + 1:]
            if statement.startswith(title + " ") and rest[:1].isupper() and len(rest.split()) >= 3:
                return rest
        return statement

    def _best_quote(self) -> int:
        """The sentence to quote when the draft holds nothing: the most relevant one that is not a
        heading ("# The Harbor Lighthouse" repeats the question's words and answers nothing) and
        has a few words of prose (a link line, "- `Documentation <http://...>`_", answers nothing)."""
        # a question that denies ("Who is not the harbor master?") is not answered by a sentence that
        # affirms: the harbor master's name was quoted as the answer
        # nor an RST directive (".. |license| image:: https://... :alt: License" answered "What license ...?")
        # nor a sentence of the question's own words ("Wifi password office wifi password what is the office
        # wifi password.", stuffed into a file 60 times, was quoted as the answer, t65)
        candidates = [i for i, s in enumerate(self.sentences)
                      if not (self._title(i) or s.text.lstrip().startswith(".. "))
                      and prose_words(s.text) >= QUOTE_MIN_WORDS and (not self._asks_not or self._denies[i])
                      and not self._elsewhere[i] and self._words[i] - self._question_words
                      and not self._other_thing(self.sentences[i].text) and not self._other_version[i]
                      and self._attribute.named_by(self._words[i], self._names(s.text))
                      and not another_code(self._codes, s.text)
                      and not self._other_time[i] and not self._other_end[i] and not a_header_row(self.sentences, i)
                      and answers_the_kind(self.question, s.text, self._question_facts)]
        # relevance reads a sentence with its neighbours, which then tie: of two, the one that itself
        # holds more of the question's words ("Laptops are replaced every four years." was quoted for
        # "Which laptop do new starters receive?" beside "New starters receive a ThinkPad T14", t81)
        return max(candidates, key=lambda i: self.relevance[i] + QUOTE_OWN_WORDS * covered(
            self._question_words, self._words[i]), default=-1)
