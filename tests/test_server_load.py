"""The arena server under hostile and heavy load, over real HTTP on loopback; every test is bounded in count and time.

- 64 slow-loris connections (a header byte every 0.6 s, reconnecting when dropped) beside 8 normal games: every
  normal ``/move`` is answered within ``game.timeout``, first with the attackers on one address (the per-client limit
  refuses half of them), then on 64 addresses (the full server closes the longest-waiting connection for each new one);
- a model that sleeps far past the deadline: every move still arrives in time (the fallback);
- 32 games at once at a 500 ms timeout on this machine, the server in its own process: no timeouts.

The only timing the tests assert is the deadline the server promises (``game.timeout``, counted by the referee).
Latency figures under load: benchmarks/serve_latency.py and the README.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager

import pytest
from server_helpers import TINY_CONFIG, SleepyPolicy, exported_model

from battlesnake_gym.engine import GameSettings
from battlesnake_server.app import SnakeApp
from battlesnake_server.httpd import start_in_thread
from battlesnake_server.players import ModelPlayer
from battlesnake_server.referee import Referee, Seat, play_many, summarize
from battlesnake_server.safety import DEFAULT_SEARCH_MS, SafetyLayer

pytestmark = pytest.mark.slow


class SlowLoris:
    """Connections from ``sources`` (one each; any 127.x.y.z address is this machine) that send a request one byte
    every ``interval`` seconds and never finish it; a connection the server closes is opened again next round."""

    REQUEST = b"POST /move HTTP/1.1\r\nHost: arena\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n"

    def __init__(self, address: tuple[str, int], sources: list[str], interval: float = 0.6):
        self.address, self.sources, self.interval = address, sources, interval
        self.connects = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-loris", daemon=True)
        self._ready = threading.Event()

    def __enter__(self) -> SlowLoris:
        self._thread.start()
        self._ready.wait(30)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        socks: list[socket.socket | None] = [None] * len(self.sources)
        sent = [0] * len(self.sources)
        try:
            while not self._stop.is_set():
                for i, source in enumerate(self.sources):
                    try:
                        if socks[i] is None:
                            socks[i] = socket.create_connection(self.address, timeout=2, source_address=(source, 0))
                            socks[i].setblocking(False)
                            sent[i] = 0
                            self.connects += 1
                        elif self._dropped(socks[i]):
                            raise ConnectionError
                        socks[i].send(self.REQUEST[sent[i] % len(self.REQUEST):][:1])
                        sent[i] += 1
                    except OSError:
                        if socks[i] is not None:
                            socks[i].close()
                        socks[i] = None
                self._ready.set()
                self._stop.wait(self.interval)
        finally:
            for sock in socks:
                if sock is not None:
                    sock.close()

    @staticmethod
    def _dropped(sock: socket.socket) -> bool:
        """Has the server answered (503, 408) or closed this connection?"""
        try:
            return sock.recv(4096) is not None  # data (an error reply) or b"" (closed)
        except BlockingIOError:
            return False


def _normal_games(url: str, games: int, seed: int) -> dict:
    seats = [Seat("server", url=url), Seat("safe", bot="safe"), Seat("greedy", bot="greedy"),
             Seat("flood", bot="flood")]
    referee = Referee(seats, GameSettings(), timeout_ms=500, max_turns=40, seed=seed)
    return summarize(play_many(referee, games=games, parallel=games))


@pytest.fixture(scope="module")
def bot_app() -> SnakeApp:
    """The bot's app as served by default (safety layer with rollouts), warmed up."""
    app = SnakeApp(safety=SafetyLayer(search_ms=DEFAULT_SEARCH_MS))
    app.warm_up()
    return app


