#!/usr/bin/env python3
r"""Build bench/data/manuals/ (the second bench-docs corpus) from PyPI source distributions.

Not run by the benchmark: its outputs are committed, so that every run reads the same bytes and
the evidence spans of the questions stay true. Run it again only to rebuild the corpus:

    pip download --no-binary :all: --no-deps -d SDISTS flask==3.1.3 coverage==7.17.5 jinja2==3.1.6 \
        arrow==1.4.0 click==8.5.1 black==26.10.1 paramiko==5.1.0 pathspec==1.1.1 yamllint==1.38.0 \
        pygments==2.21.0
    (cd SDISTS && for f in *.tar.gz; do tar xzf $f; done)
    python scripts/build_manuals_corpus.py SDISTS

Needs pandoc and LibreOffice (Debian: pandoc, libreoffice-writer-nogui, hyphen-en-us) and
python-docx. Sphinx-only markup in the .rst sources (roles, py:data, version-added, tabs) is
rewritten to plain reStructuredText first, the way Sphinx would show it; the PDFs get a running
header, a page-number footer and justified, hyphenated text, as printed manuals have.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

TARGET = Path(__file__).resolve().parents[1] / "bench" / "data" / "manuals"
_ROLE = re.compile(r":(?:py:)?[a-z]+(?::[a-z]+)?:`([^`]+)`")
_ENTRY_DIRECTIVES = ("py:data", "data", "function", "class", "method", "property", "attribute", "envvar")
_DROPPED_DIRECTIVES = ("highlight", "toctree", "py:currentmodule", "currentmodule", "jinja:filters",
                       "jinja:tests", "module", "autoclass", "automodule")


def role_text(match: re.Match[str]) -> str:
    """What Sphinx shows for a role: the link text, or the last dotted name of a ``~`` target."""
    body = match.group(1)
    titled = re.match(r"^(.*?)\s*<[^>]+>$", body, re.S)
    if titled:
        return titled.group(1)
    if body.startswith("~"):
        body = body[1:].split(".")[-1]
    return f"``{body}``"


def sphinx_to_rst(text: str) -> str:
    """Plain reStructuredText for pandoc: Sphinx directives and roles rewritten."""
    lines = _ROLE.sub(role_text, text).splitlines()  # a role's text may run over a line break
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        match = re.match(r"^(\s*)\.\. ([a-z:-]+)::\s*(.*)$", line)
        if not match:
            out.append(line)
            i += 1
            continue
        indent, name, argument = match.groups()
        body, i = _directive_body(lines, i + 1, len(indent))
        out.extend(_rewrite_directive(indent, name, argument, body))
    return "\n".join(out) + "\n"


def _directive_body(lines: list[str], start: int, indent: int) -> tuple[list[str], int]:
    """The lines of a directive's body (indented deeper than the directive), dedented; options dropped."""
    body: list[str] = []
    i = start
    while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
        body.append(lines[i])
        i += 1
    while body and not body[-1].strip():
        body.pop()
        i -= 1
    dedented = textwrap.dedent("\n".join(body)).splitlines()
    while dedented and re.match(r"^:[a-z-]+:", dedented[0]):
        dedented.pop(0)
    return dedented, i


def _rewrite_directive(indent: str, name: str, argument: str, body: list[str]) -> list[str]:
    inner = sphinx_to_rst("\n".join(body)).splitlines() if body else []
    pad = indent + "    "
    if name in _DROPPED_DIRECTIVES:
        return []
    if name in _ENTRY_DIRECTIVES:  # a definition list entry, as Sphinx renders <dl><dt>..</dt><dd>..</dd>
        content = [line for line in inner]
        while content and not content[0].strip():
            content.pop(0)
        return [indent + argument] + [pad + line if line.strip() else "" for line in content] + [""]
    if name in ("version-added", "versionadded", "versionchanged", "version-changed", "deprecated"):
        verb = {"version-added": "Added", "versionadded": "Added", "deprecated": "Deprecated"}.get(name, "Changed")
        text = " ".join(line.strip() for line in inner if line.strip())
        return ["", f"{indent}*{verb} in version {argument}.*" + (f" {text}" if text else ""), ""]
    if name in ("admonition", "note", "warning", "rubric", "tip", "important", "attention", "seealso"):
        title = argument or name.capitalize()
        return ["", f"{indent}**{_ROLE.sub(role_text, title)}**", ""] + [indent + line for line in inner] + [""]
    if name == "tabs":
        return [indent + line for line in inner]
    if name == "code-tab":
        caption = next((re.sub(r"^\s*:caption:\s*", "", line) for line in body if ":caption:" in line), argument)
        code = [line for line in body if not re.match(r"^\s*:[a-z-]+:", line)]
        return ["", f"{indent}{caption}::", ""] + [pad + line if line.strip() else "" for line in code] + [""]
    if name in ("code-block", "sourcecode", "code"):
        code = [line for line in body if not re.match(r"^\s*:[a-z-]+:", line)]
        return ["", f"{indent}.. code-block:: {argument}", ""] + [pad + line if line.strip() else "" for line in code] + [""]
    return [f"{indent}.. {name}:: {argument}"] + [pad + line if line.strip() else "" for line in body]


def licence_to_markdown(text: str) -> str:
    """A plain-text licence as Markdown: centred lines and numbered section titles become headings."""
    blocks = [b for b in re.split(r"\n\s*\n", text) if b.strip()]
    out = []
    for block in blocks:
        lines = block.splitlines()
        first = lines[0]
        centred = len(first) - len(first.lstrip()) >= 8 and len(lines) <= 2
        section = len(lines) == 1 and re.match(r"^\s*\d+\.\s+[A-Z][^.]*\.\s*$", first)
        joined = " ".join(line.strip() for line in lines)
        if centred or section:
            out.append(("# " if centred else "## ") + joined)
        else:
            out.append(joined.replace("*", r"\*").replace("<", r"\<"))
    return "\n\n".join(out) + "\n"


