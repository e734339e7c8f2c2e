"""``battlesnake-rl serve``: the Battlesnake API v1 over HTTP, on the standard library's threading HTTP server.

How to run::

    battlesnake-rl serve --model runs/<name>            # the run's model/policy.pt and its config.json
    battlesnake-rl serve                                 # no model: the flood bot plays
    battlesnake-rl serve --model runs/<name> --port 8001 --color '#ff8800' --head smart-caterpillar --tail bolt

One thread per connection (HTTP/1.1 keep-alive, as the engine's client reuses connections). Every request is
bounded before it is read: a POST needs a ``Content-Length`` of at most ``--max-body-bytes`` (411 / 413 otherwise),
a connection that stays silent for ``CONNECTION_TIMEOUT_S`` is closed, and beyond ``--max-connections`` open
connections (64) new ones get a 503 at once. Errors are JSON ``{"error": "..."}`` with a 4xx status; a bad request never
touches another game.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .app import Appearance, SnakeApp, reply_bytes
from .request import Limits
from .safety import DEFAULT_SEARCH_MS, SafetyLayer
from .search import ARENA_TIMEOUT_MS, DEFAULT_NETWORK_SEARCH_MS, DEFAULT_TERRITORY_WEIGHT, NetworkSearch, SearchSettings

log = logging.getLogger(__name__)

#: Seconds a connection may stay silent (between requests, or inside one) before it is closed.
CONNECTION_TIMEOUT_S = 10.0
DEFAULT_PORT = 8000


class SnakeRequestHandler(BaseHTTPRequestHandler):
    """Reads one bounded request, asks the server's ``SnakeApp``, writes a JSON reply."""

    protocol_version = "HTTP/1.1"
    server_version = "battlesnake-rl"
    timeout = CONNECTION_TIMEOUT_S
    server: SnakeHTTPServer

    def setup(self) -> None:
        super().setup()
        # a reply goes out as headers then body: without this, Nagle's algorithm may hold the body back until the
        # client's delayed ACK of the headers (tens of milliseconds)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:  # noqa: N802 (the standard library's naming)
        self._dispatch(b"")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch(b"")

    def do_POST(self) -> None:  # noqa: N802
        raw = self._read_body()
        if raw is not None:
            self._dispatch(raw)

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST  # noqa: N815 (answered 405 by the app)

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering why it cannot be read (411, 413, 400)."""
        if self.headers.get("Transfer-Encoding", "").lower() not in ("", "identity"):
            self._reply(411, {"error": "send the body with a Content-Length (chunked bodies are not read)"}, True)
            return None
        text = self.headers.get("Content-Length")
        if text is None:
            self._reply(411, {"error": "a POST needs a Content-Length header"}, True)
            return None
        try:
            length = int(text)
            if length < 0:
                raise ValueError
        except ValueError:
            self._reply(400, {"error": f"Content-Length must be a non-negative integer, got {text[:40]!r}"}, True)
            return None
        limit = self.server.app.limits.max_body_bytes
        if length > limit:
            self._reply(413, {"error": f"the body is {length} bytes; this server reads at most {limit}"}, True)
            return None
        raw = self.rfile.read(length)  # a silent client times out (self.timeout) and the connection closes
        if len(raw) < length:
            self._reply(400, {"error": f"the body ended after {len(raw)} of {length} bytes"}, True)
            return None
        return raw

    def _dispatch(self, raw: bytes) -> None:
        received = self.server.clock()
        try:
            status, reply = self.server.app.handle(self.command, self.path, raw, received)
        except Exception:  # never let a request take the server down
            log.exception("internal error on %s %s", self.command, self.path[:80])
            status, reply = 500, {"error": "internal error (logged by the server)"}
        self._reply(status, reply)

    def _reply(self, status: int, reply: dict, close: bool = False) -> None:
        data = reply_bytes(reply)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        try:
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client left: nothing to tell it
            self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors the standard library finds (bad request line, too many headers...) as JSON too, with a status line
        even when the request line was too broken to say which HTTP version the client speaks."""
        if self.request_version == "HTTP/0.9":
            self.request_version = "HTTP/1.0"
        try:
            self._reply(code, {"error": f"{code} {message or ''}".strip()}, True)
        except OSError:
            self.close_connection = True

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the standard library's name)
        log.debug("%s - %s", self.address_string(), format % args)


class SnakeHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server for one ``SnakeApp``, refusing connections beyond ``max_connections`` with a 503."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: SnakeApp, max_connections: int = 256):
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {max_connections}")
        self.app = app
        self.clock = time.perf_counter
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, SnakeRequestHandler)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            try:
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                b"Content-Length: 33\r\nConnection: close\r\n\r\n"
                                b'{"error":"too many connections"}\n')
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address) -> None:
        """Connections that break are the client's business (debug log); anything else is logged in full."""
        if isinstance(sys.exc_info()[1], OSError):
            log.debug("connection from %s broke", client_address, exc_info=True)
        else:
            log.exception("error serving %s", client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def start_in_thread(app: SnakeApp, host: str = "127.0.0.1", port: int = 0,
                    max_connections: int = 256) -> SnakeHTTPServer:
    """Serve ``app`` from a daemon thread (tests, benchmarks); stop with ``server.shutdown(); server.server_close()``.
    Port 0 picks a free port: read it from ``server.url``."""
    server = SnakeHTTPServer((host, port), app, max_connections)
    threading.Thread(target=server.serve_forever, name="battlesnake-http", daemon=True).start()
    return server


def build_app(args: argparse.Namespace) -> SnakeApp:
    """The ``SnakeApp`` the command-line options describe (loads the model, if any)."""
    from .players import load_model

    model = load_model(args.model, args.config) if args.model else None
    kind = args.search
    if kind == "auto":
        kind = "network" if model is not None and getattr(model.policy, "has_value", False) else "rollouts"
    if kind == "network" and model is None:
        raise ValueError("--search network needs a --model (a bot plays without one)")
    budget = args.search_ms if args.search_ms is not None else (
        DEFAULT_NETWORK_SEARCH_MS if kind == "network" else DEFAULT_SEARCH_MS)
    arena = ARENA_TIMEOUT_MS - args.latency_margin_ms
    if kind != "off" and budget > arena:
        raise ValueError(f"--search-ms {budget:g} is longer than the arena's {ARENA_TIMEOUT_MS} ms move timeout less "
                         f"the {args.latency_margin_ms:g} ms latency margin ({arena:g} ms)")
    search = None
    if kind == "network":  # a model without a value output is refused here, naming it
        search = NetworkSearch(model.policy, SearchSettings(max_nodes=args.search_nodes,
                                                            territory_weight=args.territory_weight))
    safety = SafetyLayer(enabled=not args.no_safety, search_ms=budget if kind == "rollouts" else 0.0)
    appearance = Appearance(author=args.author, color=args.color, head=args.head, tail=args.tail)
    return SnakeApp(model, bot=args.bot, safety=safety, appearance=appearance,
                    limits=Limits(max_body_bytes=args.max_body_bytes), latency_margin_ms=args.latency_margin_ms,
                    search=search, search_ms=budget if kind == "network" else DEFAULT_NETWORK_SEARCH_MS,
                    max_sessions=args.max_sessions, idle_timeout_s=args.idle_timeout)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="battlesnake-rl serve", description="Serve a trained policy (or a bot) to the "
                                "Battlesnake engine: the API v1 over HTTP.")
    p.add_argument("--model", help="exported policy: policy.pt / policy.onnx, its folder, or a run folder "
                                   "(default: no model, the bot plays)")
    p.add_argument("--config", help="the run's config.json (default: beside the model or in its parent folder)")
    p.add_argument("--bot", default="flood", help="bot that plays without a model or where it cannot "
                                                  "(random, safe, greedy, flood; default flood)")
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0: reachable by the arena)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--color", default=Appearance.color, help="snake colour, #rrggbb")
    p.add_argument("--head", default=Appearance.head, help="head customization name")
    p.add_argument("--tail", default=Appearance.tail, help="tail customization name")
    p.add_argument("--author", default="", help="author shown by the arena")
    p.add_argument("--no-safety", action="store_true", help="play the raw policy (no safety layer)")
    p.add_argument("--search", choices=("auto", "network", "rollouts", "off"), default="auto",
                   help="network: look ahead with the model's value and move priors (needs a model exported with a "
                        "value output); rollouts: the safety layer's engine rollouts; auto (default): network when "
                        "the model has a value output, else rollouts")
    p.add_argument("--search-ms", type=float, default=None,
                   help=f"search time per move in ms (default {DEFAULT_NETWORK_SEARCH_MS:g} for network, "
                        f"{DEFAULT_SEARCH_MS:g} for rollouts); the move's deadline caps it")
    p.add_argument("--search-nodes", type=int, default=SearchSettings.max_nodes,
                   help="network search: boards judged per move at most")
    p.add_argument("--territory-weight", type=float, default=DEFAULT_TERRITORY_WEIGHT,
                   help="network search: weight of the territory score in the leaves' value, 0..1 (0: the network's "
                        f"value alone; default {DEFAULT_TERRITORY_WEIGHT:g})")
    p.add_argument("--latency-margin-ms", type=float, default=100.0,
                   help="taken off game.timeout for the network (default 100)")
    p.add_argument("--max-body-bytes", type=int, default=Limits.max_body_bytes, help="largest request body")
    p.add_argument("--max-connections", type=int, default=64, help="open connections at most")
    p.add_argument("--max-sessions", type=int, default=1024, help="games remembered at most")
    p.add_argument("--idle-timeout", type=float, default=300.0, help="seconds before an idle game is forgotten")
    p.add_argument("--log-level", default="INFO", help="DEBUG logs every request")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = build_app(args)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    app.warm_up()
    try:
        server = SnakeHTTPServer((args.host, args.port), app, args.max_connections)
    except OSError as e:
        print(f"error: cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    print(f"serving {app.describe()}\non {server.url} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    print(json.dumps({"served": app.counters}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
