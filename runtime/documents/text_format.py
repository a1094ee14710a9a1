"""The index's text format: the version of reading and chunking that wrote its chunks.

When a release reads or chunks some documents differently, it raises TEXT_FORMAT, and the next ingest
reads again the indexed documents whose reading changed (``changed_suffixes``), so that old and new
chunks agree. The format is kept on the text column's field of the chunk table.
"""

from __future__ import annotations

from typing import Any

META_FORMAT = "pgpt.text_format"  # on the text column's field: schema metadata is fixed at creation

# How documents are read and cut into chunks. Version 2: PDF paragraphs (running headers, footers
# and hyphenation undone), headings in plain text and setext Markdown, definition-list terms as
# headings, short sibling sections packed together. An index of another version is re-chunked by
# the next ingest (`ingest` says so), since its chunks and the new ones would not agree.
# Version 3: an HTML definition list's term and its definition's first paragraph are one block
# ("adm Members of this group ..."), not two sentences.
# Version 4: reST hyperlink targets and image directives are left out of .rst files (they render as
# nothing, and a link target was quoted as the answer).
# Version 5: HTML and .docx list items keep a marker ("- ", or "2. " for a numbered one), as Markdown's do;
# line ends are "\n".
# Version 6: a PDF's line at the top or the foot of most pages is dropped as a running header or
# footer only when it is the same text on each or differs in its page number alone: templated pages
# ("Invoice 1001 ... total 250 euros.", one a page) lost those lines, their facts. Only PDFs are read again.
# Version 7: HTML elements hidden from the page's reader (``hidden``, ``display:none``) are left out.
# Version 8: a Markdown file's front matter (YAML between "---" lines, TOML between "+++") is left out
# and its title made the heading (it was a passage of its own); a .docx table nested in a cell is read
# (it was dropped), a merged cell once, a cell's paragraphs on its row's line; .rtf is read as its text
# (it was its markup); an HTML page's declared charset is read (Shift_JIS, Big5, KOI8-R pages were mojibake).
# Version 9: a Jupyter notebook (.ipynb) is read as its cells (Markdown, code, text outputs), not as JSON.
# Version 10: text its reader never sees is left out (hidden_text.py): Markdown comments and hidden HTML
# elements, reST comments, .docx runs marked hidden.
# Version 11: a PDF's text drawn invisibly (not over a scan), outside the page or below 1 pt is left out.
# Version 12: a PDF's text drawn white on the white page (nothing dark filled before it) is left out too.
TEXT_FORMAT = 12
# The suffixes whose reading changed in each version (None: every document's), so that an upgrade
# reads again only the documents it changes (a PDF rule re-embedded thousands of Markdown files).
_CHANGED_IN = {6: (".pdf",), 7: (".htm", ".html"), 8: (".docx", ".htm", ".html", ".markdown", ".md", ".rtf"),
               9: (".ipynb",), 10: (".docx", ".markdown", ".md", ".rest", ".rst"), 11: (".pdf",),
               12: (".pdf",)}


def changed_suffixes(since: int) -> tuple[str, ...] | None:
    """The file suffixes read differently now than by text format ``since`` (None: all of them)."""
    changed: set[str] = set()
    for version in range(since + 1, TEXT_FORMAT + 1):
        suffixes = _CHANGED_IN.get(version)
        if suffixes is None:
            return None
        changed.update(suffixes)
    return tuple(sorted(changed))


def table_text_format(table: Any) -> int:
    """The text format of a LanceDB chunk table (1: written before formats were recorded)."""
    metadata = table.schema.field("text").metadata or {}
    return int(metadata.get(META_FORMAT.encode(), b"1"))