def pandoc(source: Path, fmt: str, target: Path, title: str, text: str | None = None) -> None:
    """Convert with pandoc (``text`` replaces the file's content when given)."""
    with tempfile.TemporaryDirectory() as tmp:
        if text is not None:
            source = Path(tmp) / ("in" + source.suffix)
            source.write_text(text, encoding="utf-8")
        reader = {".rst": "rst", ".md": "markdown", ".txt": "markdown"}[source.suffix]
        args = ["pandoc", "-f", reader, "-t", fmt, "--metadata", f"title={title}", "-o", str(target), str(source)]
        subprocess.run(args + (["-s"] if fmt.startswith("html") else []), check=True)


def print_layout(docx: Path, header: str) -> None:
    """Give a .docx a running header, a "Page N" footer and justified, hyphenated paragraphs."""
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    document = Document(str(docx))
    section = document.sections[0]
    section.header.paragraphs[0].text = header
    footer = section.footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    footer.add_run("Page ")
    field = OxmlElement("w:fldSimple")
    field.set(qn("w:instr"), "PAGE")
    run = OxmlElement("w:r")
    number = OxmlElement("w:t")
    number.text = "1"
    run.append(number)
    field.append(run)
    footer._p.append(field)
    for paragraph in document.paragraphs:
        if not paragraph.style.name.startswith(("Heading", "Title", "Source")):
            paragraph.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
    settings = document.settings.element
    settings.append(OxmlElement("w:autoHyphenation"))
    document.save(str(docx))


def to_pdf(docx: Path, target: Path) -> None:
    """LibreOffice's PDF export of a .docx."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["soffice", "--headless", f"-env:UserInstallation=file://{tmp}/profile",
                        "--convert-to", "pdf", "--outdir", tmp, str(docx)], check=True, capture_output=True)
        shutil.move(str(Path(tmp) / (docx.stem + ".pdf")), target)


def build(sdists: Path, target: Path = TARGET) -> None:
    """Write every corpus file into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    src = {name: next(sdists.glob(f"{name}-*/")) for name in
           ("flask", "coverage", "jinja2", "arrow", "click", "black", "paramiko", "pathspec", "yamllint", "pygments")}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # PDF: the GPL v3 (yamllint's LICENSE) and coverage.py's configuration reference, printed.
        gpl = work / "gpl-3.0.docx"
        pandoc(Path("LICENSE.md"), "docx", gpl, "GNU General Public License",
               licence_to_markdown((src["yamllint"] / "LICENSE").read_text(encoding="utf-8")))
        print_layout(gpl, "GNU General Public License, version 3")
        to_pdf(gpl, target / "gpl-3.0.pdf")
        coverage = work / "coverage-config.docx"
        config_rst = sphinx_to_rst((src["coverage"] / "doc" / "config.rst").read_text(encoding="utf-8"))
        pandoc(Path("config.rst"), "docx", coverage, "Coverage.py configuration reference", config_rst)
        print_layout(coverage, "Coverage.py 7.17.5 documentation: Configuration reference")
        to_pdf(coverage, target / "coverage-config.pdf")
    # HTML: paramiko's SFTP API page as shipped (Sphinx output), Flask's configuration page via pandoc.
    shutil.copy(src["paramiko"] / "docs" / "api" / "sftp.html", target / "paramiko-sftp.html")
    flask_rst = sphinx_to_rst((src["flask"] / "docs" / "config.rst").read_text(encoding="utf-8"))
    pandoc(Path("config.rst"), "html5", target / "flask-config.html", "Configuration Handling", flask_rst)
    # DOCX: Jinja's template designer documentation and Arrow's user guide (with its token tables).
    jinja_rst = sphinx_to_rst((src["jinja2"] / "docs" / "templates.rst").read_text(encoding="utf-8"))
    pandoc(Path("templates.rst"), "docx", target / "jinja-templates.docx", "Template Designer Documentation",
           jinja_rst)
    arrow_rst = sphinx_to_rst((src["arrow"] / "docs" / "guide.rst").read_text(encoding="utf-8"))
    pandoc(Path("guide.rst"), "docx", target / "arrow-guide.docx", "Arrow User's Guide", arrow_rst)
    # Markdown and plain text as shipped.
    shutil.copy(src["click"] / "docs" / "options.md", target / "click-options.md")
    shutil.copy(src["black"] / "docs" / "usage_and_configuration" / "the_basics.md", target / "black-basics.md")
    shutil.copy(src["paramiko"] / "LICENSE", target / "lgpl-2.1.txt")
    shutil.copy(src["pathspec"] / "LICENSE", target / "mpl-2.0.txt")
    shutil.copy(src["pygments"] / "CHANGES", target / "pygments-changes.txt")


def main(argv: list[str]) -> int:
    """``SDISTS`` is the folder of unpacked source distributions (see above); --help shows this file's
    docstring (--help was taken as SDISTS, and it failed with a traceback after creating the target)."""
    if len(argv) != 1 or argv[0] in ("-h", "--help") or not Path(argv[0]).is_dir():
        print("usage: scripts/build_manuals_corpus.py SDISTS\n" + (__doc__ or ""),
              file=sys.stdout if argv[:1] in (["-h"], ["--help"]) else sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    build(Path(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