@contextmanager
def guarded(app: SnakeApp, request_timeout_s: float):
    """A server with the old default of 64 connections and at most 32 per client."""
    srv = start_in_thread(app, max_connections=64, max_client_connections=32, request_timeout_s=request_timeout_s)
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def test_64_slow_loris_connections_from_one_address_do_not_delay_8_normal_games(bot_app) -> None:
    # A 1 s request timeout, so that the held attackers are also cut off (and come back) during the games.
    with guarded(bot_app, request_timeout_s=1.0) as srv, SlowLoris(srv.server_address[:2], ["127.0.0.2"] * 64):
        threading.Event().wait(1.5)  # the attack is under way: 32 connections held, 32 refused each round
        summary = _normal_games(srv.url, 8, seed=11)
    assert summary["timeouts"] == 0 and summary["setup_errors"] == 0, summary
    assert summary["outcomes"]["ok"] == summary["move_requests"] > 8 * 10
    assert srv.stats["refused"] >= 32  # the attackers beyond the per-client limit
    assert srv.stats["timed_out"] >= 32  # the held ones, cut off at the request timeout


def test_64_slow_loris_connections_from_64_addresses_do_not_delay_8_normal_games(bot_app) -> None:
    # A request timeout longer than the test: only closing the longest-waiting connection can make room.
    with guarded(bot_app, request_timeout_s=60.0) as srv, \
            SlowLoris(srv.server_address[:2], [f"127.0.1.{i}" for i in range(1, 65)]):
        threading.Event().wait(1.5)  # every slot is taken and has waited long enough to be given up
        summary = _normal_games(srv.url, 8, seed=12)
    assert summary["timeouts"] == 0 and summary["setup_errors"] == 0, summary
    assert summary["outcomes"]["ok"] == summary["move_requests"] > 8 * 10
    assert srv.stats["evicted"] >= 8  # a slot made for each normal game's connection at least


def test_a_model_sleeping_past_the_deadline_still_answers_every_move_in_time() -> None:
    app = SnakeApp(ModelPlayer(SleepyPolicy((10, 21, 21), 2.0), TINY_CONFIG), safety=SafetyLayer(search_ms=15))
    srv = start_in_thread(app)
    try:
        seats = [Seat("sleepy", url=srv.url), Seat("safe", bot="safe"), Seat("flood", bot="flood")]
        referee = Referee(seats, GameSettings(width=7, height=7), timeout_ms=500, max_turns=8, seed=5)
        summary = summarize(play_many(referee, games=2, parallel=2))
    finally:
        srv.shutdown()
        srv.server_close()
    assert summary["timeouts"] == 0 and summary["outcomes"]["ok"] == summary["move_requests"] >= 4, summary
    assert app.counters["deadline_moves"] == app.counters["moves"] == summary["move_requests"]


def test_32_games_at_once_at_a_500_ms_timeout_have_no_timeouts(tmp_path_factory) -> None:
    model = exported_model(tmp_path_factory.getbasetemp())  # with a value output: the network search plays
    serve = subprocess.Popen([sys.executable, "-m", "battlesnake_rl.cli", "serve", "--model", str(model), "--host",
                              "127.0.0.1", "--port", "0", "--log-level", "WARNING"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        while not line.startswith("on http://"):
            line = serve.stdout.readline()
            assert line, f"serve exited: {serve.stderr.read()[-2000:]}"
        url = re.search(r"(http://\S+)", line).group(1)
        # 1v1 against the cheapest bot: the referee shares this machine, and its own work is not what is measured
        seats = [Seat("model", url=url), Seat("safe", bot="safe")]
        referee = Referee(seats, GameSettings(), timeout_ms=500, max_turns=25, seed=13)
        summary = summarize(play_many(referee, games=32, parallel=32))
    finally:
        serve.terminate()
        out, err = serve.communicate(timeout=60)
    assert summary["timeouts"] == 0 and summary["setup_errors"] == 0, summary
    assert summary["outcomes"]["ok"] == summary["move_requests"] >= 32 * 3
    assert '"errors": 0' in out.splitlines()[-1], err[-2000:]


def test_the_load_tests_bind_loopback_addresses_beyond_127_0_0_1() -> None:
    # The attackers above come from 127.0.0.2 and 127.0.1.x: Linux routes all of 127/8 to this machine.
    with socket.create_server(("127.0.0.1", 0)) as server, \
            socket.create_connection(server.getsockname(), timeout=5, source_address=("127.0.1.7", 0)):
        peer = server.accept()[0]
        assert peer.getpeername()[0] == "127.0.1.7"
        peer.close()

