"""Settings of `pgpt-serve`: command line over ``PGPT_*`` environment over a ``.env`` file over defaults.

The API key is read from a file (``--api-key-file``, ``PGPT_API_KEY_FILE``) or ``PGPT_API_KEY``,
never from the command line, where ``ps`` would show it to every user of the machine.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pgpt.runtime.errors import ConfigError
from pgpt.runtime.footprint import DEFAULT_CONTEXT

DEFAULT_PORT = 8642
MIN_CONTEXT = 256  # the scheduler reads prompts 256 tokens at a time; fewer hold no question worth asking
MAX_PARALLEL = 256  # vLLM's default number of sequences; beyond it the KV buffer alone outgrows any machine
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class ServeSettings:
    """How the server listens, whom it lets in and how much work it takes.

    Attributes:
        host: Address to bind; 127.0.0.1 unless a key is set. ``PGPT_HOST``.
        port: TCP port. ``PGPT_PORT``.
        model: Chat model served as ``default``; empty: the active one. ``PGPT_MODEL``.
        api_key: Bearer key every route but /health requires; empty: no key (loopback only).
        parallel: Sequences generated at once. ``PGPT_PARALLEL``.
        context: Tokens one sequence may hold, prompt and answer (at most the model's own); the KV
            buffer holds ``parallel`` of them, all in memory from the model's load. ``PGPT_CONTEXT``.
        max_queue: Requests waiting for a slot before new ones get 503. ``PGPT_MAX_QUEUE``.
        max_tokens_cap: Upper bound of a request's max_tokens. ``PGPT_MAX_TOKENS_CAP``.
        keep_alive_s: Idle seconds before a model unloads; -1 never. ``PGPT_KEEP_ALIVE``.
        keep_alive_fixed: Requests' ``keep_alive`` is ignored: one client unloaded (0) or pinned (-1)
            the shared model for every other (t74). ``PGPT_KEEP_ALIVE_FIXED``.
        max_loaded: Chat models loaded at once. ``PGPT_MAX_LOADED``.
        allowed_hosts: Host header names accepted besides the loopback ones; ``*`` any. ``PGPT_ALLOWED_HOSTS``.
        cors_origins: Browser origins allowed by CORS; empty: CORS off. ``PGPT_CORS_ORIGINS``.
        max_body_mb: Largest request body (uploads included), in MB. ``PGPT_MAX_BODY_MB``.
        client_timeout_s: Seconds a request may take to send its headers, and a body may pause between
            two reads, before the connection is dropped; -1 never. ``PGPT_CLIENT_TIMEOUT``.
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    model: str = ""
    api_key: str = field(default="", repr=False)
    parallel: int = 4
    context: int = DEFAULT_CONTEXT
    max_queue: int = 16
    max_tokens_cap: int = 1024
    keep_alive_s: float = 1800.0
    keep_alive_fixed: bool = False
    max_loaded: int = 2
    allowed_hosts: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    max_body_mb: int = 32
    client_timeout_s: float = 60.0

    @property
    def max_body_bytes(self) -> int:
        """The body cap in bytes."""
        return self.max_body_mb * 1_000_000

    @property
    def loopback(self) -> bool:
        """Whether the server listens on this machine only."""
        return is_loopback(self.host)

    def host_names(self) -> frozenset[str]:
        """Host header names (without port) that the server answers; empty set when any is allowed."""
        if "*" in self.allowed_hosts:
            return frozenset()
        names = {*LOOPBACK_NAMES, *(h.lower() for h in self.allowed_hosts)}
        if self.host not in WILDCARD_HOSTS:
            names.add(self.host.lower())
        else:  # every address: clients reach it by this machine's names and addresses
            from pgpt.serve.host_names import machine_names

            names.update(machine_names())
        return frozenset(names)

    def check(self) -> None:
        """Refuse settings that would expose the server or cannot work (see the messages)."""
        if not self.loopback and not self.api_key:
            raise ConfigError(
                f"pgpt-serve refuses to listen on {self.host or 'every address'} without an API key: anyone who "
                "can reach that address could use the model and read the indexed documents.",
                hint="Create a key (mkdir -p ~/.config/pgpt; "
                     "(umask 077; openssl rand -hex 32 > ~/.config/pgpt/api-key)) "
                     "and pass --api-key-file ~/.config/pgpt/api-key (or set PGPT_API_KEY), or keep "
                     "--host 127.0.0.1 and reach it through an SSH tunnel.")
        if not self.loopback and (weak := weak_key(self.api_key)):
            raise ConfigError(
                f"pgpt-serve refuses to listen on {self.host or 'every address'} with this API key: {weak}.",
                hint="Use a random key of 32 hexadecimal characters or more: put the output of `openssl rand -hex 32` "
                     "in the key file (or PGPT_API_KEY; an environment file such as systemd's runs no commands, "
                     "so $(...) stays text).")
        if "*" in self.allowed_hosts and not self.api_key:
            raise ConfigError("--allowed-hosts '*' is refused without an API key: a web page could then reach "
                              "the server by rebinding its own DNS name to this machine (ollama's CVE-2024-28224).",
                              hint="List the names clients use (--allowed-hosts gpu-box.example), or set a key "
                                   "(--api-key-file) as a server behind a proxy needs.")
        if any(o.strip() == "*" for o in self.cors_origins):
            raise ConfigError("--cors-origins '*' is refused: any web page could then call the server from "
                              "a visitor's browser.", hint="List the exact origins, e.g. http://localhost:3000.")
        for origin in self.cors_origins:  # a browser sends scheme://host[:port]; anything else matches nothing
            if not _ORIGIN.fullmatch(origin.strip()):
                raise ConfigError(f"--cors-origins {origin[:80]!r} is not an origin: an origin is "
                                  "http(s)://host[:port], without a path.",
                                  hint="List the exact origins, e.g. http://localhost:3000.")


# A key anyone can guess opens the model and the documents to the network: a short one, or a
# command that was pasted where no shell runs it (the README's `$(openssl rand -hex 32)`).
MIN_KEY_CHARS = 16


def weak_key(key: str) -> str:
    """Why ``key`` is too weak for a server on the network ('' when it is not); never quotes it."""
    if "$(" in key or "`" in key or "${" in key:
        return "it holds a shell command ($(...) or backticks) that was never run"
    if any(c.isspace() for c in key):
        return "it holds spaces"
    if len(key) < MIN_KEY_CHARS:
        return f"it has {len(key)} characters, fewer than {MIN_KEY_CHARS}"
    # Length alone let "passwordpassword", "1234567890123456" and "your-api-key-here" guard a
    # server on the network (t52).
    if re.match(r"[A-Za-z_][A-Za-z0-9_]*=[^=]", key):  # not base64's "==" padding
        return "it is a whole NAME=value line; keep only the value"
    lowered = key.lower()
    if any(word in lowered for word in _PLACEHOLDERS):
        return "it is a placeholder or a common word, not a random key"
    if len(set(key)) < MIN_DISTINCT_CHARS:
        return f"it uses only {len(set(key))} different characters"
    steps = [ord(b) - ord(a) for a, b in zip(key, key[1:], strict=False)]
    if sum(step in (1, -1, 0, -9) for step in steps) >= 0.75 * len(steps):  # 0123456789012345, abcdefgh...
        return "it is a run of consecutive characters"
    return ""


MIN_DISTINCT_CHARS = 8
_PLACEHOLDERS = ("password", "passw0rd", "changeme", "change-me", "change_me", "replaceme", "replace-me",
                 "your-api-key", "your_api_key", "yourapikey", "api-key-here", "apikeyhere", "example", "xxxxxx",
                 "qwerty", "letmein", "secret-key", "secretkey")


_ORIGIN = re.compile(r"https?://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?")


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `pgpt-serve` (defaults None: unset options fall back to the environment)."""
    from pgpt.runtime.arg_types import non_negative_int, positive_int, tcp_port

    parser.add_argument("--host", help="address to bind (default 127.0.0.1; others need an API key)")
    parser.add_argument("--port", type=tcp_port, help=f"TCP port, 1 to 65535 (default {DEFAULT_PORT})")
    parser.add_argument("--model", help="chat model served as 'default' (default: the active one)")
    parser.add_argument("--api-key-file", type=Path, metavar="FILE",
                        help="file holding the API key clients must send as 'Authorization: Bearer KEY'")
    parser.add_argument("--parallel", type=positive_int, help=f"sequences generated at once (default 4, at most "
                                                              f"{MAX_PARALLEL})")
    parser.add_argument("--context", type=positive_int, metavar="TOKENS",
                        help=f"tokens one sequence may hold, prompt and answer, {MIN_CONTEXT} to the model's own "
                             f"(default {DEFAULT_CONTEXT}); the KV buffer of --parallel such sequences is taken when "
                             "the model loads")
    parser.add_argument("--max-queue", type=non_negative_int, help="requests that may wait for a slot (default 16)")
    parser.add_argument("--max-tokens-cap", type=positive_int, help="largest max_tokens a request gets (default 1024)")
    parser.add_argument("--keep-alive", metavar="DURATION",
                        help="idle time before a model unloads: 30m, 1h, 90s, 0 or -1 for never (default 30m)")
    parser.add_argument("--keep-alive-fixed", action="store_true", default=None,
                        help="ignore requests' keep_alive, so that no client can unload or pin a model for the "
                             "others; --keep-alive holds")
    parser.add_argument("--max-loaded", type=positive_int, help="chat models loaded at once (default 2)")
    parser.add_argument("--allowed-hosts", nargs="+", metavar="NAME",
                        help="Host header names accepted besides localhost (* for any; DNS-rebinding guard)")
    parser.add_argument("--cors-origins", nargs="+", metavar="ORIGIN",
                        help="browser origins allowed to call the server (default: none, CORS off)")
    parser.add_argument("--max-body-mb", type=positive_int, help="largest request body or upload in MB (default 32)")
    parser.add_argument("--client-timeout", metavar="DURATION",
                        help="time a client may take to send its request headers, and may pause while sending a "
                             "body, before it is dropped: 60s, 2m, or -1 for never (default 60s)")


def serve_settings(args: argparse.Namespace, env: Mapping[str, str]) -> ServeSettings:
    """Combine the command line with ``env`` (the environment over the ``.env`` file)."""
    from pgpt.runtime.arg_types import duration_seconds

    def pick(arg: object, name: str, default: str) -> str:
        return str(arg) if arg is not None else env.get(name, "") or default

    def number(arg: object, name: str, default: int, lowest: int, highest: int | None = None) -> int:
        raw = pick(arg, name, str(default))
        # as it was given: `--parallel 300` was told of "PGPT_PARALLEL=300" (t63)
        flag = f"--{name.removeprefix('PGPT_').lower().replace('_', '-')} " if arg is not None else ""
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{flag}{raw} is not a whole number." if flag else
                              f"{name}={raw!r} is not a whole number.") from None
        given = f"{flag}{value}" if flag else f"{name}={value}"
        if value < lowest:
            raise ConfigError(f"{given} is below the lowest allowed value, {lowest}.")
        if highest is not None and value > highest:
            raise ConfigError(f"{given} is above the highest allowed value, {highest}.")
        return value

    try:
        keep_alive = duration_seconds(pick(args.keep_alive, "PGPT_KEEP_ALIVE", "30m"))
    except argparse.ArgumentTypeError as exc:
        raise ConfigError(f"--keep-alive / PGPT_KEEP_ALIVE: {exc}.") from None
    client_timeout = _client_timeout(pick(args.client_timeout, "PGPT_CLIENT_TIMEOUT", "60s"))
    return ServeSettings(
        host=pick(args.host, "PGPT_HOST", "127.0.0.1"),
        port=number(args.port, "PGPT_PORT", DEFAULT_PORT, 1, 65535),
        model=pick(args.model, "PGPT_MODEL", ""),
        api_key=read_api_key(args.api_key_file, env),
        # bounds a server can run with: --context 10 refused every request, --parallel 100000 failed to
        # load the model (its KV buffer), both after a start that looked fine (t49)
        parallel=number(args.parallel, "PGPT_PARALLEL", 4, 1, MAX_PARALLEL),
        context=number(args.context, "PGPT_CONTEXT", DEFAULT_CONTEXT, MIN_CONTEXT),
        max_queue=number(args.max_queue, "PGPT_MAX_QUEUE", 16, 0),
        max_tokens_cap=number(args.max_tokens_cap, "PGPT_MAX_TOKENS_CAP", 1024, 1),
        keep_alive_s=keep_alive,
        keep_alive_fixed=bool(args.keep_alive_fixed) or _yes(env.get("PGPT_KEEP_ALIVE_FIXED", ""),
                                                             "PGPT_KEEP_ALIVE_FIXED"),
        max_loaded=number(args.max_loaded, "PGPT_MAX_LOADED", 2, 1),
        allowed_hosts=tuple(args.allowed_hosts or _names(env.get("PGPT_ALLOWED_HOSTS", ""))),
        cors_origins=tuple(args.cors_origins or _names(env.get("PGPT_CORS_ORIGINS", ""))),
        max_body_mb=number(args.max_body_mb, "PGPT_MAX_BODY_MB", 32, 1),
        client_timeout_s=client_timeout,
    )


def _client_timeout(text: str) -> float:
    """Seconds from ``--client-timeout`` / ``PGPT_CLIENT_TIMEOUT``; -1 for no limit; under a second refused
    (0 dropped every client before its first byte)."""
    from pgpt.runtime.arg_types import duration_seconds

    try:
        seconds = duration_seconds(text)
    except argparse.ArgumentTypeError as exc:
        raise ConfigError(f"--client-timeout / PGPT_CLIENT_TIMEOUT: {exc}.") from None
    if 0 <= seconds < MIN_CLIENT_TIMEOUT_S:
        raise ConfigError(f"--client-timeout / PGPT_CLIENT_TIMEOUT is {seconds:g} s: under {MIN_CLIENT_TIMEOUT_S:g} s, "
                          "clients would be dropped before they could send a request.",
                          hint="Give a time such as 60s, or -1 for no limit.")
    return seconds


MIN_CLIENT_TIMEOUT_S = 1.0  # a request's headers cross a slow link in well under a second


def read_api_key(path: Path | None, env: Mapping[str, str]) -> str:
    """The key from ``path``, else ``PGPT_API_KEY_FILE``, else ``PGPT_API_KEY``; '' when none is set.

    Raises:
        ConfigError: the file is missing, empty, or readable by other users, or the key is not one line of ASCII.
    """
    from pgpt.runtime.settings import checked_key, read_key_file

    if path is None and env.get("PGPT_API_KEY_FILE"):
        path = Path(env["PGPT_API_KEY_FILE"])
    return read_key_file(path) if path is not None else checked_key(env.get("PGPT_API_KEY", ""), "PGPT_API_KEY")


def _names(text: str) -> list[str]:
    return [part for part in text.replace(",", " ").split() if part]


def _yes(value: str, name: str) -> bool:
    """A yes/no variable: 1/true/yes or 0/false/no/empty (anything else is refused, not read as no)."""
    word = value.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("", "0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={value!r} is neither yes nor no.", hint=f"Set {name}=1 to turn it on, or unset it.")
