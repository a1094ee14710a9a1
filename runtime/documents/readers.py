"""Text out of documents: txt, md, pdf, docx, html, ipynb and other text files, with pages and headings.

Each reader returns sections (text, page, heading trail). A file that cannot give text raises
:class:`Skipped` with the reason the ingest report shows (binary, encrypted PDF, scanned PDF
without a text layer, damaged file, ...). Text in unknown encodings decodes without failing: BOMs
first, then UTF-8, then detection (:mod:`pgpt.runtime.documents.encodings`).

A damaged file makes a parser (pypdf, python-docx, lxml, zlib, html.parser) raise whatever it
raises: any exception that starts inside the parser's own code is the file's fault and becomes
``Skipped("damaged PDF (TYPE)")``; one that starts in pgpt's code is a bug and goes on up as it
is (the ingest reports it as an internal error). The ingest runs these readers in a worker
process with a time and memory limit (:mod:`pgpt.runtime.documents.isolation`).
"""

from __future__ import annotations

import errno
import re
import types
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKDOWN_SUFFIXES = (".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
KNOWN_SUFFIXES = (".txt", ".pdf", ".docx", ".rtf", ".ipynb", *MARKDOWN_SUFFIXES, *HTML_SUFFIXES)
MAX_EXPANDED_BYTES = 200_000_000  # a .docx's unzipped size; real documents stay far below
_NESTED_TABLES = 4  # .docx tables within tables read as rows; deeper ones as text (a crafted file nests thousands)


# OSError numbers that mean the file could not be read, rather than that its content is damaged.
_FILE_FAULTS = frozenset({errno.EACCES, errno.EPERM, errno.EIO, errno.ENOENT, errno.ELOOP, errno.EISDIR})


class Skipped(Exception):
    """The file gives no text to index; ``str(exc)`` is the reason shown to the user."""


@dataclass(frozen=True)
class Section:
    """A run of text with where it came from: 1-based PDF page (0 elsewhere) and heading trail."""

    text: str
    page: int = 0
    heading: str = ""


def read_document(path: Path, source: Path | None = None) -> list[Section]:
    """The sections of one file: ``path`` names it (its suffix gives the format), and its bytes are
    read from ``source`` when given (the file ingestion opened and hashed, see ``ingest``).

    Raises:
        Skipped: binary, encrypted or scanned PDF, damaged file, no text at all.
    """
    suffix = path.suffix.lower()
    source = path if source is None else source
    if suffix == ".pdf":
        sections = _read_pdf(source)
    elif suffix == ".docx":
        sections = _read_docx(source)
    else:
        data = source.read_bytes()
        from pgpt.runtime.documents.rtf_reader import is_rtf, rtf_text
        from pgpt.runtime.documents.text_structure import markdown_sections, underlined_sections, without_rest_markup

        text = rtf_text(data) if suffix == ".rtf" and is_rtf(data) else decode_text(data, html=suffix in HTML_SUFFIXES)
        if suffix in HTML_SUFFIXES:
            from pgpt.runtime.documents.html_reader import read_html

            sections = read_html(text)
        elif suffix in MARKDOWN_SUFFIXES:
            from pgpt.runtime.documents.hidden_text import markdown_visible

            sections = markdown_sections(markdown_visible(text))
        elif suffix == ".ipynb":
            from pgpt.runtime.documents.notebook_reader import read_notebook

            sections = read_notebook(text)
        else:
            sections = underlined_sections(without_rest_markup(text) if suffix in (".rst", ".rest") else text)
    sections = [Section(_clean(s.text), s.page, _clean(s.heading)) for s in sections if s.text.strip()]
    if not sections:
        raise Skipped("no text in the file")
    return sections


def _clean(text: str) -> str:
    """No NUL and no lone surrogates (a broken PDF text layer has both): the index stores UTF-8.
    Line ends as ``\n``: a Windows file's ``\r`` reached `search --json` and the server's passages."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def parser_failure(error: BaseException, kind: str) -> Skipped:
    """``Skipped("damaged KIND (TYPE)")`` for an error a parser raised on a damaged file.

    Raises:
        BaseException: ``error`` itself when it started in pgpt's code (a bug, not a bad file)
            or is not about the file at all (MemoryError, KeyboardInterrupt).
    """
    if not isinstance(error, Exception) or isinstance(error, MemoryError) or _started_in_pgpt(error.__traceback__):
        raise error
    if isinstance(error, OSError) and error.errno in _FILE_FAULTS:
        raise error  # the file system's fault, not the file's (a seek to a bad offset is EINVAL: damage)
    if isinstance(error, RecursionError):
        return Skipped(f"damaged {kind} (nested too deeply to read)")
    if isinstance(error, zlib.error):  # its name is just "error"
        return Skipped(f"damaged {kind} (bad compressed data)")
    return Skipped(f"damaged {kind} ({type(error).__name__})")


def _started_in_pgpt(trace: types.TracebackType | None) -> bool:
    """Whether the innermost frame of ``trace`` runs pgpt's code (callbacks from a parser included)."""
    last = None
    while trace is not None:
        last, trace = trace, trace.tb_next
    return last is not None and str(last.tb_frame.f_globals.get("__name__", "")).startswith("pgpt.")


def decode_text(data: bytes, html: bool = False) -> str:
    """Decode bytes of an unknown encoding (:mod:`pgpt.runtime.documents.encodings`; ``html``: the
    charset a page declares first), or raise Skipped for binary data."""
    from pgpt.runtime.documents.encodings import NotText, decode_bytes, decode_html

    try:
        return decode_html(data) if html else decode_bytes(data)
    except NotText as reason:
        raise Skipped(str(reason)) from None


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
    from pypdf.errors import DependencyError

    from pgpt.runtime.documents.hidden_text import pdf_visible_text

    try:
        reader = PdfReader(path)
        if reader.is_encrypted and reader.decrypt("") == 0:
            raise Skipped("encrypted PDF (a password is needed): index a decrypted copy, e.g. from "
                          "`qpdf --decrypt --password=PASSWORD in.pdf out.pdf`")
        pages = [(number, *pdf_visible_text(page)) for number, page in enumerate(reader.pages, 1)]
    except Skipped:
        raise
    except DependencyError:
        raise Skipped("encrypted PDF (AES; a password is needed)") from None
    except Exception as exc:  # whatever pypdf raises on a damaged file (see parser_failure)
        raise parser_failure(exc, "PDF") from None
    if not all(isinstance(text, str) for _, text, _ in pages):
        raise Skipped("damaged PDF (its text layer is not text)")
    if sum(len(text.strip()) for _, text, _ in pages) < 2 * max(len(pages), 1):
        if any(hidden for _, _, hidden in pages):
            raise Skipped("PDF whose text is all hidden (drawn invisibly, off the page or too small to read)")
        raise Skipped("scanned PDF without a text layer (run OCR on it first)")
    from pgpt.runtime.documents.pdf_text import pdf_paragraphs

    paragraphs = pdf_paragraphs([text for _, text, _ in pages])
    return [Section("\n\n".join(page), page=number) for (number, _, _), page in zip(pages, paragraphs)]


def _read_docx(path: Path) -> list[Section]:
    from docx import Document
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    from pgpt.runtime.documents.hidden_text import docx_paragraph_text

    _check_docx_archive(path)
    try:
        document = Document(str(path))
        marker = _ListMarkers(document)
        blocks = [(block.style.name if block.style is not None else "", "", _table_lines(block))
                  if isinstance(block, Table)
                  else (block.style.name if block.style is not None else "", marker(block) + docx_paragraph_text(block),
                        None)
                  for block in document.iter_inner_content()]
    except PackageNotFoundError:
        raise Skipped("damaged .docx (PackageNotFoundError)") from None
    except Exception as exc:  # lxml, zipfile, zlib or python-docx on a damaged file (see parser_failure)
        raise parser_failure(exc, ".docx") from None
    sections: list[Section] = []
    trail: list[str] = []
    lines: list[str] = []
    base = 0  # the trail's length at the last real heading: a definition term goes below it
    for style, text, rows in blocks:
        if rows is not None:
            lines.extend(rows)
            continue
        level = _heading_level(style or "")
        # A definition list's term (pandoc's "Definition Term" style) heads its definition, like
        # a heading one level down; the list ends at the first paragraph of another kind.
        term = style == "Definition Term"
        leaves_list = len(trail) > base and style not in _DEFINITION_STYLES
        if level or term or leaves_list:
            sections.append(Section("\n\n".join(lines), heading=" > ".join(trail)))
            lines = []
            if level:
                trail = trail[: level - 1] + [text.strip()]
                base = len(trail)
            else:
                trail = trail[:base] + ([text.strip()] if term else [])
        lines.append(text)
    sections.append(Section("\n\n".join(lines), heading=" > ".join(trail)))
    return sections


def _table_lines(table: Any, depth: int = 0) -> list[str]:
    """A .docx table as lines, one a row ("cell | cell"): a cell merged across columns once (it was
    printed in each), a cell's paragraphs on its line, and a table nested in a cell as its own rows
    after its row's line (forms nest tables, and the inner one was dropped, t47). Nesting deeper than
    a few levels is read as text."""
    lines: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        inner: list[str] = []
        seen: set[Any] = set()
        for cell in row.cells:
            if cell._tc in seen:  # a merged cell: python-docx gives it once for each column it spans
                continue
            seen.add(cell._tc)
            cells.append(" ".join(part.strip() for part in cell.text.splitlines() if part.strip()))  # its paragraphs
            for nested in cell.tables:
                inner.extend(_table_lines(nested, depth + 1) if depth < _NESTED_TABLES
                             else [" ".join(c.text for r in nested.rows for c in r.cells)])
        lines.append(" | ".join(cells))
        lines.extend(inner)
    return lines


class _ListMarkers:
    """The marker of each list paragraph of one .docx, as Markdown's items read: "- " for a bullet,
    "N. " for a numbered item (counted per list and level), "" for other paragraphs. The numbering
    is on the paragraph (pandoc, Google Docs) or its style (Word's "List Bullet", "List Number").
    Without markers a list's items ran together in passages and answers, and steps lost their order."""

    def __init__(self, document: Any) -> None:
        self._document = document
        self._counts: dict[tuple[str, int], int] = {}

    def __call__(self, paragraph: Any) -> str:
        if not paragraph.text.strip():
            return ""
        for element in (paragraph._p, paragraph.style.element if paragraph.style is not None else None):
            properties = element.pPr if element is not None else None
            if properties is not None and properties.numPr is not None:
                return self._marker(properties.numPr)
        return ""

    def _marker(self, numbering: Any) -> str:
        num_id = str(numbering.numId.val) if numbering.numId is not None else ""
        level = int(numbering.ilvl.val) if numbering.ilvl is not None else 0
        if self._format(num_id, level) in ("", "bullet", "none"):
            return "- "
        # a deeper level starts again under each item above it
        self._counts = {key: n for key, n in self._counts.items() if key[0] != num_id or key[1] <= level}
        self._counts[(num_id, level)] = self._counts.get((num_id, level), 0) + 1
        return f"{self._counts[(num_id, level)]}. "

    def _format(self, num_id: str, level: int) -> str:
        """The numFmt of list ``num_id`` at ``level`` ("decimal", "bullet", ...); "" when not found."""
        try:  # python-docx makes a missing numbering part with NumberingPart.new(), which raises
            numbering = self._document.part.numbering_part.element
        except (KeyError, NotImplementedError):
            return ""
        if not num_id.isdigit():
            return ""
        abstract = numbering.xpath(f'./w:num[@w:numId="{num_id}"]/w:abstractNumId/@w:val')
        if not abstract or not str(abstract[0]).isdigit():  # the file's own text: never put into a query unchecked
            return ""
        found = numbering.xpath(f'./w:abstractNum[@w:abstractNumId="{abstract[0]}"]/w:lvl[@w:ilvl="{level}"]'
                                '/w:numFmt/@w:val')
        return str(found[0]) if found else ""


def _check_docx_archive(path: Path) -> None:
    """Refuse a .docx before parsing it: a zip bomb (more than MAX_EXPANDED_BYTES unzipped, as
    its headers say; a size that lies fails the CRC check later) or XML with a DTD (Word never
    writes one; entity declarations are how an XML entity bomb starts)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            expanded = sum(item.file_size for item in members)
            if expanded > MAX_EXPANDED_BYTES:
                raise Skipped(f".docx that would expand to {expanded / 1e6:.0f} MB (a zip bomb?); "
                              f"the limit is {MAX_EXPANDED_BYTES / 1e6:.0f} MB")
            for item in members:
                if item.filename.endswith((".xml", ".rels")):
                    with archive.open(item) as member:
                        if b"<!DOCTYPE" in member.read(4096).upper():
                            raise Skipped("a .docx whose XML declares a DTD (refused: an entity bomb?)")
    except Skipped:
        raise
    except Exception as exc:  # BadZipFile, zlib.error, a bad CRC, ... (see parser_failure)
        raise parser_failure(exc, ".docx") from None


_DEFINITION_STYLES = ("Definition Term", "Definition", "Source Code", "Compact")


def _heading_level(style: str) -> int:
    if style == "Title":
        return 1
    match = re.match(r"^Heading (\d)$", style)
    return int(match.group(1)) if match else 0
