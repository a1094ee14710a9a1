"""The corpora and question sets of `pgpt-tui bench-docs`.

Two corpora of real texts nobody on the team wrote. ``documents`` (bench/data/documents): package
READMEs and two licences, some turned into HTML, PDF and DOCX when the corpus is built, with the
"named" and "paraphrased" sets of 30 questions each. ``manuals`` (bench/data/manuals): 11 long
manuals, references, licences and a changelog from PyPI source distributions, stored in their
final formats (PDF, HTML, DOCX, Markdown, text; SOURCES.md says where each comes from and how it
was made), with a development set and a held-out test set of answerable and unanswerable
questions. Settings are chosen on the ``dev`` sets and reported on ``manuals-test``. ``cjk``
(bench/data/cjk): six short guides in Chinese and Japanese with invented facts, written for this
benchmark by a helper that saw neither the code nor the other sets, with one held-out set
(``cjk-test``, 24 answerable and 8 unanswerable questions): no setting is chosen on it.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgpt.export.quality import QUALITY_TEXT

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "documents"
MANUALS = DATA / "manuals"
CJK = DATA / "cjk"
PLAIN_FILES = ("diskcache.rst", "huggingface_hub.md", "rich.md", "tqdm.rst", "charset_normalizer.md",
               "lancedb.md", "pypdf.md", "urllib3.md")
MANUAL_SUFFIXES = (".pdf", ".html", ".docx", ".md", ".txt")


@dataclass(frozen=True)
class QuestionSet:
    """A named list of questions over one corpus; ``role`` is "dev" (tune on it) or "test" (report only)."""

    name: str
    corpus: str
    file: Path
    role: str

    def load(self) -> list[dict[str, Any]]:
        """The questions (each a dict: question, source, and evidence/answers/tags or answer keywords)."""
        return json.loads(self.file.read_text(encoding="utf-8"))


QUESTION_SETS = {s.name: s for s in (
    QuestionSet("named", "documents", CORPUS / "questions.json", "dev"),
    QuestionSet("paraphrased", "documents", CORPUS / "questions_paraphrased.json", "dev"),
    QuestionSet("manuals-dev", "manuals", MANUALS / "questions_dev.json", "dev"),
    QuestionSet("manuals-test", "manuals", MANUALS / "questions_test.json", "test"),
    QuestionSet("cjk-test", "cjk", CJK / "questions_test.json", "test"),
)}


OWN = "own"  # the name of a user's own question set (`bench-docs --own FOLDER QUESTIONS`)
_FOLDER = "folder:"  # a corpus that is a user's folder: "folder:/path/to/docs"


def own_set(folder: Path, questions: Path) -> QuestionSet:
    """A user's own documents and questions as a held-out set named "own": ``questions`` is a JSON list
    in the format of bench/data/manuals/questions_test.json, each question naming its ``source`` file in
    ``folder``. Raises UsageError, naming what is wrong and where, before anything is ingested."""
    from pgpt.runtime.errors import UsageError

    if not folder.is_dir():
        raise UsageError(f"bench-docs --own: {folder} is no folder.", hint="Give the folder of your documents first, "
                         "then the questions file.")
    try:
        items = json.loads(questions.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise UsageError(f"bench-docs --own: cannot read the questions file {questions}: {error}.",
                         hint="Give a JSON list of questions (README, bench-docs, your own questions).") from None
    problems = question_problems(items, {path.name for path in folder_files(folder)})
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise UsageError(f"bench-docs --own: {questions}: {'; '.join(problems[:3])}{more}.",
                         hint="Each question is an object with \"question\", \"source\" (a file name in the "
                              "folder) and \"answers\" (a list, empty with \"unanswerable\": true); README, "
                              "bench-docs, shows one.")
    return QuestionSet(OWN, _FOLDER + str(folder.resolve()), questions, "test")


def question_problems(items: Any, names: set[str]) -> list[str]:
    """What keeps ``items`` from being a question set over files named ``names``: one phrase per fault."""
    if not isinstance(items, list) or not items:
        return ["it holds no JSON list of questions"]
    problems = []
    for number, item in enumerate(items, 1):
        # by its id where it has one: a position alone had to be counted out in the file (t85)
        which = f"question {number}" + (f" ({item['id']})" if isinstance(item, dict) and item.get("id") else "")
        if not isinstance(item, dict) or not str(item.get("question") or "").strip():
            problems.append(f"{which} has no \"question\" text")
        elif item.get("source") not in names:
            problems.append(f"{which}: its source {item.get('source')!r} is no file of the folder")
        elif not item.get("unanswerable") and not (isinstance(item.get("answers"), list) and item["answers"]):
            problems.append(f"{which} has no \"answers\" and is not marked \"unanswerable\"")
    return problems


def build(corpus: str, target: Path) -> list[Path]:
    """Write the corpus named ``corpus`` into ``target``; its files, sorted."""
    if corpus.startswith(_FOLDER):
        return copy_folder(Path(corpus[len(_FOLDER):]), target)
    return {"documents": build_corpus, "manuals": build_manuals, "cjk": build_cjk}[corpus](target)


def folder_files(folder: Path) -> list[Path]:
    """The files under ``folder``, sorted; a link, which may lead out of the folder, is neither listed
    nor followed (as ingest does)."""
    import os

    return sorted(Path(root) / name for root, _, names in os.walk(folder)  # os.walk enters no linked folder
                  for name in names if (Path(root) / name).is_file() and not (Path(root) / name).is_symlink())


def copy_folder(folder: Path, target: Path) -> list[Path]:
    """A user's folder's files (``folder_files``) copied into ``target``; the copies, sorted."""
    target.mkdir(parents=True, exist_ok=True)
    copies = []
    for path in folder_files(folder):
        copies.append(target / path.relative_to(folder))
        copies[-1].parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, copies[-1])
    return copies


def build_corpus(target: Path) -> list[Path]:
    """Write the first corpus into ``target``: the plain texts plus HTML, PDF and DOCX conversions."""
    target.mkdir(parents=True, exist_ok=True)
    for name in PLAIN_FILES:
        shutil.copy(CORPUS / name, target / name)
    (target / "textual.html").write_text(markdown_to_html((CORPUS / "textual.md").read_text(encoding="utf-8")),
                                         encoding="utf-8")
    lines = QUALITY_TEXT.read_text(encoding="utf-8").splitlines()
    write_pdf(target / "apache-2.0.pdf", [lines[i:i + 48] for i in range(0, len(lines), 48)])
    _write_docx(target / "tqdm-licence.docx", (CORPUS / "tqdm-licence.txt").read_text(encoding="utf-8"))
    return sorted(target.iterdir())


def build_manuals(target: Path) -> list[Path]:
    """Copy the second corpus (stored in its final formats) into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(MANUALS.iterdir()):
        if path.suffix in MANUAL_SUFFIXES and path.name != "SOURCES.md":
            shutil.copy(path, target / path.name)
    return sorted(target.iterdir())


