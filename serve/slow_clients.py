"""Drop clients that send a request too slowly (slowloris): uvicorn sets no such limit.

uvicorn closes a connection idle for 5 s between two requests, but one that sends nothing, sends its
request headers a byte at a time, or stops halfway through a body stays open as long as the client
likes. Anyone who can reach the port could so hold connections and file descriptors without a key,
since the key only arrives with the headers (t52). Here, as nginx's client_header_timeout and
client_body_timeout do, a request has ``client_timeout_s`` from the connection's start (or from the
previous answer's end) to finish its headers, and a body may pause that long between two reads.
A client late with its headers gets a 408 and the connection closes; one that stalls mid-body is
cut off, which its route sees as a client that left (an upload is then not indexed).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pgpt.serve.errors import error_payload, json_bytes

log = logging.getLogger("pgpt.serve")


def timeout_response(client_timeout_s: float) -> bytes:
    """The raw 408 a client late with its headers gets (h11 sends no answer before a request)."""
    body = json_bytes(error_payload(408, f"Request timeout: the request's headers did not arrive within "
                                         f"{client_timeout_s:g} s (--client-timeout).", "request_timeout"))
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def protocol_class(client_timeout_s: float) -> Any:
    """uvicorn's h11 protocol with the read deadlines above; ``client_timeout_s`` <= 0: none (as uvicorn)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    if client_timeout_s <= 0:
        return H11Protocol

    class TimedH11Protocol(H11Protocol):  # type: ignore[misc]
        """Arms one timer: the headers' deadline while the client is between requests or inside its
        headers, restarted at every read while it sends a body, off while the server answers."""

        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._follow()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._follow()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._follow()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _follow(self) -> None:
            state = self.conn.their_state
            if self.transport.is_closing():
                self._disarm()
            elif state is h11.IDLE:  # awaiting or reading headers: one deadline for all of them
                if self._deadline is None:
                    self._arm()
            elif state is h11.SEND_BODY:  # a body: the deadline moves with every read
                self._arm()
            else:  # the request is in: the answer may take as long as it takes
                self._disarm()

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(client_timeout_s, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            state = self.conn.their_state
            if state is h11.SEND_BODY and self.flow.read_paused:  # we stopped reading, not the client
                self._arm()
                return
            where = "%s:%d" % tuple(self.client[:2]) if self.client else "a client"
            if state is h11.IDLE and self.conn.trailing_data[0]:  # part of a request came: say why it ends
                log.info("dropped %s: its request headers took over %g s", where, client_timeout_s)
                self.transport.write(timeout_response(client_timeout_s))
            elif state is h11.SEND_BODY:
                log.info("dropped %s: its request body paused for over %g s", where, client_timeout_s)
            self.transport.close()

    return TimedH11Protocol
