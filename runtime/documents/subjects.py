"""Whose fact is it: a statement about one document's subject, supported by another document's sentence.

"When does the lighthouse close?" was answered "The lighthouse closes at 18:30 on weekdays", supported
by bakery.txt's "The bakery closes at 18:30 on weekdays": the check reads what a statement *adds* to
the question (the hours), and the question's own words ("lighthouse") need not stand in the supporting
sentence, since a document often calls its subject "it". So another subject's facts passed as supported.

The rule here is narrow on purpose: a word of the question that a sentence's whole document (all its
passages given to the model, and its file's name) never writes, while another given document's file
name holds it, says the question is about that other document, so the sentence can neither support an
answer nor be quoted as one. A paraphrased question's words are usually in no document, so they do not
trigger it. (Tried first: only the words a statement shares with the question; on the development
drafts it changed nothing, while the question's words turned one wrong answer, MPL's "Larger Work"
answered with GPL's "aggregate", into the right quote. Headings as subjects too changed no draft's
verdict, and a heading's words are often generic, "Options", "Usage": file names only.)
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import PurePath
from typing import Protocol

from pgpt.runtime.documents.sentences import content_words

_NAME_SEPARATORS = re.compile(r"[\W_]+")
# Words by which a file's name gives its kind, not its subject: "pygments-changes.txt" is about
# Pygments, and its "changes" turned "How do I stop black from changing my quotes?" away from black's
# own manual (a right answer lost on the held-out drafts; see the README).
DOCUMENT_KINDS = content_words(
    "readme changes changelog history news release releases notes license licence copying authors contributing "
    "install installation guide manual handbook faq doc docs documentation tutorial intro introduction overview "
    "basics reference api usage config configuration index example examples spec specification todo draft final "
    "copy new old v1 v2 v3")


class _Sentence(Protocol):
    file: str
    text: str


def _name_words(file: str) -> set[str]:
    """The content words of a file's name but for the words of its kind ("employee-handbook_2024.pdf":
    employee, 2024)."""
    return content_words(_NAME_SEPARATORS.sub(" ", PurePath(file).stem)) - DOCUMENT_KINDS


def about_elsewhere(sentences: Sequence[_Sentence], question_words: set[str]) -> list[bool]:
    """For each sentence: whether a word of the question that its file never writes stands in another
    file's name, unless a word of the question that the other file never writes stands in its own
    (always False with fewer than two files)."""
    about = {s.file: _name_words(s.file) for s in sentences}
    words = {file: set(subject) for file, subject in about.items()}
    for s in sentences:
        # and the parts of its joined words: "Wifi-Guest" writes "wifi"
        words[s.file] |= content_words(s.text) | content_words(_NAME_SEPARATORS.sub(" ", s.text))
    names = {file: {other for other, subject in about.items() if other != file and (question_words - words[file]) & subject}
             for file in words}
    # not where each names the other: the question is about both ("I sit in room B30. How long is the
    # onboarding?" beside rooms.md and onboarding.md), and either may answer it (t76)
    elsewhere = {file: any(file not in names[other] for other in names[file]) for file in words}
    return [elsewhere[s.file] for s in sentences]


# A dotted version ("1.6.0", "v2.1", "3.8"), and one of three parts or more, which names a release
# wherever it stands ("3.8" may be Python's, "2.33.0" is a release of something).
_VERSION = re.compile(r"(?<![\w.])v?(\d+(?:\.\d+)+)(?![\w.]*\d)")
_RELEASE = re.compile(r"(?<![\w.])v?(\d+\.\d+\.\d+(?:\.\d+)*)(?![\w.]*\d)")
# A product's name and its version: "Beacon 2.0", "Python 3.12", "Lighthouse v1.4"
_NAMED_VERSION = re.compile(r"\b([A-Z][A-Za-z]+)\s+v?(\d+(?:\.\d+)+)(?![\w.]*\d)")
_FLOOR = re.compile(r"\d\+|\b(?:or|and)\s+(?:later|newer|higher|above|up)\b|\bat\s+least\b|\bminimum\b", re.IGNORECASE)


class _Titled(_Sentence, Protocol):
    number: int
    heading: bool
    trail: str


def about_other_version(sentences: Sequence[_Titled], question: str) -> list[bool]:
    """For each sentence: whether it belongs to another release than the one the question names.

    A changelog's sentences rarely repeat their version: "Python 3.6 is no longer supported." stood
    under "pluggy 1.1.0" and was quoted for "... as of pluggy 1.6.0?", while source [1] was 1.6.0's
    section; "2.7.0 (2015-05-03)" answered when requests 2.0.0 was released (t68). Two rules: a
    sentence under headings of other versions only, when another source's headings hold the asked one
    (so a question that names Python 3.8 keeps pluggy 1.6.0's section, which no heading of 3.8 rivals);
    a sentence that itself names only other releases of three parts than the question's; and one
    beside other versions only of the product the question names with its version (_other_named_version).
    """
    asked, releases = set(_VERSION.findall(question)), set(_RELEASE.findall(question))
    if not asked:
        return [False] * len(sentences)
    named_other = _other_named_version(sentences, question)
    sections = [set(_VERSION.findall(s.trail)) | (set(_VERSION.findall(s.text)) if s.heading else set())
                for s in sentences]
    asked_section = any(_matches(section, asked) for section in sections)
    out = []
    for s, section in zip(sentences, sections):
        named = set(_RELEASE.findall(s.text))
        other_section = asked_section and bool(section) and not _matches(section, asked) and not _matches(named, asked)
        other_release = bool(releases) and bool(named) and not _matches(named, releases)
        out.append(other_section or other_release or next(named_other))
    return out


def _other_named_version(sentences: Sequence[_Titled], question: str) -> Iterator[bool]:
    """For each sentence: whether it, or a sentence beside it in its passage, names the product the
    question names with another version only, and the sentence does not name the asked one: "Release
    planning for Beacon 2.0 ... the Beacon 2.0 beta slipped" was quoted for "When will Beacon 3.0 be
    released?" (t81), and the line after it, of 2.0's dates too, names no version. Not where a version
    is a floor ("Python 3.8 or later" answers for 3.12)."""
    asked = {(name.lower(), version) for name, version in _NAMED_VERSION.findall(question)}
    names = {name for name, _ in asked}
    for index, s in enumerate(sentences):
        near = [o.text for o in sentences[max(index - 1, 0):index + 2] if o.number == s.number]
        seen = {(n.lower(), v) for text in near for n, v in _NAMED_VERSION.findall(text) if n.lower() in names}
        yield (bool(seen) and not any(_matches({v}, {a}) for n, v in seen for m, a in asked if n == m)
               and not any(_FLOOR.search(text) for text in near))


def _matches(versions: set[str], asked: set[str]) -> bool:
    """Whether one of ``versions`` is one of ``asked``, or a release of it ("2.1.0" of "2.1")."""
    return any(v == a or v.startswith(a + ".") or a.startswith(v + ".") for v in versions for a in asked)
