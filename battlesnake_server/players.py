"""What proposes a move before the safety layer: an exported policy (``ModelPlayer``) or a bot (``BotPlayer``).

A player maps one snake of a batch-of-one ``Games`` to move preferences, ``(4,)`` float64 (0 up, 1 down, 2 left,
3 right; larger is better): the policy's probabilities, or a bot's move as a one-hot.

``load_model`` finds the encoder a model was trained with. An exported file records its observation shape; the
encoder's settings live in the run's ``config.json`` (``TrainArgs``: ``encoder``, ``view``, board size, snakes),
looked for beside the model file, then in its parent folder (a run folder holds ``model/policy.pt`` and
``config.json``). The shape the encoder gives on the trained board must equal the model's, or loading fails naming
both.

Other board sizes: the egocentric encoder with a square window (``view`` = v, or the whole board ``2H - 1`` on a
square H x H board) is the same encoder as ``EgocentricEncoder(view=v)`` on the trained board, so on any board the
model sees the v x v window centred on its head: a crop of a larger board (what lies farther than (v - 1) / 2 cells
is unseen), or a smaller board padded with off-board cells. Encoders whose shape cannot follow (the legacy grids on
another board size or snake count, or a non-square whole-board window) make the server play that game with its bot,
logged once per game.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from battlesnake_gym.bots import BOTS, make_bot
from battlesnake_gym.engine import Games, GameSettings, RulesError
from battlesnake_gym.observations import EgocentricEncoder, ObservationEncoder, action_mask, make_encoder

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
MODEL_FILES = ("policy.pt", "policy.onnx")
#: The training defaults (``battlesnake_rllib.config.TrainArgs``) a config.json may leave out.
TRAINING_DEFAULTS: dict[str, Any] = {"encoder": "egocentric", "view": 0, "width": 11, "height": 11,
                                     "num_snakes": 4, "ruleset": "standard", "map": "standard"}


class ModelError(ValueError):
    """A model file, or its config.json, that the server cannot play with; the message says which and why."""


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
    """An exported policy (``policy.pt`` / ``policy.onnx``) and the encoder it was trained with.

    Args:
        policy: a ``battlesnake_rllib.export.LoadedPolicy`` (anything with ``obs_shape`` and ``logits(obs, mask)``).
        config: the run's training settings (``TRAINING_DEFAULTS`` keys; others are ignored).
        source: where the settings came from, for messages.
    """

    def __init__(self, policy: Any, config: dict[str, Any], source: str = "defaults"):
        self.policy = policy
        self.obs_shape = tuple(int(d) for d in policy.obs_shape)
        self.config = {**TRAINING_DEFAULTS, **{k: v for k, v in config.items() if k in TRAINING_DEFAULTS}}
        self.source = source
        c = self.config
        try:
            self.encoder = _encoder(c["encoder"], c["view"])
            self.trained = GameSettings(width=c["width"], height=c["height"], ruleset=c["ruleset"], map=c["map"])
            trained_shape = self.encoder.shape(self.trained, c["num_snakes"])
        except (ValueError, TypeError) as e:
            raise ModelError(f"the training settings from {source} do not describe an encoder: {e}") from None
        if tuple(trained_shape) != self.obs_shape:
            raise ModelError(
                f"the model {getattr(policy, 'path', '')} takes observations of shape {self.obs_shape}, but its "
                f"encoder {c['encoder']!r} (view {c['view']}) gives {tuple(trained_shape)} on the trained "
                f"{c['width']}x{c['height']} board with {c['num_snakes']} snakes (settings from {source})")
        self.window = _square_window(self.encoder, self.obs_shape)
        self._plans: dict[tuple, EncoderPlan] = {}

    def describe(self) -> str:
        c = self.config
        return (f"model {getattr(self.policy, 'path', self.policy)} (obs {self.obs_shape}, encoder {c['encoder']!r} "
                f"view {c['view']}, trained {c['width']}x{c['height']} {c['ruleset']} with {c['num_snakes']} snakes; "
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
            return EncoderPlan(EgocentricEncoder(view=self.window), "window")
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


def _encoder(name: Any, view: Any) -> ObservationEncoder:
    if not isinstance(name, str):
        raise ValueError(f"encoder must be a name, got {name!r}")
    if name == "egocentric":
        if isinstance(view, bool) or not isinstance(view, int) or view < 0:
            raise ValueError(f"view must be 0 (whole board) or an odd window side, got {view!r}")
        return EgocentricEncoder(view=view or None)
    return make_encoder(name)


def _square_window(encoder: ObservationEncoder, obs_shape: tuple[int, ...]) -> int | None:
    """The window side v when the model is an egocentric encoder with a square v x v window, else None."""
    if not isinstance(encoder, EgocentricEncoder) or len(obs_shape) != 3:
        return None
    _, rows, cols = obs_shape
    return rows if rows == cols and rows % 2 == 1 else None


def find_model_file(path: str | os.PathLike) -> Path:
    """The policy file ``path`` names: a file, a folder holding ``policy.pt`` / ``policy.onnx``, or a run folder
    (``model/policy.pt``)."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        for folder in (path, path / "model"):
            for name in MODEL_FILES:
                if (folder / name).is_file():
                    return folder / name
        raise ModelError(f"no {' or '.join(MODEL_FILES)} in {path} or {path / 'model'}")
    raise ModelError(f"no model at {path}")


