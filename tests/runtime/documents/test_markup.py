"""Prompt markup never reaches the user: source tags, template echoes and "Question:/Answer:" labels
are stripped from a draft whole and while it streams, split anywhere."""

from __future__ import annotations

import random

import pytest

from pgpt.runtime.documents.markup import MarkupFilter, strip_markup

LEAKS = [
    ('Question: What is the launch code?\nAnswer: The launch code is 7341 [1].', "The launch code is 7341 [1]."),
    ('<source id="4" file="zephyr.md">The launch code is 7341.</source> [1]', "The launch code is 7341. [1]"),
    ('(source id="2" file="a.md">It is 7341.', "It is 7341."),
    ("The launch code is 7341 [1].\n\nQuestion: And the ferry?\nAnswer: Noon.", "The launch code is 7341 [1]."),
    ("<|im_start|>assistant\nThe launch code is 7341.<|im_end|>", "The launch code is 7341."),
    ("Question: What is the launch code? Answer: 7341 [1]", "7341 [1]"),
    ("**Answer:** 7341\nSources:\n[1] zephyr.md", "7341\n[1] zephyr.md"),
    ("[INST] x [/INST] <s>It is 7341.</s>", "x  It is 7341."),
    ("Use the user flag; a < b holds.", "Use the user flag; a < b holds."),
    ('The answer is: It is 7341 <source id="10" file="', "It is 7341"),  # a tag cut by the token limit
    # a model copied "</script>" from a page into an answer that an HTML client may show
    ("The password is zebra-42. </script> [1] <SCRIPT src=x>", "The password is zebra-42.  [1]"),
    ("Write <b>bold</b> with the b tag.", "Write <b>bold</b> with the b tag."),
    # "Q:"/"A:" labels: a German answer ended in "A: <its first sentence again>"
    ("Die Brücke ist 418 Meter lang. [1]\nA: Die Brücke ist 418 Meter lang. [1]",
     "Die Brücke ist 418 Meter lang. [1]\nDie Brücke ist 418 Meter lang. [1]"),
    ("Q: Wer hat sie entworfen? A: Jördis Straßmann. [1]", "Jördis Straßmann. [1]"),
    ("It opens at 05:30. [1]\nQ: And on Monday?\nA: Closed.", "It opens at 05:30. [1]"),
    ("Plan A: sail north. [1]", "Plan A: sail north. [1]"),
]


@pytest.mark.parametrize(("raw", "clean"), LEAKS)
def test_prompt_markup_is_stripped_whole_and_while_streaming(raw: str, clean: str) -> None:
    assert strip_markup(raw) == clean
    rng = random.Random(raw)
    for _ in range(40):  # any split into stream pieces shows the same text, and never a tag
        markup, shown, position = MarkupFilter(), "", 0
        while position < len(raw):
            size = rng.randint(1, 7)
            piece = markup.feed(raw[position:position + size])
            assert "<source" not in piece and "<|" not in piece and "Question:" not in piece
            shown += piece
            position += size
        shown += markup.flush()
        assert shown.strip() == clean == markup.text
