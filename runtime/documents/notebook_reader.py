"""Jupyter notebooks (.ipynb) as the text their reader sees: Markdown cells, code and text outputs.

A notebook is JSON; read as text, a fact printed by a cell ("AUC on holdout: 0.8731") came inside
``"source": [ ... ]`` syntax, and a plot's base64 PNG was a passage of its own (t61). Here the
cells become one Markdown document: Markdown cells as written (their headings give the chunks
below them their heading trail), code in fenced blocks (a "# comment" is not a title), and the
text a cell printed or returned as paragraphs. Images, HTML and widget outputs are left out; their
text/plain form is kept when there is one. A file that is not a notebook's JSON is read as text.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pgpt.runtime.documents.readers import Section

# An output line that Markdown would read as a heading or an underline: such an output is fenced.
_STRUCTURE = re.compile(r"^\s{0,3}(#{1,6}\s|[=\-]{3,}\s*$|```|~~~)", re.MULTILINE)


def read_notebook(text: str) -> list[Section]:
    """The sections of a notebook's JSON ``text`` (see the module docstring)."""
    from pgpt.runtime.documents.text_structure import markdown_sections, underlined_sections

    try:
        notebook = json.loads(text)
    except ValueError:
        return underlined_sections(text)
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        return underlined_sections(text)
    parts: list[str] = []
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        source = _joined(cell.get("source")).strip()
        if cell.get("cell_type") == "code":
            if source:
                parts.append(f"```\n{source}\n```")
            parts.extend(_fenced_if_needed(output) for output in _outputs(cell.get("outputs")))
        elif source:  # markdown and raw cells
            parts.append(source)
    return markdown_sections("\n\n".join(parts))


def _joined(value: Any) -> str:
    """A notebook string: a list of lines or one string."""
    if isinstance(value, list):
        return "".join(v for v in value if isinstance(v, str))
    return value if isinstance(value, str) else ""


def _outputs(outputs: Any) -> list[str]:
    """The text of a code cell's outputs: printed streams, results' text/plain, error messages."""
    found = []
    for output in outputs if isinstance(outputs, list) else []:
        if not isinstance(output, dict):
            continue
        if output.get("output_type") == "stream":
            text = _joined(output.get("text"))
        elif output.get("output_type") == "error":
            text = f"{output.get('ename', '')}: {output.get('evalue', '')}"
        else:  # execute_result, display_data: an image's text/plain ("<Figure size 640x480>") says nothing
            data = output.get("data") if isinstance(output.get("data"), dict) else {}
            images = any(str(kind).startswith("image/") for kind in data)
            text = "" if images else _joined(data.get("text/plain"))
        if text.strip():
            found.append(text.strip())
    return found


def _fenced_if_needed(text: str) -> str:
    """An output as a paragraph, fenced when a line of it would read as a heading or an underline."""
    if not _STRUCTURE.search(text):
        return text
    inner = text.replace("```", "'''").replace("~~~", "'''")  # a fence inside would end the block
    return f"```\n{inner}\n```"
