"""Accent and case folding for the full-text index: "resume" finds "résumé", "елка" finds "ёлка".

LanceDB's full-text index stems a word before it folds its accents, and the English stemmer treats
an accented vowel as a consonant: "résumé" was indexed as "resume" and the query "resume" looked up
as "resum", so neither found the other ("societe" missed "société", "brucke" missed "Brücke",
"golge" missed "gölge"); Greek accents, the Turkish dotted İ and Russian ё were not folded at all.
So the index keeps a folded copy of each chunk's text and heading (columns ``fts_text`` and
``fts_heading``), the full-text index is built on those, and a query is folded the same way: both
sides reach the stemmer without accents. The shown text is never folded. The text's copy starts with
its file's name as words ("data csv", "Makefile"): users name files in questions, and a name was in
nothing searched (t61).

Folding: case folded (ß is "ss", Greek final ς is σ), combining marks removed after Latin and Greek
letters, ё/Ё as е and ї as і, ı as i, and the letters with no decomposition (ø, æ, œ, ł, đ, ð, þ)
spelled in ASCII. Marks after other scripts stay: a Japanese voiced mark (が) or Hangul (한) changes
the letter, not its accent.
"""
from __future__ import annotations

import re
import unicodedata
from pathlib import PurePath
from typing import Any

from pgpt.runtime.sanitize import without_invisible

# The version of fold(): an index folded by another version is folded again at its next write.
FOLD_VERSION = "3"  # 2: the text's copy is led by the file's name; 3: zero-width characters dropped
FOLD_META = "pgpt.fold"
COLUMNS = {"text": "fts_text", "heading": "fts_heading"}

# A Latin (Basic, Latin-1, Extended-A/B, Additional) or Greek (and Extended) letter, then its marks.
_MARKED = re.compile("([A-Za-z\u00c0-\u024f\u1e00-\u1eff\u0370-\u03ff\u1f00-\u1fff])[\u0300-\u036f]+")
_CYRILLIC_DIAERESIS = re.compile("([\u0415\u0435\u0406\u0456])\u0308")  # ё -> е, ї -> і
_DOCUMENT_SUFFIXES = {".md", ".markdown", ".txt", ".text", ".rst", ".pdf", ".docx", ".html", ".htm", ".rtf"}
_LETTERS = str.maketrans({"ı": "i", "ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th",
                          "ħ": "h", "ŧ": "t"})


def fold(text: str) -> str:
    """``text`` as the full-text index reads it: case and accents folded (see the module's docstring).
    ASCII text comes back unchanged (the index lowercases it itself), so its scores do not move."""
    if text.isascii():
        return text
    text = without_invisible(text)  # "77\u200b88" is the 7788 the reader sees (t65)
    decomposed = unicodedata.normalize("NFD", text.casefold())
    bare = _CYRILLIC_DIAERESIS.sub(r"\1", _MARKED.sub(r"\1", decomposed))
    # Composed again: Hangul syllables and kana with their voiced marks are single letters to the index.
    return unicodedata.normalize("NFC", bare).translate(_LETTERS)


def folded_columns(data: dict[str, list[Any]]) -> dict[str, list[str]]:
    """The folded columns for rows given as columns (``text``, ``heading`` and ``path`` lists): the
    text's is led by the file's name, so that "the Makefile", "data.csv" or "pyproject.toml" in a
    question finds its file (t61: a file's name was in nothing searched; in the heading's, a match
    there counted no more than one in the text, as LanceDB keeps a chunk's best field)."""
    texts = [f"{name_words(path)}\n{text or ''}" for path, text in zip(data["path"], data["text"])]
    return {COLUMNS["text"]: [fold(value) for value in texts],
            COLUMNS["heading"]: [fold(value or "") for value in data["heading"]]}


def name_words(path: str) -> str:
    """A file's name as the full-text index reads it: "data.csv" as "data csv", "black-basics.md" as
    "black basics" (a document suffix says nothing of what it holds; "csv" or "toml" does)."""
    name = PurePath(path or "").name
    stem, dot, suffix = name.rpartition(".")
    if dot and stem and f".{suffix.lower()}" in _DOCUMENT_SUFFIXES:
        name = stem
    return re.sub(r"[._\-]+", " ", name).strip()


def is_folded(table: Any) -> bool:
    """Whether every chunk of ``table`` has its folded text, folded by this FOLD_VERSION (an earlier
    release, after a rollback, adds chunks without it)."""
    try:
        field = table.schema.field(COLUMNS["text"])
    except KeyError:
        return False
    if (field.metadata or {}).get(FOLD_META.encode(), b"").decode() != FOLD_VERSION:
        return False
    return not table.count_rows(f"{COLUMNS['text']} IS NULL")


def fold_table(table: Any) -> None:
    """Add (or refresh) the folded columns of an index made before them, in place: the chunks' text
    and heading are read, folded and merged back by chunk id; nothing is read from the documents
    again and nothing is embedded. The caller holds the writer lock."""
    import pyarrow as pa

    names = set(table.schema.names)
    missing = [pa.field(name, pa.string()) for name in COLUMNS.values() if name not in names]
    if missing:
        table.add_columns(pa.schema(missing))
    count = table.count_rows()
    if count:
        rows = table.search().select(["chunk_id", "path", *COLUMNS]).limit(count).to_arrow()
        data = {column: rows.column(column).to_pylist() for column in ("path", *COLUMNS)}
        update = pa.table({"chunk_id": rows.column("chunk_id"), **folded_columns(data)})
        table.merge_insert("chunk_id").when_matched_update_all().execute(update)
    table.update_field_metadata({"path": COLUMNS["text"], "metadata": {FOLD_META: FOLD_VERSION}})
