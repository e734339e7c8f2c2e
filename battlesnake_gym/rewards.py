"""Rewards: named game events per snake and step, weighted by a reward configuration.

Events are read off the engine's state before and after a step; no rule is re-implemented and no reward lives inside a
rule stage. A reward function is a plain object with ``__call__(events) -> (B, S) float32`` and can be passed to any
environment of this package.

| event | counts, for one snake and one step |
|---|---|
| another_turn | 1 if the snake is still alive after the step |
| ate_food | food entries eaten (2 stacked entries count 2) |
| won | 1 if the game ended with this snake its only survivor (games of 2+ snakes) |
| died | 1 if the snake was eliminated on this step |
| ate_another_snake | snakes this snake beat head-to-head on this step |
| hit_wall | 1 if eliminated by a wall collision |
| hit_other_snake | 1 if eliminated running into another snake's body |
| hit_self | 1 if eliminated running into its own body |
| was_eaten | 1 if eliminated by losing a head-to-head |
| starved | 1 if eliminated out of health |
| hazard_death | 1 if eliminated by hazard damage |
| forbidden_move | 1 if the move was back into its own neck |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from numba import njit

from .engine.state import (
    ALIVE,
    HAZARD,
    HEAD_COLLISION,
    OUT_OF_HEALTH,
    P_HEIGHT,
    P_WIDTH,
    SELF_COLLISION,
    SNAKE_COLLISION,
    WALL_COLLISION,
)
from .features import DX, DY

EVENTS = (
    "another_turn", "ate_food", "won", "died", "ate_another_snake", "hit_wall", "hit_other_snake", "hit_self",
    "was_eaten", "starved", "hazard_death", "forbidden_move",
)
(E_TURN, E_FOOD, E_WON, E_DIED, E_ATE_SNAKE, E_WALL, E_OTHER, E_SELF, E_EATEN, E_STARVED, E_HAZARD,
 E_FORBIDDEN) = range(len(EVENTS))

PRESETS: Mapping[str, Mapping[str, float]] = MappingProxyType({
    # Sparse win/loss with a little food shaping: the default for self-play.
    "default": MappingProxyType({"won": 1.0, "died": -1.0, "ate_food": 0.02}),
    # The human-in-the-loop preset of the AWS starter pack's paper (base +0.01 per turn).
    "starter-pack-hitl": MappingProxyType({
        "another_turn": 0.01, "won": 5.0, "died": -5.0, "forbidden_move": -2.0, "hit_wall": -2.0, "starved": -2.0,
        "ate_another_snake": 2.0,
    }),
    # Survival only: +1 per turn alive, for solo games.
    "survival": MappingProxyType({"another_turn": 1.0}),
})


class Snapshot:
    """What the events need from the board before a step (allocated once, refilled in place)."""

    def __init__(self, batch_size: int, num_snakes: int, food_capacity: int):
        self.head = np.zeros((batch_size, num_snakes, 2), np.int16)  # (B, S, 2)
        self.neck = np.zeros((batch_size, num_snakes, 2), np.int16)  # (B, S, 2); head again for 1-segment snakes
        self.cause = np.zeros((batch_size, num_snakes), np.int8)  # (B, S)
        self.food = np.zeros((batch_size, food_capacity, 2), np.int16)  # (B, F, 2)
        self.food_count = np.zeros(batch_size, np.int32)  # (B,)

    def take(self, state) -> None:
        if self.food.shape[1] < state.food.shape[1]:
            self.food = np.zeros_like(state.food)
        _snapshot(state, self.head, self.neck, self.cause, self.food, self.food_count)


@njit(cache=True, nogil=True)
def _snapshot(state, head, neck, cause, food, food_count):
    for b in range(state.turn.shape[0]):
        for s in range(state.length.shape[1]):
            head[b, s, 0], head[b, s, 1] = state.body[b, s, 0, 0], state.body[b, s, 0, 1]
            i = 1 if state.length[b, s] > 1 else 0
            neck[b, s, 0], neck[b, s, 1] = state.body[b, s, i, 0], state.body[b, s, i, 1]
            cause[b, s] = state.elim_cause[b, s]
        n = state.food_count[b]
        food_count[b] = n
        for f in range(n):
            food[b, f, 0], food[b, f, 1] = state.food[b, f, 0], state.food[b, f, 1]


@njit(cache=True, nogil=True)
def _events(state, params, wrapped, head, neck, cause_before, food, food_count, actions, stepped, game_over, out):
    out[:] = 0
    num_snakes = state.length.shape[1]
    for b in range(state.turn.shape[0]):
        if not stepped[b]:
            continue
        survivors = 0
        for s in range(num_snakes):
            if state.elim_cause[b, s] == ALIVE:
                survivors += 1
        for s in range(num_snakes):
            if cause_before[b, s] != ALIVE:
                continue  # already out before this step
            cause = state.elim_cause[b, s]
            hx, hy = state.body[b, s, 0, 0], state.body[b, s, 0, 1]
            if cause == ALIVE:
                out[b, s, E_TURN] = 1
                if game_over[b] and survivors == 1 and num_snakes > 1:
                    out[b, s, E_WON] = 1
            else:
                out[b, s, E_DIED] = 1
                if cause == WALL_COLLISION:
                    out[b, s, E_WALL] = 1
                elif cause == SNAKE_COLLISION:
                    out[b, s, E_OTHER] = 1
                elif cause == SELF_COLLISION:
                    out[b, s, E_SELF] = 1
                elif cause == HEAD_COLLISION:
                    out[b, s, E_EATEN] = 1
                    by = state.elim_by[b, s]
                    if by >= 0:
                        out[b, by, E_ATE_SNAKE] += 1
                elif cause == OUT_OF_HEALTH:
                    out[b, s, E_STARVED] = 1
                elif cause == HAZARD:
                    out[b, s, E_HAZARD] = 1
            if cause != HAZARD:  # hazard eliminations happen before feeding; every other snake on food ate
                for f in range(food_count[b]):
                    if food[b, f, 0] == hx and food[b, f, 1] == hy:
                        out[b, s, E_FOOD] += 1
            a = actions[b, s]
            if 0 <= a <= 3 and (neck[b, s, 0] != head[b, s, 0] or neck[b, s, 1] != head[b, s, 1]):
                # Where the move would have gone from the old head: the neck means a reverse.
                x = np.int64(head[b, s, 0]) + DX[a]
                y = np.int64(head[b, s, 1]) + DY[a]
                if wrapped:
                    x %= params[P_WIDTH]
                    y %= params[P_HEIGHT]
                if x == neck[b, s, 0] and y == neck[b, s, 1]:
                    out[b, s, E_FORBIDDEN] = 1


def step_events(games, snapshot: Snapshot, actions: np.ndarray, stepped: np.ndarray, game_over: np.ndarray,
                out: np.ndarray | None = None) -> np.ndarray:
    """(B, S, len(EVENTS)) int32 event counts of the step just taken, from ``snapshot`` (taken before it)."""
    st = games.state
    if out is None:
        out = np.zeros((games.batch_size, games.num_snakes, len(EVENTS)), np.int32)
    _events(st, games.params, games.settings.rules.wrapped, snapshot.head, snapshot.neck, snapshot.cause,
            snapshot.food, snapshot.food_count, actions, stepped, game_over, out)
    return out


@dataclass(frozen=True)
class RewardConfig:
    """Weights of the named events; reward = sum(weight * count). Unnamed events weigh 0."""

    weights: Mapping[str, float] = field(default_factory=lambda: dict(PRESETS["default"]))

    def __post_init__(self) -> None:
        if not isinstance(self.weights, Mapping):
            raise ValueError(f"reward weights must be a mapping of event name to number, got {self.weights!r}")
        unknown = sorted(set(self.weights) - set(EVENTS))
        if unknown:
            raise ValueError(f"unknown reward events {unknown}; known: {', '.join(EVENTS)}")
        for name, value in self.weights.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
                raise ValueError(f"reward weight {name!r} must be a finite number, got {value!r}")
        vector = np.zeros(len(EVENTS), np.float32)
        for name, value in self.weights.items():
            vector[EVENTS.index(name)] = value
        object.__setattr__(self, "_vector", vector)

    @classmethod
    def preset(cls, name: str, **overrides: float) -> RewardConfig:
        if name not in PRESETS:
            raise ValueError(f"unknown reward preset {name!r}; known: {', '.join(PRESETS)}")
        return cls({**PRESETS[name], **overrides})

    def __call__(self, events: np.ndarray) -> np.ndarray:
        """(B, S, E) event counts -> (B, S) float32 rewards."""
        return events @ self._vector


def make_rewards(spec: str | Mapping[str, float] | RewardConfig | None) -> RewardConfig:
    """A reward config from a preset name, a weights mapping, or a config (None: the default preset)."""
    if spec is None:
        return RewardConfig.preset("default")
    if isinstance(spec, RewardConfig):
        return spec
    if isinstance(spec, str):
        return RewardConfig.preset(spec)
    return RewardConfig(spec)
