"""The chat screen's widgets: one conversation turn, the scrolling log, and the status text."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from textual import events
from textual.content import Content
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Input, Static

from pgpt.runtime.sanitize import hang_indent
from pgpt.tui.sanitize import clean_text, strip_controls

if TYPE_CHECKING:
    from pgpt.runtime.llm.chat import ChatResult


class Turn(Static):
    """One message of the conversation; ``text`` is the raw text, shown through clean_text, or
    ``markup`` when given (markup built from text that went through clean_text)."""

    def __init__(self, kind: str, text: str = "", markup: str = "") -> None:
        super().__init__(classes=kind)
        self.kind = kind
        self.text = text
        self.markup = markup
        self.mark = ""
        self.refused = False  # a question refused before the model answered (too long): shown, not saved

    def on_mount(self) -> None:
        self._refresh_text()

    def show(self, text: str, mark: str = "", markup: str = "") -> None:
        """Replace the shown text; ``mark`` is a dim note after it, such as "(stopped)"."""
        self.text, self.mark, self.markup = text, mark, markup
        self._refresh_text()

    def _refresh_text(self) -> None:
        text, more = self.text, ""
        if self.kind == "user" and len(text) > QUESTION_SHOWN:  # a pasted 24 KB question filled screens
            text, more = text[:QUESTION_SHOWN], f" [dim italic](and {len(text) - QUESTION_SHOWN:,} more characters)[/]"
        # "…" is an answer still to come, or stopped before its first word; one that ended empty says only that
        body = self.markup or (clean_text(text) + more if text else "" if self.mark == NO_ANSWER else "[dim]…[/]")
        shown = f"{body} [dim italic]{clean_text(self.mark)}[/]".lstrip() if self.mark else body
        width = self.content_size.width
        if self._hangs() and width > HANGING_MIN_WIDTH and "\n" in shown:
            self.update(hanging(Content.from_markup(shown), width))
        else:
            self.update(shown)

    def _hangs(self) -> bool:
        # passages (closest, sources, search results) are indented under their file's line, and a
        # numbered line ("[1] file: “quote”") goes on under its text
        return self.kind in ("closest", "sources", "quotes") or bool(self.markup)

    def on_resize(self, event: events.Resize) -> None:
        if self._hangs():
            self._refresh_text()  # wrapped again at the new width


HANGING_MIN_WIDTH = 12


def hanging(content: Content, width: int) -> Content:
    """``content`` with each indented or numbered line wrapped to ``width`` under its own indent, as
    ``runtime.sanitize.hanging`` wraps plain text (with the styles kept): a passage's wrapped lines
    went back to column 0 under its indented first line (t54)."""
    lines = []
    for line in content.split("\n"):
        indent = hang_indent(line.plain)  # "[2] file, page 3 (the same text in: ...)" hangs after "[2] "
        if not indent or line.cell_length <= width or indent > width // 2:
            lines.append(line)  # other lines are wrapped by Textual as before
            continue
        parts = line[indent:].wrap(width - indent)
        lines += [line[:indent] + parts[0], *(Content(" " * indent) + part for part in parts[1:])]
    return Content("\n").join(lines)


NO_ANSWER = "(no answer)"  # the mark of an answer the model ended before writing anything
QUESTION_SHOWN = 1200  # characters of a question the conversation shows (all of it is asked and saved)


def failed_mark(title: str, text: str, log_width: int) -> str:
    """The mark of an answer that failed, with its reason cut to one line of a ChatLog ``log_width``
    wide: the reason was only in a toast, and once that went (10 s) the turn said "(failed)" and
    nothing more."""
    width = log_width - 8  # the log's scrollbar, the turn's border and padding, the "… " of an empty answer
    reason = " ".join(f"{title}: {text}".split())
    mark = f"(failed: {reason})"
    return mark if len(mark) <= width else f"(failed: {reason[:max(8, width - 11)].rstrip()}…)"


class PromptInput(Input):
    """The one-line prompt. A paste keeps all its lines, joined by spaces, and loses its control
    characters: Textual's Input kept only the first line of a paste, without a word."""

    _typed = ""  # printable keys not in the value yet: they go in together (see _on_key)

    async def _on_key(self, event: events.Key) -> None:
        """Printable keys are gathered and inserted at once, after the keys already waiting: each
        insert costs the length of the value, so a long paste without bracketed paste (one key event
        a character) froze the app for a minute at 8,000 characters (t72). The prompt's own keys
        (Backspace, Enter, arrows) act here, in turn, after what was typed before them: as bindings
        they acted once they had bubbled up to the app, after the keys behind them were in (a burst
        "ab", Backspace, "c", Enter submitted "ab", in Textual's Input too)."""
        if event.is_printable and event.character:
            event.stop()
            event.prevent_default()
            if not self._typed:
                self.call_later(self.insert_typed)
            self._typed += event.character
            return
        self.insert_typed()
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            if not binding.priority and await self.app.run_action(binding.action, self):
                event.stop()
                event.prevent_default()
                return

    def insert_typed(self) -> None:
        """Put the gathered keys in at the cursor (over a selection, as a key would)."""
        typed, self._typed = self._typed, ""
        if typed:
            self.insert_text_at_cursor(typed) if self.selection.is_empty else self.replace(typed, *self.selection)

    def _on_paste(self, event: events.Paste) -> None:
        self.insert_typed()
        # split first: terminals send a paste's line ends as CR, a control character, and stripped
        # first the lines were glued ("Skarhamn?Third", t54)
        lines = [" ".join(strip_controls(line).split()) for line in event.text.splitlines()]
        text = " ".join(line for line in lines if line)
        if text and self.selection.is_empty:
            self.insert_text_at_cursor(text)
        elif text:
            self.replace(text, *self.selection)
        event.stop()
        event.prevent_default()  # not Input's own handler as well


