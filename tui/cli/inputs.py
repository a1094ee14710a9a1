"""Text arguments of the command line: ``-`` reads standard input; empty text is a usage error.
Also the options that mean nothing with a server."""

from __future__ import annotations

import sys

from pgpt.runtime.errors import UsageError

STDIN = "-"


def text_argument(value: str, what: str) -> str:
    """The text of a prompt, question or query argument.

    ``-`` reads all of standard input, so a long question needs no argument (Linux refuses one
    argument over 128 KiB). Text that is empty or only whitespace is refused: a model asked
    nothing invents an answer, and a search for nothing finds nothing.

    Raises:
        UsageError: the text is empty (exit code 2).
    """
    raw = sys.stdin.buffer.read() if value == STDIN else value.encode("utf-8", "surrogateescape")
    # Bytes that are no UTF-8 reached the tokenizer as lone surrogates and failed as "a bug in pgpt";
    # then, as U+FFFD without a word, "café" in Latin-1 was "caf�" and the answer "not found" (t54)
    text = _decoded(raw) if value == STDIN else raw.decode("utf-8", "replace")
    if not text.strip():
        if value == STDIN:  # the user did use `-`: the text was missing from the pipe
            raise UsageError(f"Nothing to do: standard input was empty, so there is no {what}.",
                             hint=f"Pipe the {what} in (echo 'TEXT' | pgpt-tui ... -), or give it as an argument in "
                                  "quotes.")
        raise UsageError(f"Nothing to do: the {what} is empty.",
                         hint=f"Give the {what} as an argument in quotes, or `-` to read it from standard input.")
    return text.strip() if value == STDIN else text


def _decoded(raw: bytes) -> str:
    """Standard input's text: UTF-8, else the locale's encoding (an ISO-8859-1 terminal or file);
    bytes neither can read become U+FFFD, said on stderr."""
    import locale

    from pgpt.runtime.sanitize import codec_name

    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    encoding = locale.getpreferredencoding(False)
    if codec_name(encoding) not in ("utf-8", "ascii"):  # neither reads what UTF-8 could not
        try:
            return raw.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            pass
    text = raw.decode("utf-8", "replace")
    lost = text.count("\ufffd")
    print(f"pgpt-tui: standard input is not UTF-8: {lost} character{'s' if lost != 1 else ''} could not be read and "
          f"{'were' if lost != 1 else 'was'} replaced by \ufffd (convert it first, such as with iconv -f latin1 -t "
          "utf-8).", file=sys.stderr)
    return text


def refuse_no_cache_on_server(no_cache: bool) -> None:
    """``--no-cache`` with ``--server``: the server's caches serve all its clients, and `chat`
    took a cached answer without a word while `ask` refused.

    Raises:
        UsageError: when ``no_cache`` is set.
    """
    if no_cache:
        raise UsageError("--no-cache applies to answers made here; the server's caches serve all its clients.",
                         hint="Leave out --no-cache, or run without --server (PGPT_SERVER) to bypass them.")
