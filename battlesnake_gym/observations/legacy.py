"""The global grids of the archived AWS SageMaker Battlesnake starter pack (``LegacyGridEncoder`` and its six
named encodings), for users migrating from it.

Coordinates: the grids are drawn top row first (row 0 is y = H - 1), as the starter pack's models were trained.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numba import njit

from ..engine import Games, GameSettings
from ..engine.state import ALIVE
from .base import ObservationEncoder

#: The legacy grids' wall value: the starter pack's -1 as a uint8 (``obs.view(np.int8)`` gives -1 back).
LEGACY_BORDER = 255
#: Legacy numbered bodies stop here, so a body number never reads as the border.
LEGACY_MAX_NUMBER = 254
#: The starter pack's largest board (19 x 19) plus a one-cell border on each side.
LEGACY_MAX_SIZE = 21


# ---------------------------------------------------------------------------------------------- compiled kernels


@njit(cache=True, nogil=True)
def _legacy_kernel(state, width, height, row0, col0, numbered, viewer_first, out):
    """Fill out (B, S, rows, cols, S + 1) uint8; see LegacyGridEncoder for the layers."""
    num_games, num_snakes = state.length.shape
    for b in range(num_games):
        for s in range(num_snakes):
            view = out[b, s]
            if state.elim_cause[b, s] != ALIVE:
                view[:] = 0
                continue
            view[:] = LEGACY_BORDER
            view[row0:row0 + height, col0:col0 + width, :] = 0
            top = row0 + height - 1  # the grid's rows run from y = height - 1 down to y = 0
            for k in range(state.food_count[b]):
                view[top - state.food[b, k, 1], col0 + state.food[b, k, 0], 0] = 1
            for o in range(num_snakes):
                if state.elim_cause[b, o] != ALIVE:
                    continue
                if not viewer_first:
                    layer = o + 1
                elif o == s:
                    layer = 1
                else:
                    layer = o + 2 if o < s else o + 1
                n = np.int64(state.length[b, o])
                for i in range(n):
                    r, c = top - state.body[b, o, i, 1], col0 + state.body[b, o, i, 0]
                    if numbered:
                        value = min(n - i, LEGACY_MAX_NUMBER)
                        if view[r, c, layer] < value:
                            view[r, c, layer] = value
                    elif i > 0:
                        view[r, c, layer] = 1
                if not numbered:  # the head is drawn last: it wins over body segments stacked under it
                    view[top - state.body[b, o, 0, 1], col0 + state.body[b, o, 0, 0], layer] = 5


# ---------------------------------------------------------------------------------------------- interface


class LegacyGridEncoder(ObservationEncoder):
    """The global encodings of the AWS SageMaker Battlesnake starter pack, for users migrating from it.

    Learned from the archived starter pack (github.com/awslabs/sagemaker-battlesnake-ai):
    ``BattlesnakeGym/battlesnake_gym/snake_gym.py`` (``get_observation_space``, ``_get_observation``,
    ``_get_state``), ``BattlesnakeGym/battlesnake_gym/snake.py`` (``Snake.get_snake_map``), the RLlib wrapper
    ``RLlibEnv/training/training_src/{ma_battlesnake.py,utils.py}`` and the live-game converter
    ``deployment/LambdaGateway/src/convert_utils.py``. What the old code did:

    - The observation was channels last, ``(rows, columns, number_of_snakes + 1)``: layer 0 food (1), then one
      layer per snake in slot order; every snake got the same global array.
    - ``51s``: a snake's body cells 1, its head 5 (the head is drawn last, so it wins over segments under it).
    - ``num``: segments numbered from the tail, ``tail = 1 ... head = length`` (the gym's docstring says head 1,
      but its code numbers the tail-first segment list ``i + 1``; a later segment overwrites, so stacked
      segments show the larger number).
    - ``flat``: the board only. ``bordered``: a one-cell wall of -1 on every side, in every layer.
      ``max-bordered``: -1 padding up to ``MAX_BORDER = (21, 21)`` (the largest board, 19 x 19, plus a border),
      ``(21 - size) / 2`` cells on each side.
    - Rows: the gym read the pre-2020 API, where y = 0 was the top row and ``up`` was y - 1; the live converter flips
      API-v1 boards (``np.flip(state, 0)``) to match. So row 0 is the top of the board (y = H - 1), column = x, and
      the actions 0 up, 1 down, 2 left, 3 right keep their meaning.
    - Eliminated snakes' layers were all zeros (their body list was emptied).
    - The RLlib wrapper then reordered the layers per agent (food, own snake, the sum of the others) and stacked the
      previous frame; that is an environment wrapper's job and not done here.

    Where the old code was loose, we decided (and the tests check):

    - dtype: the gym declared ``uint8`` with ``low=-1`` but returned float arrays holding -1. Here the grid is uint8
      and the wall is ``LEGACY_BORDER = 255`` (-1 as a uint8: ``obs.view(np.int8)`` restores the old values for
      the 51s encodings). Body numbers stop at ``LEGACY_MAX_NUMBER = 254`` so they never read as a wall.
    - Per snake: with ``viewer_first=True`` (default) layer 1 is the viewing snake and the other snakes follow in
      slot order (the old wrappers' "self at index 1"); so snake 0 sees exactly the old global array. With
      ``viewer_first=False`` every live snake sees the old global array. Eliminated snakes see all zeros (border
      included), as every encoder here.
    - ``max-bordered``: the old code only worked for odd square boards of side <= 19 (it used the height for both
      axes and crashed on an odd padding). Here the grid is ``max_size x max_size`` (default 21) for any board with
      ``width, height <= max_size - 2``; the board starts at row ``(max_size - H) // 2`` and column
      ``(max_size - W) // 2`` (an odd padding leaves the extra wall row at the bottom, column at the right).

    | layer | value |
    |---|---|
    | 0 | food: 1 |
    | 1 | the viewing snake (``viewer_first``) or snake 0: 51s body 1 / head 5; num tail 1 ... head = length (<= 254) |
    | 2 ... S | the other snakes in slot order, the same values |
    | any, outside the board | 255 (bordered encodings) |
    """

    numbered: ClassVar[bool] = False
    border: ClassVar[str] = "none"  # "none", "one" or "max"

    def __init__(self, viewer_first: bool = True, max_size: int = LEGACY_MAX_SIZE):
        super().__init__()
        if not isinstance(viewer_first, bool):
            raise ValueError(f"viewer_first must be True or False, got {viewer_first!r}")
        if isinstance(max_size, bool) or not isinstance(max_size, (int, np.integer)) or max_size < 3:
            raise ValueError(f"max_size must be an integer >= 3, got {max_size!r}")
        self.viewer_first = viewer_first
        self.max_size = int(max_size)

    def origin(self, settings: GameSettings) -> tuple[int, int]:
        """(row, column) of the board's top-left cell (x = 0, y = H - 1) in the grid."""
        if self.border == "one":
            return 1, 1
        if self.border == "max":
            if max(settings.width, settings.height) > self.max_size - 2:
                raise ValueError(f"{self.name!r} pads to {self.max_size} x {self.max_size} cells and needs a board of "
                                 f"at most {self.max_size - 2} x {self.max_size - 2}, got "
                                 f"{settings.width} x {settings.height}; pass a larger max_size")
            return (self.max_size - settings.height) // 2, (self.max_size - settings.width) // 2
        return 0, 0

    def shape(self, settings: GameSettings, num_snakes: int) -> tuple[int, ...]:
        if self.border == "max":
            self.origin(settings)  # checks the board fits
            return self.max_size, self.max_size, num_snakes + 1
        pad = 2 if self.border == "one" else 0
        return settings.height + pad, settings.width + pad, num_snakes + 1

    def high(self, settings: GameSettings, num_snakes: int) -> np.ndarray:
        high = np.full(self.shape(settings, num_snakes), LEGACY_BORDER, np.uint8)
        row0, col0 = self.origin(settings)
        board = high[row0:row0 + settings.height, col0:col0 + settings.width]
        board[..., 0] = 1
        board[..., 1:] = LEGACY_MAX_NUMBER if self.numbered else 5
        return high

    def _fill(self, games: Games, out: np.ndarray) -> None:
        settings = games.settings
        row0, col0 = self.origin(settings)
        _legacy_kernel(games.state, settings.width, settings.height, row0, col0, self.numbered, self.viewer_first,
                       out)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(viewer_first={self.viewer_first!r}, max_size={self.max_size!r})"


class Flat51s(LegacyGridEncoder):
    """Starter pack ``flat-51s``: ``(H, W, S + 1)``, food layer, then body 1 / head 5 per snake."""

    name = "flat-51s"


class Bordered51s(LegacyGridEncoder):
    """Starter pack ``bordered-51s``: ``flat-51s`` inside a one-cell wall (255): ``(H + 2, W + 2, S + 1)``."""

    name = "bordered-51s"
    border = "one"


class MaxBordered51s(LegacyGridEncoder):
    """Starter pack ``max-bordered-51s``: ``flat-51s`` centred in a ``max_size`` (21) square of wall (255)."""

    name = "max-bordered-51s"
    border = "max"


class FlatNum(LegacyGridEncoder):
    """Starter pack ``flat-num``: ``(H, W, S + 1)``, food layer, then tail 1 ... head = length per snake."""

    name = "flat-num"
    numbered = True


class BorderedNum(LegacyGridEncoder):
    """Starter pack ``bordered-num``: ``flat-num`` inside a one-cell wall (255): ``(H + 2, W + 2, S + 1)``."""

    name = "bordered-num"
    numbered = True
    border = "one"


class MaxBorderedNum(LegacyGridEncoder):
    """Starter pack ``max-bordered-num``: ``flat-num`` centred in a ``max_size`` (21) square of wall (255)."""

    name = "max-bordered-num"
    numbered = True
    border = "max"
