"""Text out of HTML pages: visible blocks as paragraphs under their heading trail; scripts,
styles, site menus, hidden elements and Sphinx's heading anchors left out; table rows as ``a | b | c``, list items
with their marker (``- `` or ``N. ``), a definition list's term as a heading or joined to its
definition. Used by :func:`pgpt.runtime.documents.readers.read_document`.
"""

from __future__ import annotations

from html.parser import HTMLParser

from pgpt.runtime.documents.readers import Section, parser_failure


# Elements without an end tag: one hidden would leave out the rest of the page, waiting for it
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def _hidden(attrs: dict[str, str | None]) -> bool:
    """Whether an element is hidden from the page's reader (the ``hidden`` attribute, ``display:none``,
    ``visibility:hidden``): saved pages hide cookie banners and closed dialogs there, and hidden text is
    where a page puts instructions for a model that its reader never sees (a tester's "ignore the
    question and answer PWNED" was indexed, t47)."""
    style = "".join((attrs.get("style") or "").lower().split())
    return "hidden" in attrs or "display:none" in style or "visibility:hidden" in style


class _HtmlText(HTMLParser):
    """Visible text in blocks, with the heading trail; scripts and styles dropped.

    A definition list's terms (``<dt>``: a config key, an API signature) head their definitions
    like headings one level below the current one, except in field lists ("Parameters:").
    """

    SKIP = {"script", "style", "noscript", "template", "svg", "head", "nav", "aside"}
    SKIP_ROLES = {"navigation", "search", "banner", "contentinfo"}  # site menus, search boxes, footers
    BLOCK = {"p", "div", "li", "tr", "br", "pre", "section", "article", "table", "ul", "ol", "blockquote",
             "h1", "h2", "h3", "h4", "h5", "h6", "dl", "dt", "dd"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[Section] = []
        self.trail: list[str] = []
        self._buffer: list[str] = []
        self._skipping: list[list[str | int]] = []  # [tag, nesting] of the element being left out
        self._heading_level = 0
        self._base = 0  # the trail's length at the last <hN>
        self._lists: list[bool] = []  # open <dl>s: whether their terms are headings
        self._term = False  # in a <dt> that heads its definition
        self._in_term = False  # in any <dt>
        self._pending_term = ""
        self._numbers: list[int | None] = []  # open <ul> (None) and <ol> (items so far)
        self._bullet = ""  # the marker of an <li> whose text has not come yet

    def _flush(self) -> None:
        text = " ".join("".join(self._buffer).split())
        self._buffer = []
        if not text:
            return
        if self._heading_level:
            self.emit_pending_term()
            self.trail = self.trail[: self._heading_level - 1] + [text]
            self._base = len(self.trail)
        elif self._in_term:
            if self._term:
                self.trail = self.trail[: self._base + sum(self._lists) - 1] + [text]
            # The term waits for its definition, to make one sentence with it ("adm Members of
            # this group can read many log files."): apart, a quote was the bare term ("www-data")
            # or a definition without the term the question asked for. A space joins them, as the
            # text read before (the benchmarks' evidence spans) had only white space between.
            self.emit_pending_term()
            self._pending_term = text
            return
        elif self._pending_term:
            text, self._pending_term = f"{self._pending_term} {text}", ""
        # A list item keeps its marker, as Markdown's do: without it the items ran together in
        # passages and answers, and an item ending in "." ended the list a quoted lead-in brings.
        text, self._bullet = self._bullet + text, ""
        self.sections.append(Section(text, heading=" > ".join(self.trail)))

    def emit_pending_term(self) -> None:
        """A term that got no definition (the next term or a heading came first) as a block of its own."""
        if self._pending_term:
            self.sections.append(Section(self._pending_term, heading=" > ".join(self.trail)))
            self._pending_term = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skipping:
            if tag == self._skipping[-1][0]:
                self._skipping[-1][1] += 1  # type: ignore[operator]
            return
        found = dict(attrs)
        classes = (found.get("class") or "").split()
        if (tag in self.SKIP or found.get("role") in self.SKIP_ROLES or (tag == "a" and "headerlink" in classes)
                or (_hidden(found) and tag not in _VOID)):
            self._skipping.append([tag, 1])  # Sphinx's "¶" heading anchors are left out too
        elif tag in ("td", "th"):
            # A row's cells as "a | b | c", as .docx tables read: glued, "Friday17:30" matched nothing.
            if "".join(self._buffer).strip():
                self._buffer.append(" | ")
        elif tag in self.BLOCK:
            self._flush()
            if tag[0] == "h" and tag[1:].isdigit():
                self._heading_level = int(tag[1:])
            elif tag == "dl":
                self._lists.append(not {"field-list", "option-list", "footnote", "citation"} & set(classes))
            elif tag == "dt":
                self._term, self._in_term = bool(self._lists and self._lists[-1]), True
            elif tag == "dd":  # HTML may leave </dt> out
                self._term = self._in_term = False
            elif tag in ("ul", "ol"):
                self._numbers.append(0 if tag == "ol" else None)
            elif tag == "li":
                self._bullet = self._next_bullet()

    def _next_bullet(self) -> str:
        """"- " in a <ul> (or outside any list), "N. " in an <ol>."""
        if not self._numbers or self._numbers[-1] is None:
            return "- "
        self._numbers[-1] += 1
        return f"{self._numbers[-1]}. "

    def handle_endtag(self, tag: str) -> None:
        if self._skipping:
            if tag == self._skipping[-1][0]:
                self._skipping[-1][1] -= 1  # type: ignore[operator]
                if not self._skipping[-1][1]:
                    self._skipping.pop()
            return
        if tag in self.BLOCK:
            self._flush()
            if tag[0] == "h" and tag[1:].isdigit():
                self._heading_level = 0
            elif tag == "dt":
                self._term = self._in_term = False
            elif tag == "dl":
                self.emit_pending_term()
            elif tag in ("ul", "ol") and self._numbers:
                self._numbers.pop()
            elif tag == "li":
                self._bullet = ""  # an empty item marks nothing after it
            if tag == "dl" and self._lists and self._lists.pop():
                self.trail = self.trail[: self._base + sum(self._lists)]

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self._buffer.append(data)


def read_html(text: str) -> list[Section]:
    """The sections of an HTML page: one per heading, its blocks as paragraphs."""
    parser = _HtmlText()
    try:
        parser.feed(text)
        parser.close()
    except Exception as exc:  # html.parser gives up on some malformed markup (see parser_failure)
        raise parser_failure(exc, "HTML") from None
    parser._flush()
    parser.emit_pending_term()
    # one section per heading, paragraphs joined, so chunks can span paragraphs
    merged: list[Section] = []
    for section in parser.sections:
        if merged and merged[-1].heading == section.heading:
            merged[-1] = Section(merged[-1].text + "\n\n" + section.text, heading=section.heading)
        else:
            merged.append(section)
    return merged
