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
from collections.abc import Sequence
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
    file's name (always False with fewer than two files)."""
    about = {s.file: _name_words(s.file) for s in sentences}
    words = {file: set(subject) for file, subject in about.items()}
    for s in sentences:
        # and the parts of its joined words: "Wifi-Guest" writes "wifi"
        words[s.file] |= content_words(s.text) | content_words(_NAME_SEPARATORS.sub(" ", s.text))
    elsewhere = {file: any((question_words - words[file]) & subject
                           for other, subject in about.items() if other != file) for file in words}
    return [elsewhere[s.file] for s in sentences]
