"""The training opponent pool of a batched env runner: who plays the seats that are not the learner's.

``OpponentPool`` holds, for the games of one runner (``battlesnake_rllib.sampler.BatchedEnvRunner``):

- the seating (``battlesnake_gym.seating.Seating.pool``): in the first ``opponent_games`` share of the games the
  pool's entries, taking turns game by game, play every snake but snake 0; the learner plays every other snake;
- the bots of the pool's bot entries, each deciding once a step for the whole batch;
- the past-policy snapshots of the ``"past"`` entry: a ring of the last ``past_policies`` weight sets the driver sent
  (``battlesnake_rllib.callbacks``), each played by an inference-only copy of the module, built when first used.
  Every ``"past"`` seat of a new game draws one snapshot among those kept and plays it for the whole game.

The pool never makes episodes: only the learner's seats become RLlib experience.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np

from battlesnake_gym.bots import make_bot
from battlesnake_gym.engine import Games
from battlesnake_gym.seating import Seating

from .settings import PAST, BatchSettings

#: The player name of the learning policy in the runner's seating.
LEARNER = "learner"
#: ``policy(obs, mask, module) -> actions``: one forward pass of ``module`` over N snakes.
Act = Callable[[np.ndarray, np.ndarray, Any], np.ndarray]


class OpponentPool:
    """The pool's seats, bots and past snapshots for one runner's games (see the module docstring).

    Built from the run's ``BatchSettings`` when the runner starts (a local runner beside remote ones has no games but
    still keeps the snapshots, which RLlib checkpoints with its state); ``start`` gives it its seed once the runner
    knows it, and ``seat`` its games (again on every curriculum stage).
    """

    def __init__(self, settings: BatchSettings):
        self.entries = [name for name in settings.opponents if name]
        self.share = float(settings.opponent_games if self.entries else 0.0)
        self.bots: dict[str, Any] = {}
        self._rng = np.random.default_rng()
        self._snapshots: list[tuple[int, dict[str, Any]] | None] = [None] * settings.past_policies  # ring (id, w)
        self._added = 0
        self._modules: dict[int, Any] = {}  # ring slot -> inference-only module copy, built when first used
        self.seating: Seating | None = None

    def start(self, seed: int | None) -> None:
        """Seed the bots and the snapshot draws (each runner its own ``seed``)."""
        self._rng = np.random.default_rng(seed)
        self.bots = {name: make_bot(name, seed) for name in dict.fromkeys(self.entries) if name != PAST}

    def seat(self, batch_size: int, num_snakes: int) -> None:
        """Seat the pool in ``batch_size`` new games of ``num_snakes`` snakes (``Seating.pool``)."""
        self.seating = Seating.pool(LEARNER, self.entries, self.share, batch_size, num_snakes)
        self.learner_seat = self.seating.seats(LEARNER)  # (B, S) seats whose lives become episodes
        self.pool_game = ~self.learner_seat.all(axis=1)  # (B,) games against the pool: they end with the learner
        self.past_seat = self.seating.seats(PAST) if PAST in self.seating.players else \
            np.zeros_like(self.learner_seat)  # (B, S)
        self.past_slot = np.full(self.learner_seat.shape, -1, np.int64)  # (B, S) ring slot of each "past" seat

    # ------------------------------------------------------------------ playing

    def start_games(self, games_mask: np.ndarray) -> None:
        """New games in ``games_mask`` (B,): each of their ``"past"`` seats draws a snapshot among those kept."""
        past = self.past_seat & games_mask[:, None]
        kept = [slot for slot, entry in enumerate(self._snapshots) if entry is not None]
        self.past_slot[past] = self._rng.choice(kept, int(past.sum())) if kept else -1

    def bot_moves(self, games: Games, actions: np.ndarray) -> None:
        """Fill ``actions`` (B, S) at the bot seats with the bots' moves."""
        self.seating.bot_moves(games, self.bots, actions)

    def past_moves(self, games: Games, obs: np.ndarray, mask: np.ndarray, actions: np.ndarray, act: Act,
                   learner_module: Any) -> None:
        """Fill ``actions`` (B, S) at the live ``"past"`` seats: one forward pass (``act``) per snapshot in play.
        Seats of a runner that has no snapshot yet play ``learner_module``."""
        seats = self.past_seat & games.alive()
        for slot in np.unique(self.past_slot[seats]):
            chosen = seats & (self.past_slot == slot)
            module = self._module(slot, learner_module) if slot >= 0 else learner_module
            actions[chosen] = act(obs[chosen], mask[chosen], module)

    @property
    def plays_past(self) -> bool:
        """Whether any seat of the current games is a ``"past"`` seat."""
        return self.seating is not None and bool(self.past_seat.any())

    # ------------------------------------------------------------------ snapshots

    @property
    def capacity(self) -> int:
        """Snapshots kept at most (``past_policies``; 0: none)."""
        return len(self._snapshots)

    def add_snapshot(self, snapshot_id: int, state: dict[str, Any]) -> list[int]:
        """Keep a past version of the policy (``module.get_state()`` weights); the oldest makes room when the ring is
        full, and seats playing it switch to the new one. Returns the ids kept, oldest first."""
        if not self._snapshots:
            raise ValueError("this runner keeps no snapshots (its BatchSettings' past_policies is 0)")
        slot = self._added % len(self._snapshots)
        self._snapshots[slot] = (int(snapshot_id), dict(state))
        self._modules.pop(slot, None)
        self._added += 1
        return self.snapshot_ids()

    def set_snapshots(self, snapshots: list[tuple[int, dict[str, Any]]]) -> list[int]:
        """Replace every snapshot with ``[(id, weights), ...]`` (oldest first), e.g. after a restore."""
        self._snapshots = [None] * len(self._snapshots)
        self._added = 0
        self._modules.clear()
        for snapshot_id, state in snapshots[-len(self._snapshots):] if self._snapshots else []:
            self.add_snapshot(snapshot_id, state)
        return self.snapshot_ids()

    def snapshot_ids(self) -> list[int]:
        """The ids of the snapshots kept, oldest first."""
        return [entry[0] for entry in self.snapshot_states()]

    def snapshot_states(self) -> list[tuple[int, dict[str, Any]]]:
        """``[(id, weights), ...]`` oldest first, as ``set_snapshots`` takes them."""
        n = len(self._snapshots)
        start = self._added % n if n and self._added > n else 0
        ring = self._snapshots[start:] + self._snapshots[:start]
        return [entry for entry in ring if entry is not None]

    def snapshot(self, slot: int) -> tuple[int, dict[str, Any]] | None:
        """Ring slot ``slot``'s (id, weights), or None while it is empty."""
        return self._snapshots[slot]

    def _module(self, slot: int, learner_module: Any) -> Any:
        """The inference-only copy of ``learner_module`` that plays ring slot ``slot``'s snapshot."""
        if slot not in self._modules:
            module = copy.deepcopy(learner_module)
            module.set_state(self._snapshots[slot][1])
            self._modules[slot] = module.eval()
        return self._modules[slot]
