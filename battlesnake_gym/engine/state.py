"""The batched board state (every game of a batch held in a handful of numpy arrays) and the settings vector layout.

Coordinates follow the Battlesnake API: ``(0, 0)`` is the bottom-left cell, ``up`` is ``y + 1``.
Bodies are stored head first, stacked segments repeated, exactly as the official engine lists them.
A single game is a batch of one.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# Moves, as the action index every layer of the project uses.
UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3
MOVE_NAMES = ("up", "down", "left", "right")
#: A move string that is not exactly one of MOVE_NAMES: the move stage continues neck-to-head.
INVALID_MOVE = 4
#: No move given (only legal for snakes that are already eliminated).
NO_MOVE = -1

# Elimination causes; index 0 means "still in the game".
ALIVE = 0
CAUSE_NAMES = (
    "",
    "snake-collision",
    "snake-self-collision",
    "out-of-health",
    "hazard",
    "head-collision",
    "wall-collision",
)
SNAKE_COLLISION, SELF_COLLISION, OUT_OF_HEALTH, HAZARD, HEAD_COLLISION, WALL_COLLISION = range(1, 7)
CAUSE_CODES = {name: code for code, name in enumerate(CAUSE_NAMES) if name}

# The settings layout: every compiled kernel (rule and map stages, features, bots, rewards, the safety layer) reads
# the game's settings from one int64 vector indexed by these (``GameSettings.params()`` fills it).
P_WIDTH, P_HEIGHT, P_FOOD_SPAWN_CHANCE, P_MINIMUM_FOOD, P_HAZARD_DAMAGE, P_SHRINK_EVERY = range(6)
NUM_PARAMS = 6

MAX_HEALTH = 100
START_LENGTH = 3
#: Nobody eliminated the snake (starvation, walls, hazards) or it is alive.
BY_NOBODY = -1


class GameState(NamedTuple):
    """State of B games with S snake slots each (numba takes this tuple as is).

    Capacities: L body segments per snake, F food entries and Z hazard entries per game. Unused slots hold
    stale values; the counts say what is real.
    """

    turn: np.ndarray  # (B,) int32 — the board's turn
    body: np.ndarray  # (B, S, L, 2) int16 — x, y of each segment, head first
    length: np.ndarray  # (B, S) int32 — segments in use (stacked ones counted)
    health: np.ndarray  # (B, S) int32
    elim_cause: np.ndarray  # (B, S) int8 — 0 alive, else an index into CAUSE_NAMES
    elim_by: np.ndarray  # (B, S) int16 — snake slot that eliminated it, or BY_NOBODY
    elim_turn: np.ndarray  # (B, S) int32 — turn recorded with the elimination
    food: np.ndarray  # (B, F, 2) int16 — food in board order
    food_count: np.ndarray  # (B,) int32
    hazards: np.ndarray  # (B, Z, 2) int16 — hazard entries in board order; a cell may repeat (stacked)
    hazard_count: np.ndarray  # (B,) int32
    rng: np.ndarray  # (B,) uint64 — each game's own random stream (splitmix64 state)
    royale_seed: np.ndarray  # (B,) uint64 — seeds the royale side sequence, fixed for a game's life

    @property
    def batch_size(self) -> int:
        return int(self.turn.shape[0])

    @property
    def num_snakes(self) -> int:
        return int(self.length.shape[1])


def allocate(batch_size: int, num_snakes: int, body_capacity: int, food_capacity: int,
             hazard_capacity: int) -> GameState:
    """Zeroed arrays for ``batch_size`` games; every snake starts eliminated-free with length 0."""
    b, s = batch_size, num_snakes
    return GameState(
        turn=np.zeros(b, np.int32),
        body=np.zeros((b, s, body_capacity, 2), np.int16),
        length=np.zeros((b, s), np.int32),
        health=np.zeros((b, s), np.int32),
        elim_cause=np.zeros((b, s), np.int8),
        elim_by=np.full((b, s), BY_NOBODY, np.int16),
        elim_turn=np.zeros((b, s), np.int32),
        food=np.zeros((b, food_capacity, 2), np.int16),
        food_count=np.zeros(b, np.int32),
        hazards=np.zeros((b, hazard_capacity, 2), np.int16),
        hazard_count=np.zeros(b, np.int32),
        rng=np.zeros(b, np.uint64),
        royale_seed=np.zeros(b, np.uint64),
    )


def copy_state(state: GameState) -> GameState:
    return GameState(*(a.copy() for a in state))


def select_games(state: GameState, index) -> GameState:
    """A new state holding the games picked by ``index`` (an int, slice or index array)."""
    if isinstance(index, (int, np.integer)):
        index = slice(int(index), int(index) + 1)
    return GameState(*(np.ascontiguousarray(a[index]) for a in state))


def with_capacity(state: GameState, body: int, food: int, hazards: int) -> GameState:
    """The same games in arrays at least this large (existing entries are kept)."""

    def grow(a: np.ndarray, axis: int, size: int) -> np.ndarray:
        if a.shape[axis] >= size:
            return a
        pad = [(0, 0)] * a.ndim
        pad[axis] = (0, size - a.shape[axis])
        return np.pad(a, pad)

    return state._replace(
        body=grow(state.body, 2, body),
        food=grow(state.food, 1, food),
        hazards=grow(state.hazards, 1, hazards),
    )
