"""``battlesnake-rl play``: full games between snake servers over HTTP and in-process bots, refereed as the official
``battlesnake play`` CLI does.

How to run::

    battlesnake-rl serve --port 8000 &
    battlesnake-rl play --url http://127.0.0.1:8000 --opponents safe,greedy,flood --games 10
    battlesnake-rl play --url http://127.0.0.1:8000 --url http://127.0.0.1:8001 --width 19 --height 19 -o game.jsonl

What it does, like the CLI: ``GET /`` each snake server once for its customizations; ``POST /start`` to each; every
turn, the ``/move`` requests of all live HTTP snakes are sent at once (bodies shaped like the CLI's: ``game`` with the
ruleset's full settings object, ``turn``, ``board`` of live snakes with ``latency`` strings, ``you``) and each must
come back within ``game.timeout`` ms; a late, failed or invalid reply counts as a timeout and the engine repeats the
snake's last move (``up`` on the first turn). Each exchange is bounded as a whole, in time (``game.timeout`` plus
``LATE_GRACE_S``, however the server trickles its reply) and in size (``MAX_REPLY_BYTES``), so a misbehaving server
costs a game a timeout, never a hang. Bots decide their seats in-process. The turn runs on the engine; the
game ends when the rules say so (the last survivor is asked for one more move, as the CLI asks), then ``POST /end``
goes to each server. ``-o`` writes the game as the CLI's ``--output`` does (replayable by ``battlesnake-rl
conformance``).

The exit status is 1 when any ``/move`` timed out or was invalid, else 0. Results to expect: a ``battlesnake-rl
serve`` snake on this machine answers every request, with a p99 latency of a few tens of milliseconds.
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TextIO
from urllib.parse import urlsplit

import h11
import numpy as np

from battlesnake_gym.bots import BOTS, make_bot
from battlesnake_gym.engine import INVALID_MOVE, Games, GameSettings, RulesError, api_board, move_code
from battlesnake_gym.engine.state import NO_MOVE

#: Moves a snake server was asked for and did not answer in time, with a valid move.
OUTCOMES = ("ok", "timeout", "error", "invalid")


@dataclass(frozen=True)
class Seat:
    """A snake in a game: a server at ``url`` or a ``bot`` played in-process."""

    name: str
    url: str | None = None
    bot: str | None = None


#: Bytes of a reply the referee reads at most (a move or a snake's customizations take a few hundred).
MAX_REPLY_BYTES = 64 * 1024
#: Seconds past ``game.timeout`` a reply may still arrive and be counted as late rather than cut off.
LATE_GRACE_S = 0.25


class ReplyError(OSError):
    """A reply the referee does not take: not HTTP, larger than ``MAX_REPLY_BYTES``, or cut short."""


class HttpSnake:
    """One snake server: a keep-alive connection (re-opened after any error), as the engine's HTTP client keeps one.

    Every exchange is bounded as a whole: connecting, sending and reading the reply must all be done within
    ``timeout_ms`` plus ``LATE_GRACE_S`` (a server that trickles its reply a byte at a time is cut off then, not
    waited for read by read), and a reply may hold ``MAX_REPLY_BYTES`` at most. HTTP/1.1 is spoken through h11.
    """

    def __init__(self, url: str, timeout_ms: int):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"snake URL must look like http://host:port[/path], got {url!r}")
        self.url = url
        self.base = parts.path.rstrip("/")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._host_header = parts.netloc.rsplit("@", 1)[-1].encode("idna")
        self.timeout_s = timeout_ms / 1000.0
        self._sock: socket.socket | None = None
        self._http: h11.Connection | None = None

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes, float]:
        """(status, reply body, milliseconds); raises OSError (``TimeoutError``, ``ReplyError``...) on network
        failures, timeouts and replies it does not take."""
        data = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = [(b"host", self._host_header), (b"user-agent", b"battlesnake-rl-referee"),
                   (b"content-length", str(len(data)).encode())]
        if body is not None:
            headers.append((b"content-type", b"application/json"))
        started = time.perf_counter()
        deadline = started + self.timeout_s + LATE_GRACE_S
        try:
            if self._sock is None:
                self._connect(deadline)
            out = self._http.send(h11.Request(method=method, target=(self.base + path).encode(), headers=headers))
            out += self._http.send(h11.Data(data=data)) if data else b""
            out += self._http.send(h11.EndOfMessage())
            self._sock.settimeout(_left(deadline))
            self._sock.sendall(out)
            status, reply = self._receive(deadline)
        except h11.ProtocolError as e:
            self.close()
            raise ReplyError(f"{self.url}: {e}") from None
        except OSError:
            self.close()
            raise
        if self._http.our_state is h11.DONE and self._http.their_state is h11.DONE:
            self._http.start_next_cycle()
        else:
            self.close()
        return status, reply, (time.perf_counter() - started) * 1000.0

    def _connect(self, deadline: float) -> None:
        sock = socket.create_connection((self._host, self._port), timeout=_left(deadline))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._https:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self._host)
        self._sock, self._http = sock, h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_REPLY_BYTES)

    def _receive(self, deadline: float) -> tuple[int, bytes]:
        status, reply = None, bytearray()
        while True:
            event = self._http.next_event()
            if event is h11.NEED_DATA:
                self._sock.settimeout(_left(deadline))
                self._http.receive_data(self._sock.recv(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                reply += event.data
                if len(reply) > MAX_REPLY_BYTES:
                    raise ReplyError(f"{self.url}: a reply of more than {MAX_REPLY_BYTES} bytes")
            elif isinstance(event, h11.EndOfMessage):
                return status, bytes(reply)
            elif isinstance(event, h11.ConnectionClosed):
                raise ReplyError(f"{self.url}: the connection closed before a reply")
            # InformationalResponse (100 Continue): read on

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = self._http = None


def _left(deadline: float) -> float:
    """Seconds until ``deadline``; a ``TimeoutError`` when none are left."""
    left = deadline - time.perf_counter()
    if left <= 0:
        raise TimeoutError("the reply did not arrive in time")
    return left


@dataclass
class GameResult:
    """One refereed game: who won, and every ``/move`` request's latency and outcome, per seat."""

    game_id: str
    seats: list[Seat]
    turns: int = 0  # the board's last turn
    winner: int | None = None  # seat index of the last snake alive
    draw: bool = False  # every snake left on the same turn
    finished: bool = True  # False when max_turns cut the game
    latencies_ms: list[list[float]] = field(default_factory=list)  # per seat: each /move request's round trip
    outcomes: list[dict[str, int]] = field(default_factory=list)  # per seat: counts of OUTCOMES
    setup_errors: list[str] = field(default_factory=list)  # failed GET / , /start or /end requests

    @property
    def timeouts(self) -> int:
        """/move requests that did not bring back a valid move in time, over all seats."""
        return sum(o["timeout"] + o["error"] + o["invalid"] for o in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        return {"game_id": self.game_id, "turns": self.turns, "finished": self.finished, "draw": self.draw,
                "winner": None if self.winner is None else self.seats[self.winner].name,
                "seats": [s.name for s in self.seats], "outcomes": self.outcomes, "timeouts": self.timeouts,
                "setup_errors": self.setup_errors}


def cli_game_object(game_id: str, settings: GameSettings, timeout_ms: int) -> dict[str, Any]:
    """The ``game`` object of the CLI's requests (its full ruleset settings object included)."""
    cli_settings = {**settings.to_api(), "hazardMap": "", "hazardMapAuthor": "",
                    "squad": {"allowBodyCollisions": False, "sharedElimination": False, "sharedHealth": False,
                              "sharedLength": False}}
    return {"id": game_id, "ruleset": {"name": settings.ruleset, "version": "cli", "settings": cli_settings},
            "map": settings.map, "timeout": timeout_ms, "source": ""}


def _snake_entry(snake: dict, latency: str, customizations: dict) -> dict:
    """A snake as the CLI lists it in a request (``head`` and ``length`` derived from ``body``)."""
    body = snake["body"]
    return {"id": snake["id"], "name": snake.get("name", snake["id"]), "latency": latency,
            "health": snake["health"], "body": body, "head": body[0] if body else None, "length": len(body),
            "shout": "", "squad": "", "customizations": customizations}


class Referee:
    """Plays games between ``seats`` on the engine; see the module docstring.

    Args:
        seats: the snakes, in start order.
        settings: board, ruleset and map (``GameSettings``).
        timeout_ms: ``game.timeout``: a ``/move`` reply later than this counts as a timeout.
        max_turns: a game still running after this many turns stops unfinished.
        seed: seeds the starts, food and the bots.
    """

    def __init__(self, seats: Sequence[Seat], settings: GameSettings | None = None, *, timeout_ms: int = 500,
                 max_turns: int = 1000, seed: int = 0):
        self.seats = list(seats)
        if not self.seats:
            raise ValueError("a game needs at least one snake")
        for seat in self.seats:
            if (seat.url is None) == (seat.bot is None):
                raise ValueError(f"seat {seat.name!r} needs a url or a bot, not both or neither")
            if seat.bot is not None and seat.bot not in BOTS:
                raise ValueError(f"unknown bot {seat.bot!r}; known: {', '.join(BOTS)}")
        if timeout_ms < 1 or max_turns < 1:
            raise ValueError(f"timeout_ms and max_turns must be >= 1, got {timeout_ms} and {max_turns}")
        self.settings = settings if settings is not None else GameSettings()
        self.timeout_ms = int(timeout_ms)
        self.max_turns = int(max_turns)
        self.seed = int(seed)

    def play(self, game_index: int = 0, export: TextIO | None = None) -> GameResult:
        """One game (``game_index`` varies the seed); ``export`` receives the CLI's ``--output`` lines."""
        rng = np.random.default_rng([self.seed, game_index])
        game_id = str(uuid.UUID(bytes=rng.bytes(16), version=4))
        ids = [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in self.seats]
        names = [seat.name for seat in self.seats]
        games = Games(self.settings, num_snakes=len(self.seats), seed=int(rng.integers(2**62)))
        bots = {name: make_bot(name, int(rng.integers(2**62))) for name in {s.bot for s in self.seats if s.bot}}
        http_seats = [i for i, s in enumerate(self.seats) if s.url is not None]
        clients = {i: HttpSnake(self.seats[i].url, self.timeout_ms) for i in http_seats}
        result = GameResult(game_id, self.seats, latencies_ms=[[] for _ in self.seats],
                            outcomes=[dict.fromkeys(OUTCOMES, 0) for _ in self.seats])
        game_obj = cli_game_object(game_id, self.settings, self.timeout_ms)
        looks = [{"color": "#888888", "head": "default", "tail": "default"} for _ in self.seats]
        latency = ["0"] * len(self.seats)
        pool = ThreadPoolExecutor(max_workers=max(1, len(http_seats)), thread_name_prefix="referee")
        try:
            for i in http_seats:
                looks[i] = self._customizations(clients[i], result)

            slot = {sid: k for k, sid in enumerate(ids)}

            def frame() -> tuple[dict, dict]:
                """This turn's board (live snakes, as the CLI lists them) and every snake's entry by id."""
                board = api_board(games.state, self.settings, ids, names=names)
                board["snakes"] = [_snake_entry(s, latency[slot[s["id"]]], looks[slot[s["id"]]])
                                   for s in board["snakes"]]
                everyone = {s["id"]: _snake_entry(s, latency[slot[s["id"]]], looks[slot[s["id"]]])
                            for s in _all_snakes(games, self.settings, ids, names)}
                return board, everyone

            def body(seat: int, board: dict, everyone: dict) -> dict:
                return {"game": game_obj, "turn": int(games.state.turn[0]), "board": board,
                        "you": everyone[ids[seat]]}

            board, everyone = frame()
            if export is not None:
                export.write(json.dumps(game_obj) + "\n")
                export.write(json.dumps(body(0, board, everyone)) + "\n")
            list(pool.map(lambda i: self._post_quietly(clients[i], "/start", body(i, board, everyone), result),
                          http_seats))
            while True:
                alive = games.alive()[0]
                moves = np.full((1, len(self.seats)), NO_MOVE, np.int8)
                for name, bot in bots.items():
                    planned = bot(games)
                    for i, seat in enumerate(self.seats):
                        if seat.bot == name and alive[i]:
                            moves[0, i] = planned[0, i]
                asked = [i for i in http_seats if alive[i]]
                replies = pool.map(self._ask_move, [clients[i] for i in asked],
                                   [body(i, board, everyone) for i in asked], asked, [result] * len(asked))
                for i, (move, ms) in zip(asked, replies):
                    moves[0, i] = move
                    latency[i] = str(int(round(ms)))
                if games.step(moves)[0]:
                    break
                result.turns = int(games.state.turn[0])
                board, everyone = frame()
                if export is not None:
                    export.write(json.dumps(body(0, board, everyone)) + "\n")
                if result.turns >= self.max_turns:
                    result.finished = False
                    break
            alive = games.alive()[0]
            if result.finished:
                result.winner = int(np.flatnonzero(alive)[0]) if alive.sum() == 1 else None
                result.draw = bool(alive.sum() == 0 and len(self.seats) > 1)
            if export is not None:
                winner = "" if result.winner is None else ids[result.winner]
                export.write(json.dumps({"winnerId": winner, "winnerName": "" if result.winner is None
                                         else names[result.winner], "isDraw": bool(result.draw)}) + "\n")
            board, everyone = frame()
            list(pool.map(lambda i: self._post_quietly(clients[i], "/end", body(i, board, everyone), result),
                          http_seats))
        finally:
            pool.shutdown(wait=True)
            for client in clients.values():
                client.close()
        return result

    def _ask_move(self, client: HttpSnake, body: dict, seat: int, result: GameResult) -> tuple[int, float]:
        """(move code, milliseconds): INVALID_MOVE (the engine repeats the last move) unless a valid move came in
        time."""
        started = time.perf_counter()
        try:
            status, reply, ms = client.request("POST", "/move", body)
        except OSError:
            ms = (time.perf_counter() - started) * 1000.0
            outcome, move = ("timeout" if ms >= self.timeout_ms else "error"), INVALID_MOVE
        else:
            move = INVALID_MOVE
            if ms > self.timeout_ms:
                outcome = "timeout"
            elif status != 200:
                outcome = "error"
            else:
                try:
                    answer = json.loads(reply)
                    move = move_code(answer.get("move")) if isinstance(answer, dict) else INVALID_MOVE
                except ValueError:
                    move = INVALID_MOVE
                outcome = "ok" if move != INVALID_MOVE else "invalid"
        with _RESULT_LOCK:
            result.latencies_ms[seat].append(ms)
            result.outcomes[seat][outcome] += 1
        return move, ms

    def _post_quietly(self, client: HttpSnake, path: str, body: dict, result: GameResult) -> None:
        try:
            status, _, _ = client.request("POST", path, body)
            if status != 200:
                raise OSError(f"HTTP {status}")
        except OSError as e:
            with _RESULT_LOCK:
                result.setup_errors.append(f"{path} to {client.url}: {e}")

    def _customizations(self, client: HttpSnake, result: GameResult) -> dict:
        looks = {"color": "#888888", "head": "default", "tail": "default"}
        try:
            status, reply, _ = client.request("GET", "/")
            info = json.loads(reply) if status == 200 else {}
            if isinstance(info, dict):
                looks.update({k: info[k] for k in looks if isinstance(info.get(k), str)})
        except (OSError, ValueError) as e:
            result.setup_errors.append(f"GET / of {client.url}: {e}")
        return looks


_RESULT_LOCK = threading.Lock()


def _all_snakes(games: Games, settings: GameSettings, ids: list[str], names: list[str]) -> list[dict]:
    """Every snake, eliminated ones included (``you`` of an eliminated snake in ``/end``)."""
    from battlesnake_gym.engine import board_to_json

    snakes = board_to_json(games.state, settings.width, settings.height, ids)["snakes"]
    for snake, name in zip(snakes, names):
        snake["name"] = name
    return snakes


def summarize(results: Sequence[GameResult]) -> dict[str, Any]:
    """Totals over games: wins per seat, /move outcomes, latency percentiles (milliseconds)."""
    latencies = np.array([ms for r in results for seat in r.latencies_ms for ms in seat])
    wins: dict[str, int] = {}
    for r in results:
        if r.winner is not None:
            wins[r.seats[r.winner].name] = wins.get(r.seats[r.winner].name, 0) + 1
    outcomes = dict.fromkeys(OUTCOMES, 0)
    for r in results:
        for seat in r.outcomes:
            for k, v in seat.items():
                outcomes[k] += v
    pct = (lambda q: round(float(np.percentile(latencies, q)), 2)) if latencies.size else (lambda q: None)
    return {"games": len(results), "wins": wins, "draws": int(sum(r.draw for r in results)),
            "unfinished": sum(not r.finished for r in results), "mean_turns": float(np.mean([r.turns for r in
                                                                                             results])),
            "move_requests": int(latencies.size), "outcomes": outcomes,
            "timeouts": sum(r.timeouts for r in results), "setup_errors": sum(len(r.setup_errors) for r in results),
            "latency_ms": {"p50": pct(50), "p99": pct(99), "max": pct(100)}}


def play_many(referee: Referee, games: int, parallel: int = 1, first_index: int = 0) -> list[GameResult]:
    """``games`` games, ``parallel`` at a time (each in its own thread, as concurrent arena games)."""
    if games < 1 or parallel < 1:
        raise ValueError(f"games and parallel must be >= 1, got {games} and {parallel}")
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="game") as pool:
        return list(pool.map(referee.play, range(first_index, first_index + games)))


