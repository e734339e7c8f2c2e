"""The arena server over real HTTP: recorded requests, misbehaving clients (bad framing, oversized heads, stalled and
trickling requests, connection limits), complete games refereed as the official CLI referees them
(``battlesnake_server.referee``) with the bot and with an exported policy, a referee facing misbehaving servers; then
the two commands (``battlesnake-rl serve`` and ``battlesnake-rl play``) run as a user runs them. Load and abuse under
many connections: tests/test_server_load.py."""

from __future__ import annotations

import http.client
import json
import re
import select
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from server_helpers import (
    NO_SEARCH,
    assert_not_avoidably_fatal,
    exported_model,
    recorded_frames,
)

from battlesnake_gym import conformance
from battlesnake_gym.engine import MOVE_NAMES, GameSettings
from battlesnake_server.app import SnakeApp
from battlesnake_server.httpd import start_in_thread
from battlesnake_server.players import load_model
from battlesnake_server.referee import LATE_GRACE_S, Referee, Seat, play_many, summarize
from battlesnake_server.request import Limits
from battlesnake_server.safety import SafetyLayer
from sagemaker_rl.net import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bot_app() -> SnakeApp:
    """The bot's app (safety layer with a short search, as served by default), warmed up."""
    app = SnakeApp(safety=SafetyLayer(search_ms=5), limits=Limits(max_body_bytes=64 * 1024))
    app.warm_up()
    return app


@pytest.fixture(scope="module")
def server(bot_app):
    """The bot's server on a free loopback port."""
    srv = start_in_thread(bot_app, max_connections=8)
    yield srv
    srv.shutdown()
    srv.server_close()


