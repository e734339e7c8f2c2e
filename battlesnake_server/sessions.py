"""The server's memory of the games it plays: a ``Session`` per game and snake, kept in a bounded ``SessionStore``,
and ``with_slots``, which puts a board's snakes back in the slots they had when the game started.

A session holds the snake slots as the game started (so encoders whose shape depends on the snake count keep it after
snakes die), the encoder plan, and counters. Sessions are freed by ``/end``, after ``idle_timeout_s`` without a
request, and oldest first beyond ``max_sessions``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from battlesnake_gym.engine import Games
from battlesnake_gym.engine.state import OUT_OF_HEALTH, allocate

from .players import EncoderPlan
from .request import GameInfo


@dataclass
class Session:
    """One snake's game, as far as the server remembers it."""

    game_id: str
    you_id: str
    slots: list[str]  # snake ids in board order when the server first saw the game
    last_seen: float  # clock() time of the last request
    moves: int = 0
    bot_moves: int = 0  # moves the bot proposed instead of the model
    plan: EncoderPlan | None = None
    logged: set[str] = field(default_factory=set)  # messages already logged for this game


class SessionStore:
    """Sessions keyed by (game id, snake id), bounded in number and idle time; safe to use from many threads."""

    def __init__(self, max_sessions: int = 1024, idle_timeout_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic):
        if max_sessions < 1 or idle_timeout_s <= 0:
            raise ValueError(f"max_sessions must be >= 1 and idle_timeout_s > 0, got {max_sessions}, "
                             f"{idle_timeout_s}")
        self.max_sessions = max_sessions
        self.idle_timeout_s = idle_timeout_s
        self.clock = clock
        self._sessions: OrderedDict[tuple[str, str], Session] = OrderedDict()
        self._lock = threading.Lock()
        self._last_sweep = clock()

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._sessions

    def keys(self) -> list[tuple[str, str]]:
        """(game id, snake id) of every session, least recently used first."""
        with self._lock:
            return list(self._sessions)

    def get(self, key: tuple[str, str]) -> Session | None:
        return self._sessions.get(key)

    def open(self, info: GameInfo, snake_ids: list[str]) -> Session:
        """The session of this game and snake, created (slots = ``snake_ids``) if new; marks it used now."""
        now = self.clock()
        key = (info.game_id, info.you_id)
        with self._lock:
            self._sweep(now)
            session = self._sessions.get(key)
            if session is None:
                session = Session(info.game_id, info.you_id, list(snake_ids), now)
                self._sessions[key] = session
                while len(self._sessions) > self.max_sessions:
                    self._sessions.popitem(last=False)
            if not session.slots:  # a /start without snakes: the first /move's board says who plays
                session.slots = list(snake_ids)
            self._sessions.move_to_end(key)
            session.last_seen = now
            return session

    def close(self, info: GameInfo) -> Session | None:
        with self._lock:
            return self._sessions.pop((info.game_id, info.you_id), None)

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < min(1.0, self.idle_timeout_s):
            return
        self._last_sweep = now
        # the dict is in order of last use: stale sessions are at the front
        while self._sessions:
            key, session = next(iter(self._sessions.items()))
            if now - session.last_seen < self.idle_timeout_s:
                break
            del self._sessions[key]


def with_slots(games: Games, snake_ids: list[str], slots: list[str]) -> tuple[Games, bool]:
    """The board with every snake in its slot as the game started (absent snakes eliminated); False when a snake on
    the board is not in ``slots``."""
    if snake_ids == slots:
        return games, True
    if not set(snake_ids) <= set(slots):
        return games, False
    st = games.state
    out = allocate(1, len(slots), body_capacity=st.body.shape[2], food_capacity=st.food.shape[1],
                   hazard_capacity=st.hazards.shape[1])
    for name in ("turn", "food", "food_count", "hazards", "hazard_count", "rng", "royale_seed"):
        getattr(out, name)[:] = getattr(st, name)
    out.elim_cause[0, :] = OUT_OF_HEALTH
    for i, sid in enumerate(snake_ids):
        j = slots.index(sid)
        out.body[0, j] = st.body[0, i]
        out.length[0, j] = st.length[0, i]
        out.health[0, j] = st.health[0, i]
        out.elim_cause[0, j] = 0
    return Games.from_state(games.settings, out), True
