"""pgpt-tui's command line refused: arguments argparse cannot parse, or words it was not given, each a
one-paragraph usage error (exit 2) on stderr and, with --json, the JSON error on stdout as for any
other error (a wrapper's json.loads(stdout) raised on `search wifi -k 0 --json`, t71)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from pgpt.runtime.errors import UserMessage
from pgpt.runtime.sanitize import dumps_json, strip_controls


class ParseError(Exception):
    """argparse refused the arguments; ``prog`` is the (sub)command's, ``text`` argparse's message."""

    def __init__(self, prog: str, text: str) -> None:
        super().__init__(text)
        self.prog, self.text = prog, text


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors come back to main() (which knows whether --json was asked for)
    instead of ending the process; its subcommands' parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        """Print the usage, as argparse does, unless the message names the argument whose value was
        refused (`ask -k 50` printed the whole usage block before its one line, t79, t81); raise
        ParseError for main() to report."""
        if not message.startswith("argument "):
            self.print_usage(sys.stderr)
        raise ParseError(self.prog, _with_a_guess(message))


def _with_a_guess(message: str) -> str:
    """argparse's "invalid choice" with the closest choice named ("did you mean ingest?") and the long
    list of choices left to --help: `pgpt-tui injest` listed all 15 commands and guessed none (t84)."""
    import difflib
    import re

    match = re.fullmatch(r"argument (\S+): invalid choice: '(.*)' \(choose from (.*)\)", message, re.DOTALL)
    if not match:
        return message
    choices = [choice.strip().strip("'") for choice in match[3].split(",")]
    guess = difflib.get_close_matches(match[2], choices, n=1, cutoff=0.6)
    what = "command" if match[1] == "COMMAND" else match[1].strip("-").lower()
    return (f"no {what} named {match[2]!r}" + (f"; did you mean {guess[0]}?" if guess else "")
            + f" ({what}s: {', '.join(choices)})")


def usage_error(text: str, wants_json: bool) -> int:
    """Print a usage error (stderr; stdout too as JSON when asked) and return its exit code, 2."""
    print(strip_controls(UserMessage("Usage error", text).line()), file=sys.stderr)
    if wants_json:
        print(dumps_json({"error": {"title": "Usage error", "code": "usage", "message": text, "exit_code": 2}}), flush=True)
    return 2


def unknown_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace, unknown: list[str]) -> int:
    """Exit 2 naming what was not understood, the nearest option of the command, and its --help
    (argparse printed the top level's usage for `ingest docs --colection x`)."""
    import difflib

    command = getattr(args, "command", None)
    choices = next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), {})
    where = choices.get(command, parser) if command else parser
    options = [flag for action in where._actions for flag in action.option_strings]
    guess = next((difflib.get_close_matches(word.split("=")[0], options, n=1) for word in unknown
                  if word.startswith("-")), [])
    prog = f"pgpt-tui {command}" if command else "pgpt-tui"
    print(where.format_usage().rstrip(), file=sys.stderr)
    words = unquoted_words(where, args, unknown)
    if words and words[0] == "repo":  # `check not a repo` said "check does not take a repo"
        text = (f"{prog} takes one Hugging Face repo id, such as HuggingFaceTB/SmolLM2-135M-Instruct, not the "
                f"words {words[1]!r}.")
    elif words:  # `ask What is the MPL` said "ask does not take is the MPL": the cause is the missing quotes
        text = (f"{prog} takes its {words[0]} as one argument: put it in quotes, {prog} \"{words[1]}\""
                + (" (or - to read it from standard input)." if command in ("ask", "chat") else "."))
    else:
        text = (f"{prog} does not take {' '.join(unknown)}." + (f" Did you mean {guess[0]}?" if guess else "")
                + f" See `{prog} --help`.")
    return usage_error(text, getattr(args, "json", False))


def unquoted_words(parser: argparse.ArgumentParser, args: argparse.Namespace,
                    unknown: list[str]) -> tuple[str, str] | None:
    """(the positional's name, the words joined) when the words left over are no options and the
    command takes one text (a question, a query, a repo id): they were meant as one argument."""
    if any(word.startswith("-") for word in unknown):
        return None
    positionals = [a for a in parser._actions if not a.option_strings and a.nargs is None]
    if len(positionals) != 1 or not isinstance(getattr(args, positionals[0].dest, None), (str, Path)):
        return None  # a path too: `forget sp dir/my notes.txt` said "forget does not take dir/my notes.txt"
    action = positionals[0]
    return (action.metavar or action.dest).lower(), " ".join([str(getattr(args, action.dest)), *unknown])
