"""Text out of documents: txt, md, pdf, docx, html and other text files, with pages and headings.

Each reader returns sections (text, page, heading trail). A file that cannot give text raises
:class:`Skipped` with the reason the ingest report shows (binary, encrypted PDF, scanned PDF
without a text layer, ...). Text in unknown encodings decodes without failing: BOMs first,
then UTF-8, then charset detection (GBK, cp1252, ...).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

MARKDOWN_SUFFIXES = (".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
KNOWN_SUFFIXES = (".txt", ".pdf", ".docx", *MARKDOWN_SUFFIXES, *HTML_SUFFIXES)
MAX_EXPANDED_BYTES = 200_000_000  # a .docx's unzipped size; real documents stay far below
_SHORT_TEXT = 200  # bytes: below this, charset detection guesses badly (GBK read as cp949)
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


class Skipped(Exception):
    """The file gives no text to index; ``str(exc)`` is the reason shown to the user."""


@dataclass(frozen=True)
class Section:
    """A run of text with where it came from: 1-based PDF page (0 elsewhere) and heading trail."""

    text: str
    page: int = 0
    heading: str = ""


def read_document(path: Path) -> list[Section]:
    """The sections of one file.

    Raises:
        Skipped: binary, encrypted or scanned PDF, damaged file, no text at all.
    """
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        sections = _read_pdf(path)
    elif suffix == ".docx":
        sections = _read_docx(path)
    else:
        text = decode_text(path.read_bytes())
        from pgpt.runtime.documents.text_structure import markdown_sections, underlined_sections

        if suffix in HTML_SUFFIXES:
            sections = _read_html(text)
        elif suffix in MARKDOWN_SUFFIXES:
            sections = markdown_sections(text)
        else:
            sections = underlined_sections(text)
    sections = [s for s in sections if s.text.strip()]
    if not sections:
        raise Skipped("no text in the file")
    return sections


def decode_text(data: bytes) -> str:
    """Decode bytes of an unknown encoding, or raise Skipped for binary data."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    if b"\x00" in data[:8192]:
        raise Skipped("binary file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if len(data) < _SHORT_TEXT:
        for encoding in ("gb18030", "cp1252"):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                continue
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise Skipped("binary file (no text encoding fits)")
    return str(best)


def is_text_file(path: Path) -> bool:
    """Content sniffing for files without a known suffix (source code, .rst, .csv, ...)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8192)
        decode_text(head if len(head) < 8192 else head[:8000])
        return bool(head.strip())
    except (Skipped, OSError):
        return False


def _read_pdf(path: Path) -> list[Section]:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted and reader.decrypt("") == 0:
            raise Skipped("encrypted PDF (a password is needed)")
        pages = [(number, page.extract_text() or "") for number, page in enumerate(reader.pages, 1)]
    except DependencyError:
        raise Skipped("encrypted PDF (AES; a password is needed)") from None
    except (PdfReadError, OSError, ValueError, KeyError) as exc:
        raise Skipped(f"damaged PDF ({type(exc).__name__})") from None
    if sum(len(text.strip()) for _, text in pages) < 2 * max(len(pages), 1):
        raise Skipped("scanned PDF without a text layer (run OCR on it first)")
    from pgpt.runtime.documents.pdf_text import pdf_paragraphs

    paragraphs = pdf_paragraphs([text for _, text in pages])
    return [Section("\n\n".join(page), page=number) for (number, _), page in zip(pages, paragraphs)]


def _read_docx(path: Path) -> list[Section]:
    from docx import Document
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    _check_zip_expansion(path)
    try:
        document = Document(str(path))
    except (PackageNotFoundError, KeyError, ValueError) as exc:
        raise Skipped(f"damaged .docx ({type(exc).__name__})") from None
    sections: list[Section] = []
    trail: list[str] = []
    lines: list[str] = []
    base = 0  # the trail's length at the last real heading: a definition term goes below it
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            lines.extend(" | ".join(cell.text for cell in row.cells) for row in block.rows)
            continue
        style = block.style.name if block.style is not None else ""
        level = _heading_level(style)
        # A definition list's term (pandoc's "Definition Term" style) heads its definition, like
        # a heading one level down; the list ends at the first paragraph of another kind.
        term = style == "Definition Term"
        leaves_list = len(trail) > base and style not in _DEFINITION_STYLES
        if level or term or leaves_list:
            sections.append(Section("\n\n".join(lines), heading=" > ".join(trail)))
            lines = []
            if level:
                trail = trail[: level - 1] + [block.text.strip()]
                base = len(trail)
            else:
                trail = trail[:base] + ([block.text.strip()] if term else [])
        lines.append(block.text)
    sections.append(Section("\n\n".join(lines), heading=" > ".join(trail)))
    return sections


def _check_zip_expansion(path: Path) -> None:
    """Refuse a .docx that would expand to more than MAX_EXPANDED_BYTES (a zip bomb) before reading it."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            expanded = sum(item.file_size for item in archive.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise Skipped(f"damaged .docx ({type(exc).__name__})") from None
    if expanded > MAX_EXPANDED_BYTES:
        raise Skipped(f".docx that would expand to {expanded / 1e6:.0f} MB (a zip bomb?); "
                      f"the limit is {MAX_EXPANDED_BYTES / 1e6:.0f} MB")


_DEFINITION_STYLES = ("Definition Term", "Definition", "Source Code", "Compact")


def _heading_level(style: str) -> int:
    if style == "Title":
        return 1
    match = re.match(r"^Heading (\d)$", style)
    return int(match.group(1)) if match else 0


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
        self._term = False

    def _flush(self) -> None:
        text = " ".join("".join(self._buffer).split())
        self._buffer = []
        if not text:
            return
        if self._heading_level:
            self.trail = self.trail[: self._heading_level - 1] + [text]
            self._base = len(self.trail)
        elif self._term:
            self.trail = self.trail[: self._base + sum(self._lists) - 1] + [text]
        self.sections.append(Section(text, heading=" > ".join(self.trail)))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skipping:
            if tag == self._skipping[-1][0]:
                self._skipping[-1][1] += 1  # type: ignore[operator]
            return
        found = dict(attrs)
        classes = (found.get("class") or "").split()
        if tag in self.SKIP or found.get("role") in self.SKIP_ROLES or (tag == "a" and "headerlink" in classes):
            self._skipping.append([tag, 1])  # Sphinx's "¶" heading anchors are left out too
        elif tag in self.BLOCK:
            self._flush()
            if tag[0] == "h" and tag[1:].isdigit():
                self._heading_level = int(tag[1:])
            elif tag == "dl":
                self._lists.append(not {"field-list", "option-list", "footnote", "citation"} & set(classes))
            elif tag == "dt":
                self._term = bool(self._lists and self._lists[-1])

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
                self._term = False
            elif tag == "dl" and self._lists and self._lists.pop():
                self.trail = self.trail[: self._base + sum(self._lists)]

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self._buffer.append(data)


def _read_html(text: str) -> list[Section]:
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    parser._flush()
    # one section per heading, paragraphs joined, so chunks can span paragraphs
    merged: list[Section] = []
    for section in parser.sections:
        if merged and merged[-1].heading == section.heading:
            merged[-1] = Section(merged[-1].text + "\n\n" + section.text, heading=section.heading)
        else:
            merged.append(section)
    return merged
