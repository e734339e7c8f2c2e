"""``BatchEnv``: B games x S snakes stepped at once, with observations, action masks, rewards and episode ends for
every snake slot. The PettingZoo, Gymnasium and RLlib environments are thin views of it, and the fast training
sampler drives it directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from ..engine import Games, GameSettings, RulesError
from ..engine.state import NO_MOVE
from ..observations import ObservationEncoder, action_mask, make_encoder
from ..rewards import EVENTS, RewardConfig, Snapshot, make_rewards, step_events


class BatchStep(NamedTuple):
    obs: np.ndarray  # (B, S, *obs_shape) uint8 — every slot, after the step (zeros for eliminated snakes)
    rewards: np.ndarray  # (B, S) float32 — this step's reward of every snake that played it
    terminated: np.ndarray  # (B, S) bool — the snake died on this step, or its game ended with it alive
    truncated: np.ndarray  # (B, S) bool — the game hit max_turns with the snake alive
    game_done: np.ndarray  # (B,) bool — the game ended (terminated or truncated) on this step
    events: np.ndarray  # (B, S, len(EVENTS)) int32 — the event counts behind the rewards


def game_seeds(seed: int, count: int) -> np.ndarray:
    """``count`` game seeds derived from one user seed (what ``reset(seed=...)`` of every env uses)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise RulesError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.SeedSequence(int(seed)).generate_state(count, np.uint64)


def settings_from(settings: GameSettings | Mapping | None, **overrides) -> GameSettings:
    """GameSettings from a GameSettings, a mapping of its fields, or None (arena defaults), plus overrides."""
    if settings is None:
        base = GameSettings()
    elif isinstance(settings, GameSettings):
        base = settings
    elif isinstance(settings, Mapping):
        unknown = sorted(set(settings) - set(GameSettings.__dataclass_fields__))
        if unknown:
            raise RulesError(f"unknown game settings {unknown}; known: {', '.join(GameSettings.__dataclass_fields__)}")
        base = GameSettings(**settings)
    else:
        raise RulesError(f"game settings must be a GameSettings or a mapping, got {type(settings).__name__}")
    return base.replace(**{k: v for k, v in overrides.items() if v is not None})


class BatchEnv:
    """B games x S snakes with observations and rewards for every slot.

    Args:
        settings: GameSettings (board, ruleset, map, food and hazard settings); arena defaults if None.
        num_snakes: snakes per game (S).
        batch_size: games stepped together (B).
        encoder: an ObservationEncoder or its registered name (``observations.ENCODERS``).
        rewards: a RewardConfig, a preset name (``rewards.PRESETS``) or a mapping of event -> weight.
        max_turns: games still running at this turn are truncated (None: never).
        seed: seeds every game's stream (see ``Games``).
    """

    def __init__(self, settings: GameSettings | Mapping | None = None, num_snakes: int = 4, batch_size: int = 1,
                 encoder: str | ObservationEncoder = "egocentric", rewards: str | Mapping | RewardConfig | None = None,
                 max_turns: int | None = None, seed: int | np.random.Generator | None = None):
        self.settings = settings_from(settings)
        if max_turns is not None and (isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 1):
            raise RulesError(f"max_turns must be a positive integer or None, got {max_turns!r}")
        self.max_turns = max_turns
        self.encoder = make_encoder(encoder) if isinstance(encoder, str) else encoder
        self.reward_fn = make_rewards(rewards)
        self.games = Games(self.settings, num_snakes=num_snakes, batch_size=batch_size, seed=seed)
        b, s = self.games.batch_size, self.games.num_snakes
        self.obs_shape = tuple(self.encoder.shape(self.settings, s))
        self.obs = np.zeros((b, s, *self.obs_shape), np.uint8)
        self.action_mask = np.zeros((b, s, 4), np.uint8)
        self._snapshot = Snapshot(b, s, self.games.state.food.shape[1])
        self._events = np.zeros((b, s, len(EVENTS)), np.int32)
        self._all = np.ones(b, np.bool_)
        self.observe()

    @property
    def batch_size(self) -> int:
        return self.games.batch_size

    @property
    def num_snakes(self) -> int:
        return self.games.num_snakes

    def observe(self) -> np.ndarray:
        """Re-encode every slot's observation and action mask from the current boards."""
        self.encoder.encode(self.games, self.obs)
        action_mask(self.games, self.action_mask)
        return self.obs

    def reset(self, mask: np.ndarray | None = None, seeds=None) -> np.ndarray:
        """New games in the masked slots (all by default); returns the observations of all slots."""
        self.games.reset(mask, seeds)
        return self.observe()

    def step(self, actions, mask: np.ndarray | None = None) -> BatchStep:
        """Every live snake of the masked games (all by default) moves; games that end are NOT reset here.

        ``actions`` (B, S) ints in [0, 4); entries of eliminated snakes are ignored.
        """
        games = self.games
        actions = np.asarray(actions)
        shape = (games.batch_size, games.num_snakes)
        if actions.shape != shape or actions.dtype.kind not in "iu":
            raise RulesError(f"actions must be integers of shape {shape}, got {actions.dtype} {actions.shape}")
        alive = games.alive()
        stepped = self._all if mask is None else mask
        ended = games.finished() & stepped
        if ended.any():
            raise RulesError(f"game {int(np.flatnonzero(ended)[0])} is over: reset it before stepping it again")
        moves = np.where(alive, actions, NO_MOVE)
        bad = (moves < NO_MOVE) | (moves > 3)
        if bad.any():
            b, s = np.argwhere(bad)[0]
            raise RulesError(f"action {actions[b, s]} of snake {s} in game {b} is not in the action space "
                             f"(0 up, 1 down, 2 left, 3 right)")
        moves = moves.astype(np.int8)
        self._snapshot.take(games.state)
        games.step(moves, mask)
        over = games.finished() & stepped
        events = step_events(games, self._snapshot, moves, stepped, over, self._events)
        rewards = self.reward_fn(events).astype(np.float32)
        alive_after = games.alive()
        played = alive & stepped[:, None]
        terminated = played & (~alive_after | over[:, None])
        truncated = np.zeros_like(terminated)
        if self.max_turns is not None:
            cut = stepped & ~over & (games.state.turn >= self.max_turns)
            truncated = played & alive_after & cut[:, None]
            over = over | cut
        rewards[~played] = 0.0
        return BatchStep(self.observe(), rewards, terminated, truncated, over, events.copy())
