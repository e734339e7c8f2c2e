"""``SnakeApp``: the Battlesnake API v1 without the transport: what ``GET /``, ``/start``, ``/move``, ``/end`` answer.

The HTTP server (``httpd``) and the SageMaker handler (``sagemaker_inference``) both call it. A ``/move`` runs:

1. ``request.parse_move``: the body read into a batch-of-one ``Games`` (any problem: ``RequestError``, HTTP 400);
   the move's deadline is ``game.timeout`` after the request's first byte arrived, less ``latency_margin_ms`` for
   the network;
2. the game's session (created on ``/start``, or on the first ``/move`` of a game the server has not seen);
3. the fallback: the safety layer's pick without a policy (the roomiest move of the best tier, one compiled kernel);
4. on a worker thread (``workers`` of them), each stage improving the best move known so far: the player's
   preferences (the model's move probabilities through the encoder planned for this game's boards, or the bot's
   move when there is no model or the model cannot see these boards); ``SafetyLayer.choose`` over them without
   rollouts; then, with a network search (``search``: a model with a value output), ``NetworkSearch.choose`` looks
   ahead until the deadline and decides when it completes at least one turn, or else (no search, a bot, or no turn
   completed in time) the safety layer with its own optional rollouts decides. Search time (``search_ms``, or
   ``SafetyLayer.search_ms`` for rollouts) is shared by the ``/move`` requests in flight: with k of them, each
   searches for ``search_ms / k`` at most.

The reply goes out when the worker is done or at the deadline, whichever comes first (``move`` waits in the calling
thread; ``begin_move`` leaves the waiting to the caller, as the HTTP server's event loop does): whatever is not done by
then (a slow forward pass, a search level, a wait for a free worker) is abandoned and the best move known then is sent
(counted in ``deadline_moves``). Abandoned work cannot pile up: there are ``workers`` threads, a worker that picks up
a move after its deadline drops it, and at most ``QUEUE_PER_WORKER * workers`` moves are running or waiting (later
ones get the fallback at once). The compiled kernels release the interpreter lock (numba ``nogil``), and the model's
forward pass runs in torch or onnxruntime without it, so moves of different games really run in parallel. Reading
the body (step 1) is not abandoned: it is bounded by the body's size (``Limits.max_body_bytes``). An unexpected error
in step 4 is logged and the bot proposes instead: a reply always goes out.

Sessions (one per game and snake, ``sessions``) hold the snake slots as the game started, the encoder plan, and
counters; they are freed by ``/end``, after ``idle_timeout_s`` without a request, and oldest first beyond
``max_sessions``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from battlesnake_gym.engine import MOVE_NAMES, Games

from .players import BotPlayer, EncoderPlan, ModelPlayer
from .request import (
    Limits,
    MoveRequest,
    RequestError,
    decode_json,
    parse_game,
    parse_move,
    parse_start,
)
from .safety import SafetyLayer
from .search import NetworkSearch
from .sessions import Session, SessionStore, with_slots

log = logging.getLogger(__name__)

API_VERSION = "1"
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class Appearance:
    """How the snake looks and who made it (``GET /``); head and tail names are the arena's customizations."""

    author: str = ""
    color: str = "#2e8b57"
    head: str = "default"
    tail: str = "default"
    version: str = "battlesnake-rl 0.1.0"

    def __post_init__(self) -> None:
        if not _COLOR.match(self.color):
            raise ValueError(f"color must look like #rrggbb, got {self.color!r}")
        for name in ("author", "head", "tail", "version"):
            value = getattr(self, name)
            if not isinstance(value, str) or len(value) > 64:
                raise ValueError(f"{name} must be a string of at most 64 characters, got {value!r}")


_UNIFORM = np.full(4, 0.25)
#: Moves that may be running or waiting for a worker, per worker; beyond, a move gets the fallback at once.
QUEUE_PER_WORKER = 16


@dataclass
class _Answer:
    """The best move known so far for one ``/move``: the fallback first, improved by the worker as it goes."""

    move: int
    by_bot: bool = False  # the bot proposed the move (no model, or the model cannot see these boards)
    searched: bool = False  # the network search chose the move
    stage: str = "queued"  # what the worker is doing: queued, player, safety layer, search, rollouts, done


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.perf_counter() >= deadline


