"""The Battlesnake API v1 over HTTP/1.1, on an asyncio event loop with h11; its command line, ``battlesnake-rl
serve``, is in ``serve``.

One event loop holds every connection, so an open connection costs a few kilobytes, not a thread; h11 parses
HTTP/1.1 (keep-alive, as the engine's client reuses connections; pipelining; framing). A request that has arrived
whole is answered by the ``SnakeApp`` on one of ``REQUEST_THREADS`` threads; a ``/move`` is answered by its deadline
(``game.timeout`` after the request's first byte, less the latency margin: see ``app``). Limits (``ServerLimits``),
each answered with a JSON ``{"error": "..."}`` and the connection closed:

- a request must arrive whole, headers and body, within ``--request-timeout`` (5 s) of its first byte (408): a
  client trickling a byte at a time holds its connection for that long at most;
- a connection with no request in progress is closed after ``--keep-alive`` (10 s) without one;
- a POST needs a ``Content-Length`` of at most ``--max-body-bytes`` (411 / 413 before the body is read); headers
  hold at most ``MAX_HEADER_BYTES`` (431; 414 for the request line);
- at most ``--max-client-connections`` (64) open connections per client address: beyond, a 503 at once;
- at most ``--max-connections`` (256) in all: beyond, the connection that has waited longest without a complete
  request (idle, or still sending one) is closed to make room when it has waited ``EVICT_AFTER_S`` or more, else the
  new connection gets a 503.

A bad request never touches another game. ``start_in_thread`` serves from a thread (tests, benchmarks, notebooks).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from http import HTTPStatus

import h11

from .app import PendingMove, SnakeApp, reply_bytes

log = logging.getLogger(__name__)

DEFAULT_PORT = 8000
#: Threads that read complete requests (a ``/move``'s body and fallback; its deadline is waited for by the loop).
REQUEST_THREADS = 16
#: Bytes a request's headers may take (431), and its target (414). h11 refuses a larger head while it is still
#: arriving; one that arrives whole in a single read is measured once parsed.
MAX_HEADER_BYTES = 32 * 1024
MAX_TARGET_BYTES = 8 * 1024
#: Bytes of replies a connection may leave unread before it is dropped (a client that sends and never reads).
MAX_UNREAD_REPLY_BYTES = 1024 * 1024
#: Seconds a connection must have waited without a complete request before a full server closes it for a new one.
EVICT_AFTER_S = 1.0
#: A ``/move`` reply written this long after its deadline is counted late (``stats["late_replies"]``): the host did
#: not give the server the CPU it needed in time (the latency margin is what is left for the network).
LATE_REPLY_S = 0.05
#: After an error reply, what the client still sends is read and dropped for this long (or this many bytes) before the
#: connection closes: closing with unread data would reset it, and the client could lose the reply.
LINGER_S = 2.0
LINGER_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ServerLimits:
    """Bounds on connections (see the module docstring); seconds are wall-clock."""

    max_connections: int = 256
    max_client_connections: int = 64
    request_timeout_s: float = 5.0
    keep_alive_s: float = 10.0
    evict_after_s: float = EVICT_AFTER_S

    def __post_init__(self) -> None:
        if self.max_connections < 1 or self.max_client_connections < 1:
            raise ValueError(f"max_connections and max_client_connections must be >= 1, got "
                             f"{self.max_connections} and {self.max_client_connections}")
        if not (self.request_timeout_s > 0 and self.keep_alive_s > 0 and self.evict_after_s >= 0):
            raise ValueError(f"request_timeout_s and keep_alive_s must be > 0 and evict_after_s >= 0, got "
                             f"{self.request_timeout_s}, {self.keep_alive_s}, {self.evict_after_s}")


def _raw_reply(status: int, error: str) -> bytes:
    """A complete JSON error response that closes the connection, written without h11 (which may be past use)."""
    data = reply_bytes({"error": error})
    phrase = HTTPStatus(status).phrase
    return (f"HTTP/1.1 {status} {phrase}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            f"Connection: close\r\n\r\n").encode("ascii") + data


class _Connection(asyncio.Protocol):
    """One client connection: reads requests through h11 within the limits, hands whole ones to the server's
    request threads, writes the replies. Phases: ``idle`` (no request in progress), ``receiving`` (first byte seen),
    ``answering`` (the app is working; reading paused), ``closing`` (an error reply sent; no longer counted in the
    limits, what still arrives is dropped for ``LINGER_S``)."""

    def __init__(self, server: SnakeServer):
        self.server = server
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        self.transport: asyncio.Transport | None = None
        self.client = ""
        self.phase = "idle"
        self.since = time.perf_counter()  # when the current phase began
        self.received = 0.0  # perf_counter() of the current request's first byte
        self.registered = False  # counted in the server's connection limits
        self.closed = False
        self._timer: asyncio.TimerHandle | None = None
        self._request: h11.Request | None = None
        self._body = bytearray()
        self._line_ended = False  # a line end arrived in this request (a header error is then not the request line)
        self._pipelined_at: float | None = None  # first byte of a request that arrived while answering the last
        self._dropped = 0  # bytes read and dropped while closing

    # ------------------------------------------------------------------ asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.client = str(peer[0]) if peer else ""
        refusal = self.server._admit(self)
        if refusal:
            self._close_with(503, refusal)
            return
        self._enter("idle")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_timer()
        self.server._release(self)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if self.phase == "closing":
            self._dropped += len(data)
            if self._dropped > LINGER_BYTES:
                self._close()
            return
        now = time.perf_counter()
        if self.phase == "answering":
            self._pipelined_at = self._pipelined_at or now
        elif self.phase == "idle":
            self._start_request(now)
        if b"\n" in data:
            self._line_ended = True
        self.h11.receive_data(data)
        if self.phase == "receiving":
            self._read_events()

    def eof_received(self) -> bool:
        if self.phase == "closing":
            self._close()
            return False
        self.h11.receive_data(b"")
        if self.phase == "answering":
            return True  # half-closed after sending its request: the reply still goes out, then the close
        self._read_events()
        return False

    # ------------------------------------------------------------------ requests

    def _start_request(self, now: float) -> None:
        self._enter("receiving", now)
        self.received = now
        self._line_ended = False
        self._arm(self.server.limits.request_timeout_s, self._request_timed_out)

    def _read_events(self) -> None:
        while not self.closed and self.phase == "receiving":
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as e:
                status = e.error_status_hint
                if status == 431 and not self._line_ended:
                    status = 414
                self._close_with(status, f"{status} {HTTPStatus(status).phrase}: {e}")
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                if not self._accept(event):
                    return
            elif isinstance(event, h11.Data):
                self._body += event.data  # within the Content-Length checked above
            elif isinstance(event, h11.EndOfMessage):
                self._dispatch()
                return
            elif isinstance(event, h11.ConnectionClosed):
                self._close()
                return

    def _accept(self, request: h11.Request) -> bool:
        """Check the request's size and framing before its body is read; False after refusing it."""
        self._request, self._body = request, bytearray()
        if len(request.target) > MAX_TARGET_BYTES:
            self._close_with(414, f"the request target is {len(request.target)} bytes; at most {MAX_TARGET_BYTES}")
            return False
        if sum(len(name) + len(value) + 4 for name, value in request.headers) > MAX_HEADER_BYTES:
            self._close_with(431, f"the headers take more than {MAX_HEADER_BYTES} bytes")
            return False
        headers = {name: value for name, value in request.headers}
        if b"transfer-encoding" in headers:
            self._close_with(411, "send the body with a Content-Length (chunked bodies are not read)")
            return False
        length = headers.get(b"content-length")
        if length is None:
            if request.method not in (b"GET", b"HEAD"):
                self._close_with(411, "a POST needs a Content-Length header")
                return False
            return True
        limit = self.server.app.limits.max_body_bytes
        if int(length) > limit:  # h11 has checked that it is a non-negative integer
            self._close_with(413, f"the body is {int(length)} bytes; this server reads at most {limit}")
            return False
        return True

    def _dispatch(self) -> None:
        self._enter("answering")
        self._cancel_timer()
        self.transport.pause_reading()
        request = self._request
        method = request.method.decode("ascii", "replace")
        path = request.target.decode("latin-1")
        work = self.server._loop.run_in_executor(self.server._requests, self.server._begin, method, path,
                                                 bytes(self._body), self.received)
        work.add_done_callback(lambda done: self._answer(method, done.result()))

    def _answer(self, method: str, begun: tuple[int, dict] | PendingMove) -> None:
        """Reply now, or for a ``/move`` when its worker is done or at its deadline, whichever comes first: the
        event loop waits, so the reply goes out from here without another thread's hand-over."""
        if not isinstance(begun, PendingMove):
            self._reply(method, *begun)
            return
        pending, loop = begun, self.server._loop
        if pending.work is None or pending.work.done():
            self._reply(method, 200, pending.reply())
            return
        sent = []

        def finish() -> None:
            if not sent:
                sent.append(True)
                timer.cancel()
                self._reply(method, 200, pending.reply())  # counted even when the client has left
                if time.perf_counter() > pending.deadline + LATE_REPLY_S:
                    self.server.stats["late_replies"] += 1

        timer = loop.call_at(loop.time() + pending.deadline - time.perf_counter(), finish)
        pending.work.add_done_callback(lambda _: loop.call_soon_threadsafe(finish))

    def _reply(self, method: str, status: int, reply: dict) -> None:
        if self.closed or self.phase == "closing":
            return  # the client left while the app was answering
        data = reply_bytes(reply)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        try:
            out = self.h11.send(h11.Response(status_code=status, headers=headers,
                                             reason=HTTPStatus(status).phrase.encode()))
            if method != "HEAD":
                out += self.h11.send(h11.Data(data=data))
            out += self.h11.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            log.debug("cannot reply to %s", self.client, exc_info=True)
            self._close()
            return
        self.transport.write(out)
        if self.h11.our_state is not h11.DONE or self.h11.their_state is not h11.DONE:
            self._close()  # the client asked to close, spoke HTTP/1.0, or left half-way
            return
        if self.transport.get_write_buffer_size() > MAX_UNREAD_REPLY_BYTES:
            self._close()
            return
        self.h11.start_next_cycle()
        self._request, self._body = None, bytearray()
        pipelined, self._pipelined_at = self._pipelined_at, None
        buffered, peer_closed = self.h11.trailing_data
        if peer_closed and not buffered:
            self._close()  # the client half-closed after its request: nothing more will come
            return
        self._enter("idle")
        self.transport.resume_reading()
        if buffered or pipelined is not None:  # the next request already began arriving
            self._start_request(pipelined or time.perf_counter())
            self._read_events()

    # ------------------------------------------------------------------ timers and closing

    def _enter(self, phase: str, now: float | None = None) -> None:
        self.phase = phase
        self.since = time.perf_counter() if now is None else now
        if phase == "idle":
            self._arm(self.server.limits.keep_alive_s, self._close)

    def _arm(self, seconds: float, callback) -> None:
        self._cancel_timer()
        self._timer = self.server._loop.call_later(seconds, callback)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _request_timed_out(self) -> None:
        self.server.stats["timed_out"] += 1
        self._close_with(408, f"the request did not arrive whole within {self.server.limits.request_timeout_s:g} s "
                              f"of its first byte")

    def _close_with(self, status: int, error: str) -> None:
        """Send an error reply and close: stop counting the connection, end the writing side, drop what still
        arrives for ``LINGER_S`` at most, then close."""
        if self.closed or self.phase == "closing":
            return
        self.server._release(self)
        self.phase = "closing"
        self.transport.write(_raw_reply(status, error))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        if not self.transport.is_reading():
            self.transport.resume_reading()
        self._arm(LINGER_S, self._close)

    def _close(self) -> None:
        self._cancel_timer()
        if not self.closed:
            self.closed = True
            self.server._release(self)
            self.transport.close()


