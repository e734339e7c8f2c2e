"""The encoders' common interface (``ObservationEncoder``: ``shape``, ``space``, a batched ``encode`` that fills an
``out`` array in place) and ``action_mask``."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from gymnasium import spaces

from ..engine import Games, GameSettings
from ..features import nonfatal_moves


def _check_out(out: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    """``out`` itself when the kernels can fill it in place (``what`` names the output in the error)."""
    if not isinstance(out, np.ndarray):
        raise ValueError(f"out must be a numpy array for the {what} output, got {type(out).__name__}")
    if out.shape != shape or out.dtype != np.uint8 or not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"out must be a writeable C-contiguous uint8 array of shape {shape} for the {what} output, "
                         f"got {out.dtype} {out.shape}" + ("" if out.flags.c_contiguous else " (not C-contiguous)"))
    return out


class ObservationEncoder:
    """Base of the observation encoders: per-snake ``shape`` and ``space``, and a batched ``encode``.

    Subclasses set ``name`` and implement ``shape``, ``high`` (the exact per-element upper bound) and ``_fill``.
    """

    name: ClassVar[str] = ""

    def __init__(self) -> None:
        self._spaces: dict[tuple[GameSettings, int], spaces.Box] = {}

    def shape(self, settings: GameSettings, num_snakes: int) -> tuple[int, ...]:
        """The observation shape of one snake."""
        raise NotImplementedError

    def high(self, settings: GameSettings, num_snakes: int) -> np.ndarray:
        """(*shape) uint8: the largest value each element can take."""
        raise NotImplementedError

    def space(self, settings: GameSettings, num_snakes: int) -> spaces.Box:
        """The observation space of one snake: uint8, ``low`` 0 (eliminated snakes see zeros), ``high`` exact."""
        key = (settings, num_snakes)
        if key not in self._spaces:
            high = self.high(settings, num_snakes)
            self._spaces[key] = spaces.Box(low=np.zeros_like(high), high=high, dtype=np.uint8)
        return self._spaces[key]

    def encode(self, games: Games, out: np.ndarray | None = None) -> np.ndarray:
        """(B, S, *shape) uint8 observations of every snake slot; eliminated snakes' rows are all zeros.

        ``out``, when given, must have exactly that shape and dtype; it is filled in place and returned.
        """
        shape = (games.batch_size, games.num_snakes, *self.shape(games.settings, games.num_snakes))
        out = np.empty(shape, np.uint8) if out is None else _check_out(out, shape, self.name)
        self._fill(games, out)
        return out

    def _fill(self, games: Games, out: np.ndarray) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def action_mask(games: Games, out: np.ndarray | None = None) -> np.ndarray:
    """(B, S, 4) uint8: 1 where a move (0 up, 1 down, 2 left, 3 right) is not certainly fatal.

    A move is allowed when it stays on the board (or wraps, in wrapped rulesets) and enters no segment that is
    still there next turn: the neck and a stacked tail block, a tail about to move does not. Head-to-heads are not
    judged. Eliminated snakes get all zeros. See ``features.nonfatal_moves``.
    """
    shape = (games.batch_size, games.num_snakes, 4)
    out = np.empty(shape, np.uint8) if out is None else _check_out(out, shape, "action-mask")
    nonfatal_moves(games.state, games.params, games.settings.rules.wrapped, out)
    return out
