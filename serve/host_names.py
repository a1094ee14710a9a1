"""This machine's own names and addresses: what a client that reaches a server bound to every
address (0.0.0.0 or ::) may put in its Host header, so the allow-list can name them by default."""

from __future__ import annotations

import functools
import ipaddress
import socket
from pathlib import Path


@functools.cache  # getfqdn may wait on DNS; the start line and the Host guard both ask
def machine_names() -> frozenset[str]:
    """The host name, its fully qualified form, and every local IPv4 and IPv6 address (lower case).

    Linux lists all local addresses in /proc (aliases included, which ``getaddrinfo`` of the host
    name misses); elsewhere, what the resolver gives for the host name.
    """
    names = {socket.gethostname().lower(), socket.getfqdn().lower()}
    try:
        names.update(str(info[4][0]).lower() for info in socket.getaddrinfo(socket.gethostname(), None))
    except OSError:  # a host name the resolver does not know: the /proc lists still hold the addresses
        pass
    names.update(_ipv4_local(Path("/proc/net/fib_trie")))
    names.update(_ipv6_local(Path("/proc/net/if_inet6")))
    return frozenset(n.split("%", 1)[0] for n in names if n)


def _ipv4_local(path: Path) -> set[str]:
    """Addresses that /proc/net/fib_trie marks "/32 host LOCAL" (the line after the address)."""
    lines, found = _lines(path), set()
    for previous, line in zip(lines, lines[1:]):
        if line.strip() == "/32 host LOCAL" and previous.strip().startswith("|--"):
            found.add(previous.strip()[3:].strip())
    return found


def _ipv6_local(path: Path) -> set[str]:
    """Addresses of /proc/net/if_inet6 (32 hex digits first on each line)."""
    found = set()
    for line in _lines(path):
        try:
            found.add(str(ipaddress.IPv6Address(bytes.fromhex(line.split()[0]))))
        except (ValueError, IndexError):
            continue
    return found


def _lines(path: Path) -> list[str]:
    """The file's lines; none where it cannot be read (not Linux, a container without /proc)."""
    try:
        return path.read_text().splitlines()
    except OSError:
        return []