def build_cjk(target: Path) -> list[Path]:
    """Copy the Chinese and Japanese guides (Markdown and text) into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(CJK.iterdir()):
        if path.suffix in (".md", ".txt") and path.name != "SOURCES.md":
            shutil.copy(path, target / path.name)
    return sorted(target.iterdir())


def markdown_to_html(text: str) -> str:
    """A small Markdown-to-HTML conversion (headings and paragraphs) for the HTML member of the corpus."""
    import html

    parts = ["<html><head><title>corpus</title><style>body{font:14px sans-serif}</style></head><body>"]
    for block in re.split(r"\n\s*\n", text):
        heading = re.match(r"^(#{1,6})\s+(.*)", block.strip())
        if heading:
            level = len(heading.group(1))
            parts.append(f"<h{level}>{html.escape(heading.group(2))}</h{level}>")
        elif block.strip():
            parts.append(f"<p>{html.escape(block.strip())}</p>")
    return "\n".join(parts + ["</body></html>"])


def write_pdf(path: Path, pages: list[list[str]]) -> None:
    """A PDF with a real text layer: one Helvetica line per list item ([] = a page without text)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, lines in enumerate(pages):
        shown = " ".join(f"({_pdf_escape(line)}) Tj T*" for line in lines)
        stream = f"BT /F1 9 Tf 11 TL 40 760 Td {shown} ET".encode("latin-1", "replace") if lines else b""
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R "
                       f">> >> /Contents {5 + 2 * i} 0 R >>".encode())
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))


def _pdf_escape(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _write_docx(path: Path, text: str) -> None:
    from docx import Document

    document = Document()
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    document.add_heading(paragraphs[0].splitlines()[0], level=1)
    for paragraph in paragraphs:
        document.add_paragraph(" ".join(paragraph.split()))
    document.save(str(path))