class ChatLog(VerticalScroll):
    """The conversation, oldest first; it follows new text until the user scrolls up."""

    def on_mount(self) -> None:
        self.anchor()

    def on_key(self, event: events.Key) -> None:
        """Typing with the conversation focused (a mouse click or a selection gives it the focus) goes
        to the prompt: the words went nowhere until Tab (t54)."""
        if event.is_printable and event.character:
            prompt = self.screen.query_one("#prompt", Input)
            selects, prompt.select_on_focus = prompt.select_on_focus, False  # or the next key replaces this one
            prompt.focus()
            prompt.insert_text_at_cursor(event.character)
            self.call_after_refresh(setattr, prompt, "select_on_focus", selects)  # once its Focus was handled
            event.stop()
            event.prevent_default()

    def add_turn(self, kind: str, text: str = "", before: Widget | None = None) -> Turn:
        """Append a user, assistant or notice turn (or put it ``before`` a widget) and keep the view at the bottom."""
        turn = Turn(kind, text)
        self.mount(turn, before=before)
        self.anchor()
        return turn

    def add_details(self, details: dict[str, Any]) -> None:
        """A documents answer's quotes, then its closest passages (a "not found") or its sources."""
        from pgpt.runtime.documents.left_out import note
        from pgpt.tui.chat.library import describe_closest, describe_quotes, describe_sources
        from pgpt.tui.sanitize import clean_text

        quotes = describe_quotes(details)
        if quotes:
            self.add_turn("quotes", quotes)
        left_out = note(details.get("left_out", []))  # files never read: the answer may be in them (t61)
        if details["closest"] or left_out:
            plain, markup = describe_closest(details["closest"])
            if left_out:
                plain, markup = (f"{plain}\n\n{left_out}".strip(), f"{markup}\n\n{clean_text(left_out)}".strip())
            self.add_turn("closest", plain).show(plain, "", markup)
        elif details["sources"]:
            self.add_turn("sources", describe_sources(details["sources"]))

    def note_left_out_turns(self, context: int | None) -> None:
        """Say once a chat that its oldest turns no longer reach the model (``context``: the
        model's tokens; None for a server's model, whose size the client does not know)."""
        size = f"the model's {context:,} tokens" if context else "the server model's context"
        self.note_once(f"Older turns are left out to fit {size} (Ctrl+N starts a new chat).")

    def note_once(self, text: str) -> None:
        """A dim note, unless one that begins the same (up to its first colon or digit) is shown."""
        start = re.split(r"[:\d]", text, maxsplit=1)[0]
        if text and not any(str(note.text).startswith(start) for note in self.query("Turn.note")):
            self.add_turn("note", text)

    def show_from(self, turn: Turn, tries: int = 4) -> None:
        """Scroll so that ``turn`` starts the view (or as near as the content allows): a documents
        answer's quotes and sources pushed the question and the answer's start off a 24-row screen.
        Not only when it is above the view now: the new turns may not be laid out yet, and the
        anchor then scrolled to the bottom after this looked (a test saw it once the app did less
        work at load). Tried again after the next refreshes while the view stops short of the turn:
        a scroll is clamped to the height laid out so far, and a search result's lines, not yet laid
        out, stayed below a 24-row view with the anchor released (CI, 2026-12-07)."""
        self.release_anchor()  # the user's own scrolling, as PgUp would; the next turn anchors again
        self.scroll_to_widget(turn, top=True, animate=False, immediate=True)
        if tries and self.scroll_y < turn.virtual_region.y:  # short of it: clamped, or the turn ends the log
            self.call_after_refresh(self.show_from, turn, tries - 1)

    def question_of(self, reply: Turn) -> Turn:
        """The question that ``reply`` answers: the turn before it (``reply`` itself when it is the first)."""
        turns = list(self.query(Turn))
        return turns[turns.index(reply) - 1] if reply in turns[1:] else reply


