"""What proposes a move before the safety layer: an exported policy (``ModelPlayer``) or a bot (``BotPlayer``).

A player maps one snake of a batch-of-one ``Games`` to move preferences, ``(4,)`` float64 (0 up, 1 down, 2 left,
3 right; larger is better): the policy's probabilities, or a bot's move as a one-hot.

``load_model`` reads an exported policy and the game it was trained for through ``battlesnake_policy`` (the file
format lives there: ``config.json`` beside the model file or in its run folder). The shape the encoder gives on the
trained board must equal the model's, or loading fails naming both.

Other board sizes: an egocentric encoder with a square window (``view`` = v, or the whole board ``2H - 1`` on a
square H x H board) is the same encoder with ``view=v`` on the trained board, so on any board the model sees the
v x v window centred on its head: a crop of a larger board (what lies farther than (v - 1) / 2 cells is unseen), or
a smaller board padded with off-board cells. Encoders whose shape cannot follow (the legacy grids on another board
size or snake count, or a non-square whole-board window) make the server play that game with its bot, logged once
per game.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from battlesnake_gym.bots import BOTS, make_bot
from battlesnake_gym.engine import Games, GameSettings
from battlesnake_gym.observations import EgocentricEncoder, ObservationEncoder, action_mask
from battlesnake_policy import ModelError, PolicySpec
from battlesnake_policy import load_model as load_policy_model

__all__ = ["BotPlayer", "EncoderPlan", "ModelError", "ModelPlayer", "load_model"]

log = logging.getLogger(__name__)


class BotPlayer:
    """A heuristic bot of ``battlesnake_gym.bots`` as the player: its move as a one-hot preference."""

    def __init__(self, bot: str = "flood"):
        if bot not in BOTS:
            raise ValueError(f"unknown bot {bot!r}; known: {', '.join(BOTS)}")
        self.name = bot

    def preferences(self, games: Games, s: int, seed: int = 0) -> np.ndarray:
        """(4,) one-hot of the bot's move for snake s of game 0 (a fresh bot per call: no state shared by threads)."""
        move = int(make_bot(self.name, seed)(games)[0, s])
        prefs = np.zeros(4)
        prefs[move if move >= 0 else 0] = 1.0
        return prefs

    def describe(self) -> str:
        return f"bot {self.name!r}"


@dataclass(frozen=True)
class EncoderPlan:
    """How a model sees a game's boards: an encoder giving the model's shape, or None (the bot plays)."""

    encoder: ObservationEncoder | None
    note: str  # "trained", "window" (egocentric crop/pad), or why the bot plays


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max()
    e = np.exp(z)
    return e / e.sum()


class ModelPlayer:
    """An exported policy (``policy.pt`` / ``policy.onnx``) and the game it was trained for.

    Args:
        policy: a ``battlesnake_policy.LoadedPolicy`` (anything with ``obs_shape`` and ``logits(obs, mask)``).
        spec: the ``PolicySpec`` it was trained for (or the settings as a dict: its keys are read, others ignored).
        source: where the spec came from, for messages.
    """

    def __init__(self, policy: Any, spec: PolicySpec | dict[str, Any], source: str = "defaults"):
        self.policy = policy
        self.obs_shape = tuple(int(d) for d in policy.obs_shape)
        self.spec = spec if isinstance(spec, PolicySpec) else PolicySpec.from_dict(spec, source)
        self.source = source
        self.encoder = self.spec.make_encoder()
        self.trained = self.spec.settings()
        trained_shape = self.spec.obs_shape()
        if trained_shape != self.obs_shape:
            s = self.spec
            raise ModelError(
                f"the model {getattr(policy, 'path', '')} takes observations of shape {self.obs_shape}, but its "
                f"encoder {s.encoder!r} (view {s.view}) gives {trained_shape} on the trained "
                f"{s.width}x{s.height} board with {s.num_snakes} snakes (settings from {source})")
        self.window = _square_window(self.encoder, self.obs_shape)
        self._plans: dict[tuple, EncoderPlan] = {}

    def describe(self) -> str:
        s = self.spec
        return (f"model {getattr(self.policy, 'path', self.policy)} (obs {self.obs_shape}, encoder {s.encoder!r} "
                f"view {s.view}, trained {s.width}x{s.height} {s.ruleset} with {s.num_snakes} snakes; "
                f"settings from {self.source})")

    def plan(self, settings: GameSettings, num_slots: int) -> EncoderPlan:
        """The encoder for games of these settings with ``num_slots`` snake slots (cached)."""
        key = (settings.width, settings.height, settings.rules.wrapped, num_slots)
        if key not in self._plans:
            self._plans[key] = self._make_plan(settings, num_slots)
        return self._plans[key]

    def _make_plan(self, settings: GameSettings, num_slots: int) -> EncoderPlan:
        try:
            shape = tuple(self.encoder.shape(settings, num_slots))
        except ValueError as e:  # e.g. a max-bordered grid smaller than the board
            shape, why = None, str(e)
        if shape == self.obs_shape:
            return EncoderPlan(self.encoder, "trained")
        if self.window is not None:
            return EncoderPlan(self.spec.make_encoder(view=self.window), "window")
        why = f"its encoder gives {shape} here" if shape is not None else why
        return EncoderPlan(None, f"the model takes {self.obs_shape} and {why} "
                                 f"({settings.width}x{settings.height}, {num_slots} snakes)")

    def preferences(self, games: Games, s: int, plan: EncoderPlan) -> np.ndarray:
        """(4,) the policy's move probabilities for snake s of game 0 (moves the mask forbids get ~0)."""
        if plan.encoder is None:
            raise ModelError(f"the model cannot see this board: {plan.note}")
        obs = plan.encoder.encode(games)[0, s]  # (*obs_shape) uint8
        mask = action_mask(games)[0, s]  # (4,) uint8
        logits = np.asarray(self.policy.logits(obs[None], mask[None]), np.float64).reshape(4)
        return _softmax(logits)


def _square_window(encoder: ObservationEncoder, obs_shape: tuple[int, ...]) -> int | None:
    """The window side v when the model is an egocentric encoder with a square v x v window, else None."""
    if not isinstance(encoder, EgocentricEncoder) or len(obs_shape) != 3:
        return None
    _, rows, cols = obs_shape
    return rows if rows == cols and rows % 2 == 1 else None


def load_model(path: str | os.PathLike, config: str | os.PathLike | None = None) -> ModelPlayer:
    """A ``ModelPlayer`` for the exported policy at ``path`` (a file, model folder or run folder), loaded without
    Ray (see ``battlesnake_policy.load_model``)."""
    model = load_policy_model(path, config, num_threads=1)
    return ModelPlayer(model.policy, model.spec, model.source)
