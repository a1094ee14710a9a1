"""Hostile files of the reliability probe (../shared/research/reliability-probe.md), made as it made them.

Each maker writes one file into a folder; ``hostile_folder`` puts one of each damaged kind
among good files, the way a real folder of thousands of files holds a few bad ones.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

CONTENT_TYPES = (b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                 b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                 b'<Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" '
                 b'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
                 b'</Types>')
RELS = (b'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
        b'officeDocument" Target="word/document.xml"/></Relationships>')
BODY_START = b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>'
BODY_END = b"</w:t></w:r></w:p></w:body></w:document>"
# The escape sequences of probe rows 3.7/3.8: clear screen, OSC 52 clipboard (BEL and ST forms),
# OSC 8 link, OSC 0 title, C1 CSI/OSC/ST, SGR colour; and Textual markup.
ESCAPES = ("Clear \x1b[2J screen. Clipboard \x1b]52;c;cHduZWQ=\x07 done \x1b]52;c;cHduZWQ=\x1b\\ too. "
           "Link \x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\ title \x1b]0;pwned\x07 C1 \x9b2J CSI "
           "\x9d0;title\x9c OSC \x1b[31mred\x1b[0m [bold red]MARKUP[/bold red] [@click=app.quit]QUIT[/] [B]")
ESCAPE_NAME = "m_esc\x1b[2J\x1b]52;c;cHduZWQ=\x07name.txt"
C1_NAME = "m_c1\x9b2Jname.txt"


def docx_bytes(body: bytes) -> bytes:
    """A minimal .docx whose word/document.xml is ``body``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", RELS)
        archive.writestr("word/document.xml", body)
    return buffer.getvalue()


def good_docx(text: str) -> bytes:
    """A .docx holding one paragraph of ``text``."""
    return docx_bytes(b'<?xml version="1.0"?>' + BODY_START + text.encode() + BODY_END)


def malformed_xml_docx() -> bytes:
    """Probe 3.3: document.xml ends inside a tag."""
    return docx_bytes(b'<?xml version="1.0"?>' + BODY_START + b"unclosed")


def entity_bomb_docx() -> bytes:
    """Probe 3.3: a billion-laughs entity bomb in document.xml."""
    entities = b"".join(b'<!ENTITY l%d "%s">' % (k, (b"&l%d;" % (k - 1)) * 10) for k in range(1, 10))
    return docx_bytes(b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY l0 "lol">' + entities + b"]>"
                      + BODY_START + b"&l9;" + BODY_END)


def bad_deflate_docx() -> bytes:
    """Probe 3.2: one byte of document.xml's deflate data changed."""
    data = bytearray(good_docx("The docx codeword is GOODDOCX."))
    at = data.find(b"word/document.xml") + len("word/document.xml") + 5
    data[at] ^= 0x55
    return bytes(data)


def lying_zip_bomb_docx(expanded: int = 30_000_000) -> bytes:
    """Probe 3.2: document.xml of ``expanded`` bytes whose zip headers claim 1000 bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", RELS)
        info = zipfile.ZipInfo("word/document.xml")
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, b" " * expanded)
    data = bytearray(buffer.getvalue())
    local = data.rfind(b"PK\x03\x04", 0, data.find(b"word/document.xml"))  # its local header
    data[local + 22:local + 26] = (1000).to_bytes(4, "little")
    central = data.rfind(b"PK\x01\x02", 0, data.rfind(b"word/document.xml"))  # its central entry
    data[central + 24:central + 28] = (1000).to_bytes(4, "little")
    return bytes(data)


def pdf_bytes(text: str = "Hello PDF text GOODPDF words", stream: bytes = b"", image: bool = False) -> bytes:
    """Probe 3.6's one-page PDF with a plain xref table (so a byte change lands where it is meant to):
    ``text`` on one line, or the content ``stream`` given (font /F1; with ``image``, a 1x1 image /Im1)."""
    stream = stream or b"BT /F1 12 Tf 72 720 Td (" + text.encode() + b") Tj ET"
    images = b" /XObject << /Im1 6 0 R >>" if image else b""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >>%s >> "
               b"/Contents 4 0 R >>" % images,
               b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    if image:
        objects.append(b"<< /Type /XObject /Subtype /Image /Width 1 /Height 1 /ColorSpace /DeviceGray "
                       b"/BitsPerComponent 8 /Length 1 >>\nstream\n\x80\nendstream")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def damaged_xref_pdf() -> bytes:
    """Probe 3.6: the xref subsection header `0 6` became `0 66` (pypdf: LimitReachedError)."""
    return pdf_bytes().replace(b"xref\n0 6\n", b"xref\n0 66")


def damaged_trailer_pdf() -> bytes:
    """Probe 3.6: the `trailer` keyword became `trailer6` (pypdf: AttributeError)."""
    return pdf_bytes().replace(b"trailer\n", b"trailer6")


def hostile_folder(root: Path) -> dict[str, str]:
    """A folder of good files with one damaged file of each kind the probe found among them.

    Returns:
        The bad entries' names (as ``os.listdir`` gives them) with a word their reason must hold.
    """
    root.mkdir(parents=True)
    (root / "a_good.txt").write_text("The first good codeword is GOODALPHA.")
    (root / "m_good.docx").write_bytes(good_docx("The docx codeword is GOODDOCX."))
    (root / "m_good.pdf").write_bytes(pdf_bytes())
    (root / "m_good.html").write_text("<html><body><h1>Good</h1><p>The html codeword is GOODHTML.</p></body></html>")
    (root / "z_good.md").write_text("# Last\n\nThe last good codeword is GOODOMEGA.")
    bad = {"m_badxml.docx": (malformed_xml_docx(), "damaged .docx"),
           "m_laughs.docx": (entity_bomb_docx(), "DTD"),
           "m_badcrc.docx": (bad_deflate_docx(), "damaged .docx"),
           "m_liar.docx": (lying_zip_bomb_docx(), "damaged .docx"),
           "m_xref.pdf": (damaged_xref_pdf(), "damaged PDF"),
           "m_trailer.pdf": (damaged_trailer_pdf(), "damaged PDF")}
    for name, (data, _) in bad.items():
        (root / name).write_bytes(data)
    reasons = {name: word for name, (_, word) in bad.items()}
    bad_name = os.fsencode(root) + b"/m_bad\xff\xfename.txt"  # not UTF-8 (probe 3.9)
    with open(bad_name, "wb") as handle:
        handle.write(b"bad utf8 name\n")
    reasons[os.fsdecode(b"m_bad\xff\xfename.txt")] = "not valid UTF-8"
    (root / "m_l1.txt").symlink_to("m_l2.txt")  # a symlink loop (probe 3.12)
    (root / "m_l2.txt").symlink_to("m_l1.txt")
    reasons["m_l1.txt"] = reasons["m_l2.txt"] = "symlink loop"
    return reasons


GOOD_WORDS = ("GOODALPHA", "GOODDOCX", "GOODPDF", "GOODHTML", "GOODOMEGA")