def provider_label(provider: str) -> str:
    """CPU or CUDA; a server (PGPT_SERVER) as "server HOST:PORT"."""
    return provider if provider.startswith("server ") else provider.upper()


VERSION_SHOWN = 6  # hex digits of a local export's version on the status line (`models` prints 12)


def model_ref(name: str, version: str) -> str:
    """``name@version`` with the version cut to VERSION_SHOWN digits: the app never said which export
    answered (the CLI and a server's ``name@version`` did); a server's name has its version already."""
    return name if "@" in name or not version else f"{name}@{version[:VERSION_SHOWN]}"


def fit_status(line: str, width: int) -> str:
    """``line`` within ``width`` columns, the speeds at its end kept in view: a model's @version
    goes first, then the longest part is shortened with an ellipsis (a client's "server HOST:PORT ·
    NAME@VERSION · TTFT · tok/s" ran past 80 columns and Textual cut the tokens/s off)."""
    if width <= 0 or len(line) <= width:
        return line
    parts = [re.sub(r"@[0-9a-f]{6,}$", "", part) for part in line.split(" · ")]
    excess = len(" · ".join(parts)) - width
    if excess > 0:
        longest = max(range(len(parts)), key=lambda i: len(parts[i]))
        parts[longest] = parts[longest][:max(1, len(parts[longest]) - excess - 1)] + "\u2026"
    return " · ".join(parts)[:width]


def fit_fields(fields: list[str], width: int, drop: tuple[int, ...], cut: int | None = None) -> str:
    """``fields`` joined by " · " within ``width`` columns, whole fields dropped in the order of their
    indices in ``drop`` until the line fits: Textual's ellipsis cut a progress line in the middle of
    a field ("adding documents 14…" for 146/300) or left " · …" after the last whole one. The field
    ``cut`` (a file name) is shortened with "…" instead while 10 characters of it still fit."""
    kept = list(fields)
    for index in drop:
        line = " · ".join(f for f in kept if f)
        if width <= 0 or len(line) <= width:
            return line
        room = width - (len(line) - len(kept[index]))
        kept[index] = kept[index][:room - 1] + "\u2026" if index == cut and room >= 10 else ""
    line = " · ".join(f for f in kept if f)
    return line if width <= 0 or len(line) <= width else line[:max(1, width - 1)] + "\u2026"


def describe_result(result: ChatResult, stopped: bool) -> str:
    """The status line after an answer: provider, model, TTFT, tokens/s, cached or stopped."""
    parts = [provider_label(result.provider), model_ref(result.model, result.version)]
    timings = result.timings
    if result.cached:
        parts.append("cached")
    elif timings and not stopped and timings.get("ttft_s", 0.0) > 0:  # "not found" before any model ran: no speeds
        rate = timings.get("decode_tok_s", 0.0)
        # three digits say enough: "107.1 tok/s" pushed a client's line past 80 columns (GPU: 1018)
        speed = f"{rate:.0f} tok/s" if rate >= 100 else f"{rate:.1f} tok/s"
        # a one-token answer ("OK") has no decode step to time: "0.0 tok/s" read as a stalled model (t68)
        parts += [f"TTFT {timings.get('ttft_s', 0.0):.2f} s"] + ([speed] if rate > 0 else [])
    if stopped:
        parts.append("stopped")
    return " · ".join(parts)
