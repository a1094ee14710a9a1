"""Room in one sequence for a documents answer's prompt: the instructions, the question twice (before
and after the passages), the passages and the answer. A question too large for it is refused before
it is embedded and searched, and the passages are the best ones that fit."""

from __future__ import annotations

from typing import Any

from pgpt.runtime.errors import ContextLengthError

PASSAGE_ROOM = 320  # tokens: one chunk (about 256) and its <source> markup; a question leaves room for it
TEMPLATE_ROOM = 256  # tokens of the chat template's markup and the question's framing


def refuse_oversized_question(engine: Any, question: str, max_new_tokens: int) -> None:
    """Raise ContextLengthError for a question that leaves no room for a passage and the answer in
    ``engine``'s sequence (``engine.context``): a 4 MB `ask -` took 39 s and 2 GB to end in "not found";
    and for a sequence too small for any documents answer (a server's --context 512: "shorten the
    prompt" misled, t80)."""
    model, context = engine.model, engine.context
    # the question twice, the template, the answer and one passage at least: a question under the old
    # limit (the context less the answer) overflowed the model with 9,068 tokens
    room = (context - max_new_tokens - TEMPLATE_ROOM - PASSAGE_ROOM) // 2
    if room < 16:
        needed = context - 2 * room + 32
        raise ContextLengthError(
            f"A documents answer needs the instructions, the question twice, a passage and the answer in one "
            f"sequence, at least {needed} tokens, but {model.holds(context)}.",
            hint=f"Start the server with --context {needed} or more (1024 holds about one passage, 2048 several), or ask "
                 "without the documents.")
    if len(question) * 4 <= room:  # a byte-level token holds at least a quarter of a character
        return
    if len(question) > 8 * context:  # tokenizing megabytes takes seconds too
        size = f"{len(question):,} characters"
    else:
        tokens = len(model.tokenize(question))
        if tokens <= room:
            return
        size = f"{tokens:,} tokens"
    raise ContextLengthError(
        f"The question has {size}, but {model.holds(context)}, which must take the question twice "
        f"(before and after the passages), the passages and the answer: a documents question may have up to "
        f"{room:,} tokens.",
        hint="Shorten the question; to ask about a long text, save it as a file and ingest it.")


def fit_passages(engine: Any, hits: list[Any], question: str, max_new_tokens: int, instructions: str,
                 turn_tokens: int) -> list[Any]:
    """The passages of ``hits``, best first, that fit ``engine``'s sequence beside the ``instructions``,
    the question twice, the earlier turns' ``turn_tokens`` and the answer."""
    model = engine.model
    budget = engine.context - max_new_tokens - TEMPLATE_ROOM
    spent = len(model.tokenize(instructions)) + 2 * len(model.tokenize(question)) + turn_tokens
    used = []
    for hit in hits:
        cost = len(model.tokenize(hit.text)) + 24  # its <source ...> markup
        if spent + cost > budget:
            break
        used.append(hit)
        spent += cost
    return used
