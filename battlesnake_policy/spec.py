"""The game a policy was trained for, as its ``config.json`` records it, and where a model's files are.

A model folder holds ``policy.pt`` (TorchScript) and/or ``policy.onnx`` and ``config.json``::

    {"format": "battlesnake-policy/1",
     "game": {"encoder": "egocentric", "view": 0, "width": 11, "height": 11, "num_snakes": 4,
              "ruleset": "standard", "map": "standard", "max_turns": 500},
     "training": {...the run's settings, for the record...}}

``PolicySpec`` is the ``game`` part, typed and validated: enough to rebuild the observation encoder and the board
the policy was trained on. Older runs wrote the training settings alone (a flat object with the same keys among
others); ``read_spec`` reads both. A run folder holds ``model/`` and its own ``config.json``; ``find_model_file``
and ``read_spec`` look beside the model file first, then in its parent folder.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from battlesnake_gym.engine import GameSettings, RulesError
from battlesnake_gym.observations import ENCODERS, EgocentricEncoder, ObservationEncoder, make_encoder

CONFIG_FILE = "config.json"
TORCHSCRIPT_FILE = "policy.pt"
ONNX_FILE = "policy.onnx"
MODEL_FILES = (TORCHSCRIPT_FILE, ONNX_FILE)
FORMAT_NAME = "battlesnake-policy/1"


class ModelError(ValueError):
    """A model file, or its config.json, that cannot be played with; the message says which and why."""


@dataclass(frozen=True)
class PolicySpec:
    """How a policy sees the game: its observation encoder and the board it was trained on.

    These are also the training defaults (``battlesnake_rllib.config.TrainArgs`` takes its game fields from here).
    """

    encoder: str = "territory"
    """Observation encoder (a name of ``battlesnake_gym.observations.ENCODERS``)."""
    view: int = 0
    """Egocentric window side (odd); 0 = the whole board from any head position (2H-1 x 2W-1)."""
    width: int = 11
    """Board width."""
    height: int = 11
    """Board height."""
    num_snakes: int = 4
    """Snakes a game."""
    ruleset: str = "standard"
    """Official ruleset."""
    map: str = "standard"
    """Official map."""
    max_turns: int = 500
    """Games still running are cut here (a draw)."""

    def __post_init__(self) -> None:
        if not isinstance(self.encoder, str) or self.encoder not in ENCODERS:
            raise ModelError(f"unknown encoder {self.encoder!r}; known: {', '.join(ENCODERS)}")
        for name in ("view", "width", "height", "num_snakes", "max_turns"):
            value = getattr(self, name)
            low = 0 if name == "view" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ModelError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.view and self.view % 2 == 0:
            raise ModelError(f"view must be 0 (the whole board) or an odd window side, got {self.view}")
        try:
            self.settings()
        except (RulesError, ValueError, TypeError) as e:
            raise ModelError(f"the game {self.width}x{self.height} {self.ruleset}/{self.map}: {e}") from None

    @property
    def windowed(self) -> bool:
        """The encoder sees a window centred on the head (``view`` cells a side)."""
        return issubclass(ENCODERS[self.encoder], EgocentricEncoder)

    def settings(self) -> GameSettings:
        """The trained board's ``GameSettings``."""
        return GameSettings(width=self.width, height=self.height, ruleset=self.ruleset, map=self.map)

    def make_encoder(self, view: int | None = None) -> ObservationEncoder:
        """The observation encoder; ``view`` overrides the window of a windowed encoder."""
        view = self.view if view is None else view
        if self.windowed:
            return ENCODERS[self.encoder](view=view or None)
        return make_encoder(self.encoder)

    def obs_shape(self) -> tuple[int, ...]:
        """One snake's observation shape on the trained board."""
        return tuple(int(d) for d in self.make_encoder().shape(self.settings(), self.num_snakes))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "") -> PolicySpec:
        """The spec from a ``game`` object, or from older flat training settings (other keys are ignored)."""
        if not isinstance(values, dict):
            raise ModelError(f"{source or 'the game spec'} must be a JSON object, got {type(values).__name__}")
        names = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in values.items() if k in names})
        except ModelError as e:
            raise ModelError(f"{source}: {e}" if source else str(e)) from None


def write_config(folder: str | os.PathLike, spec: PolicySpec, training: dict[str, Any] | None = None) -> Path:
    """``config.json`` in ``folder``: the format, the game spec and (for the record) the training settings."""
    path = Path(folder) / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"format": FORMAT_NAME, "game": spec.to_dict(), "training": training or {}}
    path.write_text(json.dumps(body, indent=2, default=str) + "\n")
    return path


def read_config(path: str | os.PathLike) -> PolicySpec:
    """The ``PolicySpec`` in a ``config.json`` (this format, or the flat training settings older runs wrote)."""
    path = Path(path)
    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read the model settings {path}: {e}") from None
    if not isinstance(values, dict):
        raise ModelError(f"{path} must hold a JSON object")
    if "format" in values:
        if values["format"] != FORMAT_NAME:
            raise ModelError(f"{path} is in format {values['format']!r}; this version reads {FORMAT_NAME!r}")
        return PolicySpec.from_dict(values.get("game"), str(path))
    return PolicySpec.from_dict(values, str(path))


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
    raise ModelError(f"no model at {path} (no policy file at {path})")


def find_config(model_file: Path) -> Path | None:
    """``config.json`` beside the model file, else in its parent folder (a run folder); None when neither has one."""
    for candidate in (model_file.parent / CONFIG_FILE, model_file.parent.parent / CONFIG_FILE):
        if candidate.is_file():
            return candidate
    return None
