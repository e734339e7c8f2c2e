"""The arena server over real HTTP: recorded requests, misbehaving clients, and complete games refereed as the official
CLI referees them (``battlesnake_server.referee``), with the bot and with an exported policy; then the two commands
(``battlesnake-rl serve`` and ``battlesnake-rl play``) run as a user runs them."""

from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_server import (
    NO_SEARCH,
    TINY_CONFIG,
    FixedPolicy,
    assert_not_avoidably_fatal,
    exported_model,
    recorded_frames,
)

from battlesnake_gym import conformance
from battlesnake_gym.engine import MOVE_NAMES, GameSettings
from battlesnake_server.app import SnakeApp
from battlesnake_server.httpd import start_in_thread
from battlesnake_server.players import ModelPlayer, load_model
from battlesnake_server.referee import Referee, Seat, play_many, summarize
from battlesnake_server.request import Limits
from battlesnake_server.safety import SafetyLayer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server():
    """The bot's server on a free loopback port (safety layer with a short search, as served by default)."""
    app = SnakeApp(safety=SafetyLayer(search_ms=5), limits=Limits(max_body_bytes=64 * 1024))
    app.warm_up()
    srv = start_in_thread(app, max_connections=8)
    yield srv
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
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


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
    assert _raw(server, b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 414")


def test_a_stalled_client_does_not_hold_up_other_games(shared, server) -> None:
    frame = recorded_frames("cli-export-standard-duel.jsonl")[3]
    body = json.dumps({**frame, "you": frame["board"]["snakes"][0]}).encode()
    with socket.create_connection(server.server_address[:2], timeout=10) as stalled:
        stalled.sendall(b"POST /move HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:50])
        for _ in range(3):  # meanwhile, other games are served
            status, reply = _request(server, "POST", "/move", body)
            assert status == 200 and reply["move"] in MOVE_NAMES


def test_connections_beyond_the_limit_get_a_503_at_once(server) -> None:
    held: list[socket.socket] = []
    try:
        for _ in range(8 + 4):  # 8 slots, plus a few a previous test's connections may still hold
            sock = socket.create_connection(server.server_address[:2], timeout=10)
            sock.sendall(b"GET / HTTP/1.1\r\n")  # the headers never end: the connection holds its slot
            sock.settimeout(0.2)
            try:
                first = sock.recv(64)
            except TimeoutError:
                held.append(sock)
                continue
            sock.close()
            assert first.startswith(b"HTTP/1.1 503")
            break
        else:
            pytest.fail("no 503 after 12 connections")
        refused = 0
        for sock in held:  # a 503 slower than 0.2 s (a loaded host) was counted as held: look again
            sock.settimeout(0.1)
            try:
                refused += sock.recv(64).startswith(b"HTTP/1.1 503")
            except TimeoutError:
                pass
        assert len(held) - refused <= 8
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 5
    while _raw(server, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.1 503"):
        assert time.monotonic() < deadline, "the connection slots were not given back"
        time.sleep(0.05)


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


class SlowPolicy(FixedPolicy):
    """A policy that thinks for 100 ms: far too slow for a 20 ms game."""

    def logits(self, obs, mask):
        time.sleep(0.1)
        return super().logits(obs, mask)


def test_a_server_too_slow_for_the_timeout_is_counted_as_timing_out() -> None:
    app = SnakeApp(ModelPlayer(SlowPolicy((10, 21, 21)), TINY_CONFIG), safety=NO_SEARCH)
    srv = start_in_thread(app)
    try:
        seats = [Seat("slow", url=srv.url), Seat("safe", bot="safe")]
        result = Referee(seats, GameSettings(width=7, height=7), timeout_ms=20, max_turns=3, seed=4).play()
        assert result.outcomes[0]["timeout"] == len(result.latencies_ms[0]) >= 1
        assert min(result.latencies_ms[0]) > 20
    finally:
        srv.shutdown()
        srv.server_close()


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
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket closes
    result = subprocess.run([sys.executable, "-m", "battlesnake_rl.cli", "play", "--url", f"http://127.0.0.1:{port}",
                             "--opponents", "safe", "-W", "7", "-H", "7", "--max-turns", "5"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "'error': " in result.stdout