class SnakeServer:
    """The HTTP server of one ``SnakeApp`` (see the module docstring): binds at once, serves in ``serve_forever``.

    ``stats`` counts connections: ``accepted``, ``refused`` (503), ``evicted`` (closed to make room), ``timed_out``
    (a request that did not arrive whole in time); and ``late_replies``, ``/move`` replies written more than
    ``LATE_REPLY_S`` after their deadline.
    """

    def __init__(self, address: tuple[str, int], app: SnakeApp, limits: ServerLimits | None = None):
        self.app = app
        self.limits = limits if limits is not None else ServerLimits()
        self._socket = socket.create_server(address, backlog=128)
        self.server_address = self._socket.getsockname()
        self.stats = {"accepted": 0, "refused": 0, "evicted": 0, "timed_out": 0, "late_replies": 0}
        self._connections: set[_Connection] = set()
        self._per_client: Counter[str] = Counter()
        self._requests = ThreadPoolExecutor(REQUEST_THREADS, thread_name_prefix="snake-request")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._serving = threading.Event()
        self._done = threading.Event()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def serve_forever(self) -> None:
        """Serve until ``shutdown`` (from another thread) or Ctrl-C."""
        try:
            asyncio.run(self._serve())
        finally:
            self._done.set()

    def shutdown(self) -> None:
        """Stop serving (from another thread): no new connections, replies in progress go out (for at most 2 s);
        returns when ``serve_forever`` has."""
        if self._loop is not None and self._serving.is_set() and not self._done.is_set():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._done.wait()

    def server_close(self) -> None:
        self._socket.close()
        self._requests.shutdown(wait=False)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await self._loop.create_server(lambda: _Connection(self), sock=self._socket)
        self._serving.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            for conn in list(self._connections):
                if conn.phase != "answering":
                    conn._close()
            for _ in range(200):  # replies in progress: at most a move's deadline, waited 2 s at most
                if not self._connections:
                    break
                await asyncio.sleep(0.01)
            for conn in list(self._connections):
                conn._close()

    def _admit(self, conn: _Connection) -> str:
        """Count a new connection in, making room if needed; the reason for a 503 when it cannot be."""
        limits = self.limits
        if self._per_client[conn.client] >= limits.max_client_connections:
            self.stats["refused"] += 1
            return f"too many connections from {conn.client} (at most {limits.max_client_connections})"
        if len(self._connections) >= limits.max_connections:
            waiting = [c for c in self._connections if c.phase != "answering"]
            stalest = min(waiting, key=lambda c: c.since, default=None)
            if stalest is None or time.perf_counter() - stalest.since < limits.evict_after_s:
                self.stats["refused"] += 1
                return f"too many connections (at most {limits.max_connections})"
            self.stats["evicted"] += 1
            if stalest.phase == "receiving":
                stalest._close_with(503, "closed to make room: the request took too long to arrive")
            else:
                stalest._close()
        self._connections.add(conn)
        self._per_client[conn.client] += 1
        conn.registered = True
        self.stats["accepted"] += 1
        return ""

    def _release(self, conn: _Connection) -> None:
        if conn.registered:
            conn.registered = False
            self._connections.discard(conn)
            self._per_client[conn.client] -= 1
            if not self._per_client[conn.client]:
                del self._per_client[conn.client]

    def _begin(self, method: str, path: str, raw: bytes, received: float) -> tuple[int, dict] | PendingMove:
        try:
            begun = self.app.begin(method, path, raw, received)
        except Exception:  # never let a request take the server down
            log.exception("internal error on %s %s", method, path[:80])
            begun = 500, {"error": "internal error (logged by the server)"}
        log.debug("%s %s -> %s", method, path[:80], "a move" if isinstance(begun, PendingMove) else begun[0])
        return begun


def start_in_thread(app: SnakeApp, host: str = "127.0.0.1", port: int = 0, limits: ServerLimits | None = None,
                    **overrides) -> SnakeServer:
    """Serve ``app`` from a daemon thread (tests, benchmarks); stop with ``server.shutdown(); server.server_close()``.
    Port 0 picks a free port: read it from ``server.url``. ``overrides`` replace fields of ``limits`` (e.g.
    ``max_connections=8``)."""
    limits = limits if limits is not None else ServerLimits()
    if overrides:
        names = {f.name for f in fields(ServerLimits)}
        unknown = set(overrides) - names
        if unknown:
            raise TypeError(f"unknown server limits {sorted(unknown)}; known: {sorted(names)}")
        limits = ServerLimits(**{**{n: getattr(limits, n) for n in names}, **overrides})
    server = SnakeServer((host, port), app, limits)
    threading.Thread(target=server.serve_forever, name="battlesnake-http", daemon=True).start()
    while not server._serving.wait(0.05):
        if server._done.is_set():
            raise RuntimeError("the server stopped before it served (see the log)")
    return server