class PendingMove:
    """A ``/move`` being answered (``SnakeApp.begin_move``): the fallback is in, a worker may improve it until
    ``deadline`` (``time.perf_counter()`` seconds; None: no deadline). ``work`` is the worker's future (None when
    every worker was busy: the fallback is the answer)."""

    def __init__(self, app: SnakeApp, request: MoveRequest, session: Session, answer: _Answer,
                 deadline: float | None, work: Future | None):
        self.request, self.session, self.answer = request, session, answer
        self.deadline, self.work = deadline, work
        self._app = app
        self._reply: dict[str, str] | None = None
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Wait until the worker is done or the deadline has come."""
        if self.work is not None:
            try:
                self.work.result(timeout=None if self.deadline is None else
                                 max(0.0, self.deadline - time.perf_counter()))
            except FutureTimeout:
                pass

    def reply(self) -> dict[str, str]:
        """``{"move": ...}``: the best move known now (counted once; later calls repeat it)."""
        with self._lock:
            if self._reply is None:
                self._reply = {"move": MOVE_NAMES[self._app._finish(self)]}
            return self._reply


class SnakeApp:
    """The snake: answers the API's requests (see the module docstring).

    Args:
        model: the exported policy to play, or None to play ``bot``.
        bot: the bot that plays without a model, and wherever the model cannot.
        safety: the safety layer (``SafetyLayer(enabled=False)`` plays the raw policy).
        appearance: what ``GET /`` says.
        limits: request bounds.
        latency_margin_ms: taken off ``game.timeout`` for the network and the reply.
        search: a network search over the model (its value output drives it), or None.
        search_ms: the network search's time per move at most (the deadline caps it further).
        max_sessions, idle_timeout_s: session bounds.
        workers: threads that compute moves (the model, the layer, the search); ``QUEUE_PER_WORKER`` times as many
            moves may be running or waiting at once, later ones are answered with the fallback.
    """

    def __init__(self, model: ModelPlayer | None = None, *, bot: str = "flood", safety: SafetyLayer | None = None,
                 appearance: Appearance | None = None, limits: Limits | None = None, latency_margin_ms: float = 100.0,
                 search: NetworkSearch | None = None, search_ms: float = 250.0, max_sessions: int = 1024,
                 idle_timeout_s: float = 300.0, workers: int = 4, clock: Callable[[], float] = time.monotonic):
        if latency_margin_ms < 0:
            raise ValueError(f"latency_margin_ms must be >= 0, got {latency_margin_ms}")
        if search is not None and model is None:
            raise ValueError("a network search needs a model")
        if search_ms <= 0:
            raise ValueError(f"search_ms must be > 0, got {search_ms}")
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.search = search
        self.search_ms = float(search_ms)
        self.model = model
        self.bot = BotPlayer(bot)
        self.safety = safety if safety is not None else SafetyLayer()
        self.appearance = appearance if appearance is not None else Appearance()
        self.limits = limits if limits is not None else Limits()
        self.latency_margin_ms = float(latency_margin_ms)
        self.sessions = SessionStore(max_sessions, idle_timeout_s, clock)
        self.counters = {"moves": 0, "bot_moves": 0, "searched_moves": 0, "deadline_moves": 0, "errors": 0,
                         "bad_requests": 0}
        self.workers = workers
        self._counter_lock = threading.Lock()
        self._in_flight = 0  # /move requests being answered now
        self._queued = 0  # moves given to the workers and not finished (running or waiting)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="snake-move")
        self._quick_layer = replace(self.safety, search_ms=0.0)
        self._fallback_layer = SafetyLayer(near_tie=1.0)  # uniform preferences: every kept move ties, room decides

    def describe(self) -> str:
        player = self.model.describe() if self.model is not None else self.bot.describe()
        rollouts = f"rollouts {self.safety.search_ms:g} ms" if self.safety.search_ms else "no rollouts"
        safety = f"safety layer on ({rollouts})" if self.safety.enabled else "safety layer off"
        search = f"network search {self.search_ms:g} ms; " if self.search is not None else ""
        return f"{player}; {search}fallback {self.bot.describe()}; {safety}"

    # ------------------------------------------------------------------ the API

    def info(self) -> dict[str, str]:
        a = self.appearance
        return {"apiversion": API_VERSION, "author": a.author, "color": a.color, "head": a.head, "tail": a.tail,
                "version": a.version}

    def start(self, body: Mapping) -> dict:
        info, ids = parse_start(body, self.limits)
        session = self.sessions.open(info, ids)
        self._log_once(session, info.notes)
        return {}

    def end(self, body: Mapping) -> dict:
        info = parse_game(body)
        session = self.sessions.close(info)
        if session is not None:
            log.info("game %r ended for snake %r: %d moves, %d by the bot", info.game_id, info.you_id,
                     session.moves, session.bot_moves)
        return {}

    def move(self, body: Mapping, received: float | None = None) -> dict[str, str]:
        """The move for a ``/move`` body; ``received`` is the ``time.perf_counter()`` of the request's first byte
        (default: now). Returns by the deadline (see the module docstring) once the body is read."""
        pending = self.begin_move(body, received)
        pending.wait()
        return pending.reply()

    def begin_move(self, body: Mapping, received: float | None = None) -> PendingMove:
        """Read a ``/move`` body, compute the fallback and give the rest to a worker; the caller replies with
        ``PendingMove.reply()`` when ``PendingMove.work`` is done or at ``PendingMove.deadline``, whichever comes
        first (``move`` waits in the calling thread; the HTTP server lets its event loop wait)."""
        received = time.perf_counter() if received is None else received
        req = parse_move(body, self.limits)
        return self._begin(req, received + (req.info.timeout_ms - self.latency_margin_ms) / 1000.0)

    def _begin(self, req: MoveRequest, deadline: float | None) -> PendingMove:
        session = self.sessions.open(req.info, req.snake_ids)
        self._log_once(session, req.notes)
        seed = (zlib.crc32(req.info.game_id.encode("utf-8", "surrogatepass")) * 1_000_003 + req.turn) % 2**31
        answer = _Answer(self._fallback(req))
        with self._counter_lock:
            self._in_flight += 1
            sharing = self._in_flight
            room = self._queued < self.workers * QUEUE_PER_WORKER  # running and waiting: a bound on memory
            if room:
                self._queued += 1
        work = self._pool.submit(self._think, req, session, seed, deadline, sharing, answer) if room else None
        return PendingMove(self, req, session, answer, deadline, work)

    def _finish(self, pending: PendingMove) -> int:
        """Count a move whose reply goes out now; its move."""
        req, session, answer = pending.request, pending.session, pending.answer
        with self._counter_lock:
            self._in_flight -= 1
        stage = answer.stage  # then the move: a move that was done just now may be counted as a deadline move
        move, by_bot, searched = answer.move, answer.by_bot, answer.searched  # the worker may go on after the deadline
        session.moves += 1
        session.bot_moves += by_bot
        self._count("moves")
        if by_bot and self.model is not None:
            self._count("bot_moves")
        if searched and stage == "done":
            self._count("searched_moves")
        if stage != "done":
            self._count("deadline_moves")
            if "deadline" not in session.logged:  # once a game: a slow model would fill the log
                session.logged.add("deadline")
                log.warning("game %r: the move of turn %d was not done by its deadline (stage: %s): the best move "
                            "known then was sent (counted in deadline_moves; logged once a game)", req.info.game_id,
                            req.turn, stage)
        return move

    def _fallback(self, req: MoveRequest) -> int:
        """The safety layer's move without a policy (the roomiest move of the best tier): one compiled kernel, the
        answer when nothing better is done by the deadline."""
        try:
            return self._fallback_layer.choose(req.games, req.you, _UNIFORM).move
        except Exception:  # a reply must go out
            log.exception("the fallback failed on game %r turn %d", req.info.game_id, req.turn)
            self._count("errors")
            return 0

    def _think(self, req: MoveRequest, session: Session, seed: int, deadline: float | None, sharing: int,
               answer: _Answer) -> None:
        """On a worker thread: the player's preferences, the safety layer's pick, then the search's, each improving
        ``answer``; whatever starts after the deadline is not done."""
        try:
            if _past(deadline):
                return
            answer.stage = "player"
            try:
                prefs, by_bot = self._preferences(req, session, seed)
            except Exception:  # a reply must go out: log it, and let the bot propose
                log.exception("the model failed on game %r turn %d; the bot proposes", req.info.game_id, req.turn)
                self._count("errors")
                prefs, by_bot = self.bot.preferences(req.games, req.you, seed), True
            if _past(deadline):
                return
            answer.stage = "safety layer"
            move = self._choose(req, prefs, self._quick_layer, None, seed)
            answer.move, answer.by_bot = move, by_bot
            if self.search is not None and not by_bot:
                answer.stage = "search"
                move = self._search(req, session, deadline, sharing)
                if move is not None:
                    answer.move, answer.searched = move, True
                    answer.stage = "done"
                    return
            if self.safety.search_ms > 0 and not _past(deadline):
                answer.stage = "rollouts"
                stop = time.perf_counter() + self.safety.search_ms / 1000.0 / sharing
                answer.move = self._choose(req, prefs, self.safety, stop if deadline is None else
                                           min(deadline, stop), seed)
            answer.stage = "done"
        except Exception:  # a reply must go out: the best move known so far does
            log.exception("computing the move of game %r turn %d failed", req.info.game_id, req.turn)
            self._count("errors")
        finally:
            with self._counter_lock:
                self._queued -= 1

    def _choose(self, req: MoveRequest, prefs: np.ndarray, layer: SafetyLayer, stop: float | None,
                seed: int) -> int:
        try:
            return layer.choose(req.games, req.you, prefs, deadline=stop, seed=seed).move
        except Exception:
            log.exception("the safety layer failed on game %r turn %d; playing the proposal", req.info.game_id,
                          req.turn)
            self._count("errors")
            return int(np.argmax(prefs))

    def _search(self, req: MoveRequest, session: Session, deadline: float | None, sharing: int) -> int | None:
        """The network search's move, or None when it completed no turn in time (or failed: logged)."""
        stop = time.perf_counter() + self.search_ms / 1000.0 / sharing
        stop = stop if deadline is None else min(deadline, stop)
        games, you = self._board_for_model(req, session)
        try:
            result = self.search.choose(games, you, session.plan.encoder, deadline=stop)
        except Exception:
            log.exception("the search failed on game %r turn %d; the safety layer decides", req.info.game_id,
                          req.turn)
            self._count("errors")
            return None
        if result.depth < 1:
            return None
        return result.move

    def _board_for_model(self, req: MoveRequest, session: Session) -> tuple[Games, int]:
        """The board as the model sees it, and its snake's slot: the slots as the game started for encoders whose
        shape follows the snake count, else the request's own board."""
        if _shape_follows_snakes(session.plan, req):
            games, ok = with_slots(req.games, req.snake_ids, session.slots)
            if ok:
                return games, session.slots.index(req.info.you_id)
        return req.games, req.you

    def _preferences(self, req: MoveRequest, session: Session, seed: int) -> tuple[np.ndarray, bool]:
        if self.model is None:
            return self.bot.preferences(req.games, req.you, seed), True
        if session.plan is None:
            session.plan = self.model.plan(req.settings, len(session.slots))
            if session.plan.encoder is None:
                self._log_once(session, [f"the bot plays this game: {session.plan.note}"], logging.WARNING)
            elif session.plan.note == "window":
                self._log_once(session, [f"the model sees a {self.model.window}x{self.model.window} window of this "
                                         f"{req.settings.width}x{req.settings.height} board (trained on "
                                         f"{self.model.trained.width}x{self.model.trained.height})"])
        plan = session.plan
        if plan.encoder is None:
            return self.bot.preferences(req.games, req.you, seed), True
        if _shape_follows_snakes(plan, req) and not set(req.snake_ids) <= set(session.slots):
            self._log_once(session, ["a snake on the board was not there when the game started: the bot plays "
                                     "the moves the model cannot see"], logging.WARNING)
            return self.bot.preferences(req.games, req.you, seed), True
        games, you = self._board_for_model(req, session)
        return self.model.preferences(games, you, plan), False

    # ------------------------------------------------------------------ transport-independent dispatch

    def handle(self, method: str, path: str, raw: bytes = b"", received: float | None = None) -> tuple[int, dict]:
        """(HTTP status, JSON reply) for a request; never raises for bad input."""
        path = normalize_path(path)
        routes: dict[str, Callable[[Mapping], dict]] = {"/start": self.start, "/move": self.move, "/end": self.end}
        if path == "/":
            if method in ("GET", "HEAD"):
                return 200, self.info()
            return 405, {"error": f"{method} / is not allowed: use GET"}
        if path not in routes:
            return 404, {"error": f"no such endpoint {path[:80]!r}: the API has GET /, POST /start, /move, /end"}
        if method != "POST":
            return 405, {"error": f"{method} {path} is not allowed: use POST"}
        try:
            body = decode_json(raw)
            reply = self.move(body, received) if path == "/move" else routes[path](body)
        except RequestError as e:
            self._count("bad_requests")
            return e.status, {"error": str(e)}
        return 200, reply

    def begin(self, method: str, path: str, raw: bytes = b"", received: float | None = None
              ) -> tuple[int, dict] | PendingMove:
        """``handle``, except that a ``/move`` comes back as its ``PendingMove`` (for a transport that waits for
        the deadline itself)."""
        if normalize_path(path) == "/move" and method == "POST":
            try:
                return self.begin_move(decode_json(raw), received)
            except RequestError as e:
                self._count("bad_requests")
                return e.status, {"error": str(e)}
        return self.handle(method, path, raw, received)

    def warm_up(self) -> None:
        """Play a few moves on a small board in every code path, so the first real request finds everything
        compiled and loaded (numba caches compiled code on disk; loading it still takes a moment)."""
        from battlesnake_gym.engine import GameSettings, api_board

        size = (self.model.trained.width, self.model.trained.height) if self.model is not None else (11, 11)
        for ruleset in ("standard", "wrapped"):
            settings = GameSettings(width=size[0], height=size[1], ruleset=ruleset)
            games = Games(settings, num_snakes=2, seed=0)
            ids = ["warm-up-a", "warm-up-b"]
            board = api_board(games.state, settings, ids)
            body = {"game": {"id": "warm-up", "ruleset": {"name": ruleset, "settings": settings.to_api()},
                             "map": "standard", "timeout": 500}, "turn": 0, "board": board, "you": board["snakes"][0]}
            pending = self._begin(parse_move(body, self.limits), None)  # waits for every stage, however long
            pending.wait()
            pending.reply()
            self.sessions.close(parse_game(body))
        for name in self.counters:
            self.counters[name] = 0

    def _count(self, name: str) -> None:
        with self._counter_lock:
            self.counters[name] += 1

    @staticmethod
    def _log_once(session: Session, messages, level: int = logging.INFO) -> None:
        for message in messages:
            if message not in session.logged:
                session.logged.add(message)
                log.log(level, "game %r: %s", session.game_id, message)


def _shape_follows_snakes(plan: EncoderPlan, req: MoveRequest) -> bool:
    """Does the plan's encoder give a different shape for another snake count (the legacy grids)?"""
    encoder = plan.encoder
    return encoder is not None and encoder.shape(req.settings, 2) != encoder.shape(req.settings, 3)


def normalize_path(path: str) -> str:
    """The request path without query or fragment, repeated slashes collapsed, no trailing slash (``//move/`` is
    ``/move``): snake URLs configured with a trailing slash still work."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    path = "/" + "/".join(part for part in path.split("/") if part)
    return path


def reply_bytes(reply: Mapping[str, Any]) -> bytes:
    """A JSON reply as compact UTF-8 bytes."""
    return json.dumps(reply, separators=(",", ":")).encode()