def read_training_config(model_file: Path, config: str | os.PathLike | None = None) -> tuple[dict[str, Any], str]:
    """(training settings, where they came from): ``config`` if given, else ``config.json`` beside the model file
    or in its parent folder; ``({}, "")`` when there is none."""
    candidates = [Path(config)] if config is not None else [model_file.parent / CONFIG_FILE,
                                                             model_file.parent.parent / CONFIG_FILE]
    for candidate in candidates:
        if candidate.is_file():
            try:
                values = json.loads(candidate.read_text())
            except (OSError, ValueError) as e:
                raise ModelError(f"cannot read the training settings {candidate}: {e}") from None
            if not isinstance(values, dict):
                raise ModelError(f"{candidate} must hold a JSON object of training settings")
            return values, str(candidate)
    if config is not None:
        raise ModelError(f"no training settings file at {config}")
    return {}, ""


def load_model(path: str | os.PathLike, config: str | os.PathLike | None = None) -> ModelPlayer:
    """A ``ModelPlayer`` for the exported policy at ``path`` (see ``find_model_file``), loaded without Ray.

    Without a config.json, an observation shape of ``(10, v, v)`` (v odd) is read as the egocentric encoder with a
    v x v window (logged); any other shape is an error asking for the run's config.json.
    """
    from battlesnake_rllib.export import load_policy  # torch (and onnxruntime for .onnx), never Ray

    model_file = find_model_file(path)
    try:
        policy = load_policy(model_file, num_threads=1)
    except (ValueError, ImportError, FileNotFoundError) as e:
        raise ModelError(str(e)) from None
    values, source = read_training_config(model_file, config)
    if not source:
        shape = tuple(policy.obs_shape)
        if len(shape) == 3 and shape[0] == len(EgocentricEncoder.channels) and shape[1] == shape[2] and shape[1] % 2:
            log.warning("no %s beside %s: reading its observation shape %s as the egocentric encoder with a "
                        "%dx%d window", CONFIG_FILE, model_file, shape, shape[1], shape[1])
            values, source = {"encoder": "egocentric", "view": shape[1]}, f"the observation shape {shape}"
        else:
            raise ModelError(f"no {CONFIG_FILE} beside {model_file} or in {model_file.parent.parent}, and its "
                             f"observation shape {shape} is not an egocentric window: pass the run's config.json")
    try:
        return ModelPlayer(policy, values, source)
    except RulesError as e:
        raise ModelError(f"the training settings from {source}: {e}") from None