@contextmanager
def serving(app: SnakeApp, **limits):
    """A server of ``app`` with these ``ServerLimits`` for one test."""
    srv = start_in_thread(app, **limits)
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def _request(srv, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    host, port = srv.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def _raw(srv, data: bytes, wait: float = 10.0) -> bytes:
    """Send raw bytes on a fresh connection and read until the server closes it."""
    with socket.create_connection(srv.server_address[:2], timeout=wait) as sock:
        sock.sendall(data)
        return _read_to_close(sock)


def _read_to_close(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _stalled(srv, source: str = "127.0.0.1") -> socket.socket:
    """A connection from ``source`` (any 127.x.y.z address is this machine) that began a request and stalls."""
    sock = socket.create_connection(srv.server_address[:2], timeout=10, source_address=(source, 0))
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # the headers never end
    return sock


def _get_root(srv, source: str = "127.0.0.1") -> bytes:
    with socket.create_connection(srv.server_address[:2], timeout=10, source_address=(source, 0)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return _read_to_close(sock)


def _move_bytes() -> bytes:
    frame = recorded_frames("cli-export-standard-duel.jsonl")[3]
    return json.dumps({**frame, "you": frame["board"]["snakes"][0]}).encode()


# ---------------------------------------------------------------- requests


def test_every_request_of_a_recorded_cli_game_is_answered_over_http(shared, server) -> None:
    lines = [json.loads(line) for line in (shared / "api-samples" / "requests-constrictor.jsonl").read_text()
             .splitlines()]
    for entry in lines:
        status, reply = _request(server, "POST", entry["path"], json.dumps(entry["body"]).encode(),
                                 {"Content-Type": "application/json"})
        assert status == 200
        if entry["path"] == "/move":
            assert_not_avoidably_fatal(entry["body"], reply["move"])
    assert _request(server, "GET", "/")[1]["apiversion"] == "1"


def test_a_post_without_a_length_or_with_a_huge_one_is_refused_before_reading(server) -> None:
    assert b"411" in _raw(server, b"POST /move HTTP/1.1\r\nHost: x\r\n\r\n").split(b"\r\n")[0]
    reply = _raw(server, b"POST /move HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n{")
    assert reply.startswith(b"HTTP/1.1 413") and b"reads at most 65536" in reply
    reply = _raw(server, b"POST /move HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 411")
    assert _raw(server, b"POST /move HTTP/1.1\r\nContent-Length: -5\r\n\r\n").startswith(b"HTTP/1.1 400")


def test_garbage_on_the_wire_gets_a_json_error_and_the_connection_closed(server) -> None:
    reply = _raw(server, b"\x00\x01 not http at all\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and "error" in json.loads(body)
    assert _raw(server, b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 414")
    headers = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 1000) for i in range(40))
    assert _raw(server, b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n").startswith(b"HTTP/1.1 431")


def test_a_head_too_long_is_refused_while_it_is_still_arriving(server) -> None:
    with socket.create_connection(server.server_address[:2], timeout=10) as sock:
        sock.sendall(b"GET /" + b"a" * 20000)
        reply = b""
        try:
            for _ in range(10):  # the request line never ends: refused once the server holds too much of it
                sock.sendall(b"a" * 10000)
        except OSError:
            pass  # closed under us: the reply is in the socket's buffer
        reply = _read_to_close(sock)
    assert reply.startswith(b"HTTP/1.1 414")


def test_pipelined_requests_are_answered_in_order_on_one_connection(server) -> None:
    body = _move_bytes()
    move = b"POST /move HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    reply = _raw(server, move + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + move.replace(b"Host: x", b"Host: x\r\n"
                                                                                      b"Connection: close"))
    statuses = re.findall(rb"HTTP/1.1 (\d+)", reply)
    assert statuses == [b"200"] * 3 and reply.count(b'"move"') == 2 and b'"apiversion"' in reply


def test_a_client_that_half_closes_after_its_request_gets_the_reply_then_the_close(server) -> None:
    body = _move_bytes()
    with socket.create_connection(server.server_address[:2], timeout=10) as sock:
        sock.sendall(b"POST /move HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        sock.shutdown(socket.SHUT_WR)
        reply = _read_to_close(sock)  # ends: the server closes once the reply is out
    assert reply.startswith(b"HTTP/1.1 200") and b'"move"' in reply


def test_a_stalled_client_does_not_hold_up_other_games(shared, server) -> None:
    body = _move_bytes()
    with socket.create_connection(server.server_address[:2], timeout=10) as stalled:
        stalled.sendall(b"POST /move HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:50])
        for _ in range(3):  # meanwhile, other games are served
            status, reply = _request(server, "POST", "/move", body)
            assert status == 200 and reply["move"] in MOVE_NAMES


def test_a_request_trickled_a_byte_at_a_time_is_cut_off_at_the_request_timeout(bot_app) -> None:
    with serving(bot_app, request_timeout_s=0.5) as srv, \
            socket.create_connection(srv.server_address[:2], timeout=10) as sock:
        request = b"POST /move HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"{" * 100000
        sent = 0
        try:
            while sent < 200:  # a byte every 50 ms: no single read ever waits long, the request as a whole does
                sock.sendall(request[sent:sent + 1])
                sent += 1
                time.sleep(0.05)
        except OSError:
            pass  # closed under us
        reply = _read_to_close(sock)
        assert reply.startswith(b"HTTP/1.1 408") and b"within 0.5 s" in reply
        assert sent < 200 and srv.stats["timed_out"] == 1


def test_a_connection_without_a_request_is_closed_after_the_keep_alive_time(bot_app) -> None:
    with serving(bot_app, keep_alive_s=0.3) as srv, \
            socket.create_connection(srv.server_address[:2], timeout=10) as sock:
        assert sock.recv(64) == b""  # closed by the server, with nothing to say
        with socket.create_connection(srv.server_address[:2], timeout=10) as reused:
            reused.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert reused.recv(65536).startswith(b"HTTP/1.1 200")
            assert reused.recv(64) == b""  # idle again after the reply: closed again


def test_connections_beyond_the_per_client_limit_get_a_503_at_once(bot_app) -> None:
    with serving(bot_app, max_client_connections=4) as srv:
        held = [_stalled(srv) for _ in range(4)]
        try:
            refused = _get_root(srv)
            assert refused.startswith(b"HTTP/1.1 503") and b"too many connections from 127.0.0.1" in refused
            assert _get_root(srv, source="127.0.0.2").startswith(b"HTTP/1.1 200")  # another client is served
        finally:
            for sock in held:
                sock.close()
        deadline = time.monotonic() + 5
        while _get_root(srv).startswith(b"HTTP/1.1 503"):
            assert time.monotonic() < deadline, "the connection slots were not given back"
            time.sleep(0.05)


def test_a_full_server_closes_the_connection_that_waited_longest_to_make_room(bot_app) -> None:
    with serving(bot_app, max_connections=4, evict_after_s=0.2) as srv:
        held = [_stalled(srv, source=f"127.0.0.{10 + i}") for i in range(4)]
        try:
            time.sleep(0.3)  # all four have now waited long enough to be closed for a newcomer
            assert _get_root(srv, source="127.0.0.2").startswith(b"HTTP/1.1 200")
            closed, _, _ = select.select(held, [], [], 10)  # the one that waited longest made room
            assert len(closed) == 1 and srv.stats["evicted"] == 1
            reply = _read_to_close(closed[0])
            assert reply.startswith(b"HTTP/1.1 503") and b"closed to make room" in reply
        finally:
            for sock in held:
                sock.close()


def test_a_full_server_without_a_connection_to_spare_answers_503(bot_app) -> None:
    with serving(bot_app, max_connections=4, evict_after_s=60) as srv:
        held = [_stalled(srv, source=f"127.0.0.{10 + i}") for i in range(4)]
        try:
            refused = _get_root(srv, source="127.0.0.2")
            assert refused.startswith(b"HTTP/1.1 503") and b"too many connections (at most 4)" in refused
            assert srv.stats["refused"] == 1
        finally:
            for sock in held:
                sock.close()


# ---------------------------------------------------------------- complete games


@pytest.mark.parametrize(("ruleset", "game_map"), [("standard", "standard"), ("wrapped", "standard"),
                                                   ("royale", "royale"), ("constrictor", "empty")])
def test_complete_games_against_bots_over_http_have_no_timeouts(server, ruleset: str, game_map: str,
                                                                tmp_path: Path) -> None:
    settings = GameSettings(width=7, height=7, ruleset=ruleset, map=game_map)
    seats = [Seat("server", url=server.url), Seat("safe", bot="safe"), Seat("greedy", bot="greedy")]
    referee = Referee(seats, settings, timeout_ms=500, max_turns=300, seed=1)
    export = tmp_path / "game.jsonl"
    with export.open("w") as out:
        result = referee.play(0, export=out)
    assert result.timeouts == 0 and not result.setup_errors
    assert sum(result.outcomes[0].values()) == len(result.latencies_ms[0]) > 3
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    assert lines[0]["ruleset"]["name"] == ruleset and "winnerId" in lines[-1]
    report = conformance.run([export])  # every turn follows from the last under the official rules
    assert report.failed == 0 and report.passed == len(lines) - 3


def test_concurrent_games_with_several_server_snakes_each_are_isolated(server) -> None:
    seats = [Seat("one", url=server.url), Seat("two", url=server.url + "/"), Seat("flood", bot="flood")]
    results = play_many(Referee(seats, GameSettings(width=7, height=7), max_turns=200, seed=2), games=4, parallel=4)
    summary = summarize(results)
    assert summary["timeouts"] == 0 and summary["outcomes"]["ok"] == summary["move_requests"] > 20
    assert not {game for game, _ in server.app.sessions.keys()} & {r.game_id for r in results}  # freed by /end


def test_the_exported_policy_plays_complete_games_over_http(tmp_path_factory) -> None:
    model = exported_model(tmp_path_factory.getbasetemp())
    app = SnakeApp(load_model(model), safety=NO_SEARCH)
    srv = start_in_thread(app)
    try:
        for size in (11, 19):  # the trained board, and a larger one seen through the model's window
            seats = [Seat("model", url=srv.url), Seat("safe", bot="safe")]
            result = Referee(seats, GameSettings(width=size, height=size), max_turns=60, seed=3).play()
            assert result.timeouts == 0 and len(result.latencies_ms[0]) > 3
        assert app.counters["bot_moves"] == 0 and app.counters["errors"] == 0
    finally:
        srv.shutdown()
        srv.server_close()


# ---------------------------------------------------------------- the referee against misbehaving servers


@contextmanager
def stub_server(reply_move):
    """A snake server that answers ``GET /``, ``/start`` and ``/end`` at once and ``/move`` through
    ``reply_move(handler)`` (which writes the whole reply)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            self._send(b'{"apiversion":"1"}')

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            if self.path.endswith("/move"):
                reply_move(self)
            else:
                self._send(b"{}")

        def _send(self, data: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def _late(handler) -> None:
    time.sleep(0.1)
    handler._send(b'{"move":"up"}')


def _trickled(handler) -> None:
    """A valid reply, one byte every 50 ms (each read is quick, the whole reply takes seconds)."""
    data = b'{"move":"up","shout":"' + b"z" * 200 + b'"}'
    handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(data))
    try:
        for byte in data:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(0.05)
    except OSError:
        pass  # the referee hung up


def _huge(handler) -> None:
    data = b'{"move":"up","pad":"' + b"z" * (2 * 1024 * 1024) + b'"}'
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    try:
        handler.wfile.write(data)
    except OSError:
        pass


@pytest.mark.parametrize(("reply", "timeout_ms", "outcome"), [(_late, 20, "timeout"), (_trickled, 20, "timeout"),
                                                           (_huge, 5000, "error")], ids=["late", "trickled", "huge"])
def test_the_referee_bounds_each_reply_in_time_and_size(reply, timeout_ms: int, outcome: str) -> None:
    with stub_server(reply) as url:
        seats = [Seat("stub", url=url), Seat("safe", bot="safe")]
        started = time.perf_counter()
        result = Referee(seats, GameSettings(width=7, height=7), timeout_ms=timeout_ms, max_turns=3, seed=4).play()
        elapsed = time.perf_counter() - started
    assert result.outcomes[0][outcome] == len(result.latencies_ms[0]) == 3
    assert max(result.latencies_ms[0]) < timeout_ms + 1000 * LATE_GRACE_S + 200  # cut off, not waited for
    assert elapsed < 30  # the trickled reply alone would take 3 x 11 s


# ---------------------------------------------------------------- the commands


def test_serve_and_play_run_from_the_command_line(tmp_path: Path) -> None:
    serve = subprocess.Popen([sys.executable, "-m", "battlesnake_rl.cli", "serve", "--host", "127.0.0.1", "--port",
                              "0", "--color", "#123456", "--search-ms", "5"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not any(line.startswith("on http://") for line in lines):
            line = serve.stdout.readline()
            assert line, f"serve exited: {serve.stderr.read()[-2000:]}"
            lines.append(line)
        url = re.search(r"(http://\S+)", lines[-1]).group(1)
        play = subprocess.run([sys.executable, "-m", "battlesnake_rl.cli", "play", "--url", url, "--opponents",
                               "safe", "-W", "7", "-H", "7", "--games", "2", "--json"],
                              capture_output=True, text=True, timeout=300)
        assert play.returncode == 0, play.stderr
        summary = json.loads(play.stdout)["summary"]
        assert summary["games"] == 2 and summary["timeouts"] == 0 and summary["move_requests"] > 5
    finally:
        serve.terminate()
        out, err = serve.communicate(timeout=30)
    assert serve.returncode == 0, err[-2000:]
    assert json.loads(out.splitlines()[-1])["served"]["moves"] == summary["move_requests"]


def test_serve_refuses_a_model_it_cannot_load() -> None:
    result = subprocess.run([sys.executable, "-m", "battlesnake_rl.cli", "serve", "--model", "/nonexistent/model"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "no model at /nonexistent/model" in result.stderr


def test_play_exits_1_when_a_snake_server_does_not_answer() -> None:
    port = free_port()  # nothing listens there
    result = subprocess.run([sys.executable, "-m", "battlesnake_rl.cli", "play", "--url", f"http://127.0.0.1:{port}",
                             "--opponents", "safe", "-W", "7", "-H", "7", "--max-turns", "5"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "'error': " in result.stdout