def seats_from(urls: Sequence[str], names: Sequence[str], opponents: Sequence[str]) -> list[Seat]:
    """HTTP seats (named by ``names`` in order, else ``snake-N``) then one bot seat per opponent name."""
    if len(names) > len(urls):
        raise ValueError(f"{len(names)} names for {len(urls)} URLs")
    seats = [Seat(names[i] if i < len(names) else f"snake-{i + 1}", url=url) for i, url in enumerate(urls)]
    seats += [Seat(f"{bot}-{i + 1}", bot=bot) for i, bot in enumerate(opponents)]
    return seats


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="battlesnake-rl play", description="Play full games between snake servers "
                                "(HTTP) and bots, refereed like the official CLI.")
    p.add_argument("-u", "--url", action="append", default=[], help="a snake server (repeat for several)")
    p.add_argument("-n", "--name", action="append", default=[], help="name of the matching --url snake")
    p.add_argument("--opponents", default="safe", help="comma-separated bots in the other seats ('' for none)")
    p.add_argument("-W", "--width", type=int, default=11)
    p.add_argument("-H", "--height", type=int, default=11)
    p.add_argument("-g", "--gametype", default="standard", help="ruleset")
    p.add_argument("-m", "--map", default="standard")
    p.add_argument("-t", "--timeout", type=int, default=500, help="game.timeout in ms")
    p.add_argument("--games", type=int, default=1)
    p.add_argument("--parallel", type=int, default=1, help="games played at once")
    p.add_argument("--max-turns", type=int, default=1000)
    p.add_argument("-r", "--seed", type=int, default=0)
    p.add_argument("-o", "--output", help="write the (first) game as the CLI's --output JSON lines")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = p.parse_args(argv)
    try:
        opponents = [b for b in args.opponents.split(",") if b]
        seats = seats_from(args.url, args.name, opponents)
        settings = GameSettings(width=args.width, height=args.height, ruleset=args.gametype, map=args.map)
        referee = Referee(seats, settings, timeout_ms=args.timeout, max_turns=args.max_turns, seed=args.seed)
        results: list[GameResult] = []
        if args.output:
            with open(args.output, "w") as out:
                results.append(referee.play(0, export=out))
        if args.games > len(results):
            results += play_many(referee, args.games - len(results), args.parallel, first_index=len(results))
    except (ValueError, RulesError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    summary = summarize(results)
    if args.json:
        print(json.dumps({"summary": summary, "games": [r.to_dict() for r in results]}, indent=2))
    else:
        for n, r in enumerate(results):
            who = "draw" if r.draw else "unfinished" if not r.finished else \
                f"winner {r.seats[r.winner].name}" if r.winner is not None else "no winner"
            print(f"game {n + 1}: {who} after {r.turns} turns; {r.timeouts} timeouts" +
                  (f"; {len(r.setup_errors)} setup errors: {r.setup_errors[0]}" if r.setup_errors else ""))
        lat = summary["latency_ms"]
        print(f"{summary['games']} games, wins {summary['wins']}, draws {summary['draws']}; /move requests "
              f"{summary['move_requests']}: {summary['outcomes']}; latency p50 {lat['p50']} ms, p99 {lat['p99']} ms, "
              f"max {lat['max']} ms")
    return 1 if summary["timeouts"] else 0


if __name__ == "__main__":
    sys.exit(main())
