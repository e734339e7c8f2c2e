"""Heuristic bots that play on the batched engine state: opponents for training, evaluation and benchmarks.

A bot maps a ``Games`` batch to a (B, S) int8 array of moves (0 up, 1 down, 2 left, 3 right) for every snake slot;
eliminated snakes get -1. Bots never change the games, and draw their randomness from their own
``numpy.random.Generator``, never from the games' streams.

- ``random``: a uniformly random move.
- ``safe``: never an avoidable immediate death. Among moves that hit no wall and no body segment that is still there
  next turn, it prefers cells no equal-or-longer head can also reach (a head-to-head it could lose); ties are broken
  at random. With no such move it takes a risky one, and with nothing non-fatal at all, any move.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import njit

from .engine import Games
from .engine.stages import P_HEIGHT, P_WIDTH
from .engine.state import ALIVE, NO_MOVE
from .features import mark_obstacles, step_target


@njit(cache=True)
def safe_moves(state, params, wrapped, uniforms, out):
    """Fill out (B, S) with the ``safe`` bot's move for every live snake (see module docstring)."""
    width, height = params[P_WIDTH], params[P_HEIGHT]
    num_snakes = state.length.shape[1]
    grid = np.empty(width * height, np.uint8)
    rank = np.empty(4, np.int64)
    for b in range(state.turn.shape[0]):
        live = False
        for s in range(num_snakes):
            out[b, s] = NO_MOVE
            if state.elim_cause[b, s] == ALIVE:
                live = True
        if not live:
            continue
        mark_obstacles(state, b, width, height, grid)
        for s in range(num_snakes):
            if state.elim_cause[b, s] != ALIVE:
                continue
            best = 0
            for d in range(4):
                x, y = step_target(state, params, wrapped, b, s, d)
                if x < 0 or x >= width or y < 0 or y >= height or grid[x + y * width]:
                    rank[d] = 0  # certain death
                    continue
                rank[d] = 2
                for o in range(num_snakes):  # could an equal-or-longer head reach this cell too?
                    if o == s or state.elim_cause[b, o] != ALIVE or state.length[b, o] < state.length[b, s]:
                        continue
                    dx = abs(np.int64(state.body[b, o, 0, 0]) - x)
                    dy = abs(np.int64(state.body[b, o, 0, 1]) - y)
                    if wrapped:
                        dx, dy = min(dx, width - dx), min(dy, height - dy)
                    if dx + dy == 1:
                        rank[d] = 1
                        break
                best = max(best, rank[d])
            count = 0
            for d in range(4):
                if rank[d] == best:
                    count += 1
            pick = np.int64(uniforms[b, s] * count)
            for d in range(4):
                if rank[d] == best:
                    if pick == 0:
                        out[b, s] = d
                        break
                    pick -= 1


Bot = Callable[[Games], np.ndarray]


class RandomBot:
    """Uniformly random moves."""

    name = "random"

    def __init__(self, seed: int | np.random.Generator | None = None):
        self.rng = np.random.default_rng(seed)

    def __call__(self, games: Games) -> np.ndarray:
        moves = self.rng.integers(0, 4, size=(games.batch_size, games.num_snakes), dtype=np.int8)
        moves[~games.alive()] = NO_MOVE
        return moves


class SafeBot:
    """Never an avoidable immediate death (walls, bodies, head-to-heads it could lose); random among the rest."""

    name = "safe"

    def __init__(self, seed: int | np.random.Generator | None = None):
        self.rng = np.random.default_rng(seed)
        self._out: np.ndarray | None = None

    def __call__(self, games: Games) -> np.ndarray:
        shape = (games.batch_size, games.num_snakes)
        if self._out is None or self._out.shape != shape:
            self._out = np.empty(shape, np.int8)
        uniforms = self.rng.random(shape)
        safe_moves(games.state, games.params, games.settings.rules.wrapped, uniforms, self._out)
        return self._out.copy()


BOTS: dict[str, type] = {"random": RandomBot, "safe": SafeBot}


def make_bot(name: str, seed: int | np.random.Generator | None = None) -> Bot:
    if name not in BOTS:
        raise ValueError(f"unknown bot {name!r}; known: {', '.join(BOTS)}")
    return BOTS[name](seed)
