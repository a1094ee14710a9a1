"""is_abstention: the one test of "this answer declines" shared by the benchmark and the answers."""

from __future__ import annotations

import pytest

from pgpt.runtime.documents.abstention import is_abstention
from pgpt.runtime.documents.answers import NOT_FOUND


@pytest.mark.parametrize("answer", [
    NOT_FOUND, "", "   ", "The sources do not say which port blackd uses.", "I couldn't find that [1].",
    "The provided documents don't mention a fine.", "The default timeout is not specified in the sources.",
    "There is no information about a quarter token.", "I don't know.", "The source does not tell.",
    "Unable to determine this from the sources.",
    # the 1.5B model's hedge: its side remarks were shown as the answer
    "The maximum length is not explicitly stated in the given sources.", "The sources do not explicitly mention it.",
])
def test_declining_answers(answer: str) -> None:
    assert is_abstention(answer)


@pytest.mark.parametrize("answer", [
    "The Corresponding Source does not include the System Libraries [1].",  # a fact, not a refusal
    "The default is 88 [2].",
    "Black uses 88 characters. The sources do not mention a maximum.",  # answers first, then adds
    "No such option: -d is reported [1].",
    "If a value is not provided, None is used.",
])
def test_answers_that_state_something(answer: str) -> None:
    assert not is_abstention(answer)
