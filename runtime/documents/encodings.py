"""Text of an unknown encoding: what a file's bytes say, in this order. A byte-order mark; UTF-16
without one (zero bytes at every other position); UTF-8, also with a few stray bytes; a Latin code
page when the high bytes are accented letters among ASCII ones; a Cyrillic or Greek single-byte page
or Japanese, told from Chinese by their words and kana; then GBK for short texts and
charset_normalizer's detection for the rest. Binary data raises :class:`NotText`.
"""

from __future__ import annotations

import codecs
import re

_SHORT_TEXT = 200  # bytes: below this, charset detection guesses badly (GBK read as cp949)
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


class NotText(ValueError):
    """The bytes are no text in any encoding (the reason is the message)."""


def decode_bytes(data: bytes) -> str:
    """Decode bytes of an unknown encoding, or raise NotText for binary data."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    if b"\x00" in data[:8192]:
        if (wide := _utf16_without_bom(data)) is not None:
            return wide
        raise NotText("binary file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if (mostly := _mostly_utf8(data)) is not None:
        return mostly
    runs = [len(run) for run in re.findall(rb"[\x80-\xff]+", data)]
    if _latin_like(data, runs):
        return data.decode(_latin_code_page(data), errors="replace")
    if (text := _single_byte_script(data, runs) or _japanese(data)) is not None:
        return text
    if len(data) < _SHORT_TEXT:
        try:
            return data.decode("gb18030")
        except UnicodeDecodeError:
            return data.decode(_latin_code_page(data), errors="replace")
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise NotText("binary file (no text encoding fits)")
    return str(best)


# The accented letters (and typographic marks) each Latin code page's languages use: the page whose
# reading of the bytes gives the most of its own wins (charset_normalizer read French as cp1250). A
# high byte that a page reads as a symbol (cp1252's "£", "³", "¿" for Polish "Ł", "ł", "ż") counts
# against it; "õ" counts half for cp1252 (Portuguese and Estonian only), where cp1250's "ő" is
# Hungarian's everyday letter (hétfőn was read as "hétfõn" and never found, t50).
_CODE_PAGE_LETTERS = {
    "cp1252": "àâäæçéèêëîïìíôöòóœùûüúÿñãßøåÀÂÄÆÇÉÈÊËÎÏÔÖŒÙÛÜÑØÅ’‘“”–—€…«»°",
    "cp1250": "ąćęłńóśźżčďěňřšťůžáéíúýôäöüőűĄĆĘŁŃÓŚŹŻČĎĚŇŘŠŤŮŽÁÉÍÚÝÖÜŐŰ’‘“”„–—€…°",
    "iso8859_2": "ąćęłńóśźżčďěňřšťůžáéíúýôäöüőűĄĆĘŁŃÓŚŹŻČĎĚŇŘŠŤŮŽÁÉÍÚÝÖÜŐŰ°",
    "cp1254": "çğışöüâîûÇĞİŞÖÜ’‘“”–—€…",
}
_HALF = {"cp1252": "õÕ"}
_SYMBOL_COST = 2.0


def _latin_code_page(data: bytes) -> str:
    """cp1252, cp1250, ISO-8859-2 or cp1254 for single-byte Latin text: the page that gives its own
    letters most and symbols least."""
    def score(page: str) -> float:
        letters, half = set(_CODE_PAGE_LETTERS[page]), set(_HALF.get(page, ""))
        total = 0.0
        for char in data.decode(page, errors="replace"):
            if ord(char) > 0x7F:
                total += 1.0 if char in letters else 0.5 if char in half else \
                    0.0 if char.isalpha() or char in _PUNCTUATION else -_SYMBOL_COST
        return total

    return max(_CODE_PAGE_LETTERS, key=score)  # a tie keeps the first, cp1252


_PUNCTUATION = "’‘“”„–—€…«»°·•\u00a0"  # marks any page's text has, not a sign of the wrong page


def _mostly_utf8(data: bytes) -> str | None:
    """UTF-8 with its few stray bytes replaced, when valid UTF-8 letters outnumber them
    (a 4 MB UTF-8 file with 8 Latin-1 bytes was read whole as another code page)."""
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    good = len(text) - len(text.encode("ascii", "ignore")) - bad  # valid non-ASCII characters
    # Valid multi-byte sequences hardly ever occur by chance in a code page's text: three and twice
    # the stray bytes settle it too (a note with 5 UTF-8 umlauts and one pasted cp1252 "€" became
    # "BÃ¼ro", t50).
    return text if good >= 10 * bad or (good >= 3 and good >= 2 * bad) else None


def _latin_like(data: bytes, runs: list[int]) -> bool:
    """Whether the bytes above 0x7F look like a Latin code page's accented letters: in runs of at most
    four (ü, üß, Polish "żółć") among mostly ASCII letters, a run of three or four inside a word. A CJK
    character is two high bytes and a CJK text is made of them (gb18030 and charset_normalizer read
    "Coruña" as "Coru鎙", and "Grüße" as "Gre"); a Chinese name between spaces is a run apart ("上海 is")."""
    if not runs or max(runs) > 4:
        return False
    for found in re.finditer(rb"([A-Za-z]?)([\x80-\xff]{3,})([A-Za-z]?)", data):
        if not (found.group(1) or found.group(3)):
            return False
    ascii_letters = len(re.findall(rb"[A-Za-z]", data))
    return sum(runs) < ascii_letters


# A single-byte code page of a non-Latin script is told from a CJK one by its words: high-byte runs
# of odd length (a CJK character is two bytes); the page, from the share of that language's ten most
# common letters in the text it gives (Russian bytes read as Greek are letters too, but rare ones).
_SCRIPT_PAGES = (("cp1251", "оеаинтсрвл"), ("koi8_r", "оеаинтсрвл"), ("cp1253", "αοειτσςνηυρ"))
_COMMON_SHARE = 0.35


def _single_byte_script(data: bytes, runs: list[int]) -> str | None:
    """Cyrillic (cp1251, KOI8-R) or Greek (cp1253) text in its single-byte code page, or None. Short
    files were read as cp1252 or GBK mojibake, never found by their words (t50)."""
    if len(runs) < 2 or sum(run % 2 for run in runs) < 0.2 * len(runs):
        return None
    best, best_share = None, _COMMON_SHARE
    for page, common in _SCRIPT_PAGES:
        try:
            text = data.decode(page)
        except UnicodeDecodeError:
            continue
        high = [char.lower() for char in text if ord(char) > 0x7F]
        letters = [char for char in high if char.isalpha()]
        if len(letters) >= 0.8 * len(high) and (share := sum(c in common for c in letters) / len(letters)) > best_share:
            best, best_share = text, share
    return best


def _japanese(data: bytes) -> str | None:
    """Japanese in Shift_JIS (Windows' cp932) or EUC-JP, told from Chinese by its kana: a quarter of
    the characters or more (Chinese text has none). Short files were read as GBK mojibake (t50)."""
    for page in ("cp932", "euc_jp"):
        try:
            text = data.decode(page)
        except UnicodeDecodeError:
            continue
        wide = [char for char in text if ord(char) > 0x7F]
        if wide and sum("\u3040" <= char <= "\u30ff" for char in wide) >= 0.25 * len(wide):
            return text
    return None


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 text that starts without a byte-order mark (a Windows export): zero bytes at every
    other position, as Latin text's high bytes are; None for anything else (it was "binary file", t47)."""
    head = data[:4096] if len(data) % 2 == 0 else data[:4095]
    evens, odds = head[0::2], head[1::2]
    for zeros, text, encoding in ((odds, evens, "utf-16-le"), (evens, odds, "utf-16-be")):
        if zeros.count(0) >= 0.9 * len(zeros) and text.count(0) <= 0.01 * len(text) and len(head) >= 16:
            try:
                decoded = data[: len(data) - len(data) % 2].decode(encoding)
            except UnicodeDecodeError:
                return None
            printable = sum(c.isprintable() or c in "\n\r\t" for c in decoded[:2048])
            return decoded if printable >= 0.95 * min(len(decoded), 2048) else None
    return None


# A page's own declaration, as browsers read it: <meta charset>, <meta http-equiv ... charset=...> or
# an XML declaration, in the first bytes. The labels browsers read as another codec (the WHATWG
# Encoding standard): Latin-1 and ASCII as windows-1252, GB2312 and GBK as GB18030, Shift_JIS as cp932.
_DECLARED = re.compile(rb"<meta[^>]*?charset\s*=\s*[\"']?\s*([\w.:-]+)|<\?xml[^>]*?encoding\s*=\s*[\"']([\w.:-]+)",
                       re.IGNORECASE)
_BROWSER_LABELS = {"latin_1": "cp1252", "ascii": "cp1252", "iso8859_1": "cp1252", "gb2312": "gb18030",
                   "gbk": "gb18030", "shift_jis": "cp932", "euc_kr": "cp949", "big5": "big5hkscs",
                   "iso8859_9": "cp1254", "tis_620": "cp874"}


def decode_html(data: bytes) -> str:
    """An HTML page's bytes as text: a byte-order mark first, then the charset the page declares,
    then detection as for any text. Only a few declared charsets were read (detection guessed the
    others): Shift_JIS, Big5 and KOI8-R pages were mojibake and lost text (t50)."""
    if not any(data.startswith(bom) for bom, _ in _BOMS) and (declared := _declared_codec(data[:4096])):
        try:
            return data.decode(declared)
        except UnicodeDecodeError:  # a page that says UTF-8 and is cp1252 (common): detection reads it better
            pass
    return decode_bytes(data)


def _declared_codec(head: bytes) -> str | None:
    found = _DECLARED.search(head)
    if found is None:
        return None
    label = (found.group(1) or found.group(2)).decode("ascii", "replace")
    try:
        name = codecs.lookup(label).name.replace("-", "_")
    except LookupError:
        return None
    if name.startswith("utf_16") or name.startswith("utf_32"):
        return None  # a page with no BOM that says UTF-16 is not UTF-16 (browsers read it as UTF-8)
    return _BROWSER_LABELS.get(name, name)
