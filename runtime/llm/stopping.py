"""Where an answer ends besides end-of-text and the token limit: stop strings and loops."""

from __future__ import annotations

import re


class StopFilter:
    """Holds back text that may be the start of a stop string; cuts the answer at one."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._pending = ""

    def feed(self, piece: str) -> tuple[str, bool]:
        """Return the text safe to show and whether a stop string was reached."""
        if not self._stops:
            return piece, False
        self._pending += piece
        for stop in self._stops:
            index = self._pending.find(stop)
            if index >= 0:
                out, self._pending = self._pending[:index], ""
                return out, True
        keep = max((len(s) - 1 for s in self._stops), default=0)
        keep = next((n for n in range(min(keep, len(self._pending)), 0, -1)
                     if any(s.startswith(self._pending[-n:]) for s in self._stops)), 0)
        out = self._pending[: len(self._pending) - keep]
        self._pending = self._pending[len(out):]
        return out, False

    def flush(self) -> str:
        """Text still held back when generation ended without a stop string."""
        out, self._pending = self._pending, ""
        return out


class LoopGuard:
    """Ends an answer that has fallen into a loop: the same sentences three times in a row
    (twice for a block of ``LONG_BLOCK_CHARS`` or more), or the same run of words three times
    in a row when it has no sentence end at all.

    Why: small models often repeat one sentence or paragraph until the token limit ("The -d
    option is used to create a new file. ..." over and over), which costs seconds of decoding
    and adds nothing; some loop inside one endless sentence ('... known as the "Ciphertext of
    the 1944 ..." or more specifically, the "..."' nine times). Only a run of copies one after
    another counts, so a list whose items share a sentence, or a song's chorus between verses,
    goes on; the repeated block must be at least ``MIN_CHARS`` long (``MIN_RUN_CHARS`` and a few
    words for a run without a sentence end; a shorter block counts from ``SHORT_COPIES`` copies:
    a 1.5B model once wrote "*" on 512 lines), and code blocks are left alone (code repeats lines
    on purpose).
    """

    MIN_CHARS = 24
    COPIES = 3
    SHORT_COPIES = 16  # a shorter block ("*", "---", "ok") repeated this often in a row is a loop too
    LONG_BLOCK_CHARS = 80  # a block this long repeated at once is a loop already
    LONGEST_BLOCK = 8  # sentences or lines
    MIN_RUN_CHARS = 40  # a repeated run of words without a sentence end: at least this long,
    LONGEST_RUN_CHARS = 600  # at most this long,
    MIN_RUN_WORDS = 5  # with this many different words (not a rule of "=====" or "ha ha ha")
    _UNIT_END = re.compile(r"[.!?](?=\s)|\n")
    _LIST_NUMBER = re.compile(r"\d{1,4}[.)]")  # a numbered list's marker, which the sentence end splits off
    # a short piece without spaces, with a letter or digit (of any script) or an emoji in it,
    # SHORT_COPIES times in a row at the end: "Leba_Leba_Leba_...", "#BeerBeer..." and "👏👏👏..." ran
    # to the token limit (one endless "word", which the checks of words above never see); "ha ha ha",
    # "=====" and a rule of box-drawing lines go on
    _SHORT_RUN = re.compile(r"((?=\S*?(?:[^\W_]|[\u2600-\u27bf\U0001f000-\U0001faff]))\S{1,20}?)\1{%d,}$"
                            % (SHORT_COPIES - 1))
    SHORT_TAIL_CHARS = 20 * SHORT_COPIES

    def __init__(self, enabled: bool = True) -> None:
        self._enabled = enabled
        self._pending = ""
        self._in_code = False
        self._units: list[str] = []
        self._recent = ""  # the last units, whitespace collapsed, for runs across unit ends
        self._blank_lines = 0  # empty lines in a row

    def feed(self, piece: str) -> bool:
        """Take the next shown text; True when it ends in copies of one block (see the class)."""
        if not self._enabled:
            return False
        self._pending += piece
        while (end := self._UNIT_END.search(self._pending)) is not None:
            unit = " ".join(self._pending[:end.end()].split())
            self._pending = self._pending[end.end():]
            # a run of empty lines is a loop too: an answer of nothing but newlines ran to the token limit,
            # 512 blank lines in the app (a random or mis-templated model, t51)
            self._blank_lines = self._blank_lines + 1 if not unit and not self._in_code else 0
            if self._blank_lines >= self.SHORT_COPIES:
                return True
            if unit.startswith("```"):
                self._in_code, self._units, self._recent = not self._in_code, [], ""
            elif self._LIST_NUMBER.fullmatch(unit):
                continue  # "28." is a unit of its own: "28. Apple" ... "103. Apple" differed only by it (t54)
            elif unit and not self._in_code:
                self._units.append(unit)
                self._recent = f"{self._recent} {unit}"[-self.COPIES * self.LONGEST_RUN_CHARS:]
                if self._looping():
                    return True
        if self._in_code:
            return False
        return self._run_repeats(f"{self._recent} {' '.join(self._pending.split())}") or bool(
            self._SHORT_RUN.search(self._pending[-self.SHORT_TAIL_CHARS:]))

    def _run_repeats(self, text: str) -> bool:
        """Whether ``text`` ends in COPIES copies of one run of words (see the class)."""
        probe = text[-self.MIN_RUN_CHARS:]
        if len(text) < self.COPIES * self.MIN_RUN_CHARS:
            return False
        # Each earlier place where the last MIN_RUN_CHARS characters occur gives a candidate period.
        stop = len(text) - self.MIN_RUN_CHARS
        while (found := text.rfind(probe, max(0, stop - self.LONGEST_RUN_CHARS), stop)) >= 0:
            period = len(text) - self.MIN_RUN_CHARS - found
            block = text[-period:]
            # A block with a sentence end in it is the sentence check's (it ends at a sentence end).
            if period >= self.MIN_RUN_CHARS and len(text) >= self.COPIES * period and \
                    not self._UNIT_END.search(block) and len(set(block.split())) >= self.MIN_RUN_WORDS and all(
                        text[len(text) - period * (copy + 1):len(text) - period * copy] == block
                        for copy in range(1, self.COPIES)):
                return True
            stop = found + self.MIN_RUN_CHARS - 1
        return False

    def _looping(self) -> bool:
        units = self._units
        for size in range(1, min(self.LONGEST_BLOCK, len(units) // 2) + 1):
            block = units[-size:]
            chars = sum(map(len, block))
            copies = (2 if chars >= self.LONG_BLOCK_CHARS else self.COPIES if chars >= self.MIN_CHARS
                      else self.SHORT_COPIES)
            if len(units) >= size * copies and all(
                    units[-size * (copy + 1):len(units) - size * copy] == block for copy in range(1, copies)):
                return True
        return False
