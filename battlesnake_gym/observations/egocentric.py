"""``EgocentricEncoder``: board planes centred on the snake's own head, filled by one compiled kernel.

Coordinates: (0, 0) is the bottom-left cell and ``up`` is y + 1; the planes keep that orientation (row index grows
with y).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numba import njit

from ..engine import Games, GameSettings
from ..engine.state import ALIVE, MAX_HEALTH
from .base import ObservationEncoder

# Egocentric channels, in order (see EgocentricEncoder).
(EGO_OWN_BODY, EGO_OTHER_BODIES, EGO_LONGER_HEADS, EGO_SHORTER_HEADS, EGO_FOOD, EGO_HAZARDS, EGO_OFF_BOARD,
 EGO_OWN_HEALTH, EGO_OWN_LENGTH, EGO_OTHER_HEALTH) = range(10)
EGOCENTRIC_CHANNELS = (
    "own_body", "other_bodies", "longer_heads", "shorter_heads", "food", "hazards", "off_board", "own_health",
    "own_length", "other_health",
)


# ---------------------------------------------------------------------------------------------- compiled kernels


@njit(cache=True, nogil=True, inline="always")
def window_images(p, head, size, radius, wrapped):
    """Where board coordinate ``p`` lands in a window of ``2 * radius + 1`` cells centred on ``head`` along one
    axis: (first window index, number of images). Images repeat every ``size`` cells when ``wrapped``."""
    d = np.int64(p) - np.int64(head)
    if wrapped:
        d = (d + radius) % size - radius  # the first image at or right of the window's start
        if d > radius:
            return 0, 0
        return d + radius, (radius - d) // size + 1
    if d < -radius or d > radius:
        return 0, 0
    return d + radius, 1


@njit(cache=True, nogil=True)
def _egocentric_kernel(state, width, height, wrapped, ry, rx, out):
    """Fill out (B, S, 10, 2*ry + 1, 2*rx + 1) uint8; see EgocentricEncoder for the channels."""
    num_games, num_snakes = state.length.shape
    rows, cols = out.shape[3], out.shape[4]
    for b in range(num_games):
        for s in range(num_snakes):
            view = out[b, s]
            view[:] = 0
            if state.elim_cause[b, s] != ALIVE:
                continue
            hx, hy = np.int64(state.body[b, s, 0, 0]), np.int64(state.body[b, s, 0, 1])
            own_length = np.int64(state.length[b, s])
            view[EGO_OWN_HEALTH] = min(max(np.int64(state.health[b, s]), 0), MAX_HEALTH)
            view[EGO_OWN_LENGTH] = min(own_length, 255)
            if not wrapped:  # the on-board part of the window is one rectangle
                r_lo, r_hi = max(ry - hy, 0), min(ry - hy + height, rows)
                c_lo, c_hi = max(rx - hx, 0), min(rx - hx + width, cols)
                view[EGO_OFF_BOARD] = 1
                if r_lo < r_hi and c_lo < c_hi:
                    view[EGO_OFF_BOARD, r_lo:r_hi, c_lo:c_hi] = 0

            for o in range(num_snakes):
                if state.elim_cause[b, o] != ALIVE:
                    continue
                channel = EGO_OWN_BODY if o == s else EGO_OTHER_BODIES
                n = np.int64(state.length[b, o])
                for i in range(n):
                    value = min(n - i, 255)  # turns until this segment leaves its cell
                    r0, nr = window_images(state.body[b, o, i, 1], hy, height, ry, wrapped)
                    c0, nc = window_images(state.body[b, o, i, 0], hx, width, rx, wrapped)
                    for u in range(nr):
                        for v in range(nc):
                            r, c = r0 + u * height, c0 + v * width
                            if view[channel, r, c] < value:
                                view[channel, r, c] = value
                if o == s:
                    continue
                head_channel = EGO_LONGER_HEADS if n >= own_length else EGO_SHORTER_HEADS
                health = min(max(np.int64(state.health[b, o]), 0), MAX_HEALTH)
                r0, nr = window_images(state.body[b, o, 0, 1], hy, height, ry, wrapped)
                c0, nc = window_images(state.body[b, o, 0, 0], hx, width, rx, wrapped)
                for u in range(nr):
                    for v in range(nc):
                        r, c = r0 + u * height, c0 + v * width
                        view[head_channel, r, c] = 1
                        if view[EGO_OTHER_HEALTH, r, c] < health:
                            view[EGO_OTHER_HEALTH, r, c] = health

            for k in range(state.food_count[b]):
                r0, nr = window_images(state.food[b, k, 1], hy, height, ry, wrapped)
                c0, nc = window_images(state.food[b, k, 0], hx, width, rx, wrapped)
                for u in range(nr):
                    for v in range(nc):
                        view[EGO_FOOD, r0 + u * height, c0 + v * width] = 1
            for k in range(state.hazard_count[b]):
                r0, nr = window_images(state.hazards[b, k, 1], hy, height, ry, wrapped)
                c0, nc = window_images(state.hazards[b, k, 0], hx, width, rx, wrapped)
                for u in range(nr):
                    for v in range(nc):
                        r, c = r0 + u * height, c0 + v * width
                        if view[EGO_HAZARDS, r, c] < 255:
                            view[EGO_HAZARDS, r, c] += 1


# ---------------------------------------------------------------------------------------------- interface


class EgocentricEncoder(ObservationEncoder):
    """Board planes centred on the snake's own head: ``(10, 2H - 1, 2W - 1)`` uint8, channels first.

    The window is centred on the head, so the whole board is visible from any head position. The cell at offset
    (dx, dy) from the head is element ``[channel, (H - 1) + dy, (W - 1) + dx]`` (the row index grows with y: row 0
    is dy = -(H - 1), the bottom of the window). In wrapped rulesets the view wraps around: offset (dx, dy) shows
    board cell ((hx + dx) % W, (hy + dy) % H), and nothing is off the board. With ``view=v`` (an odd int) the window
    is ``v x v`` cells instead, ``[channel, (v - 1) / 2 + dy, (v - 1) / 2 + dx]``; it may be smaller or larger than
    the board.

    Bodies are numbered by how many turns each segment stays: the tail is 1, the head is the snake's length, and
    a cell with stacked segments takes the larger number. So a cell holding ``k`` is free after ``k`` turns
    (unless the snake eats), which is what path planning needs.

    | channel | name | value |
    |---|---|---|
    | 0 | own_body | turns until the segment leaves: tail 1 ... head = length (stacked: the larger), max 255 |
    | 1 | other_bodies | the same for every other live snake |
    | 2 | longer_heads | 1 at the head of each other snake at least as long as me (a head-to-head I lose) |
    | 3 | shorter_heads | 1 at the head of each shorter snake (a head-to-head I win) |
    | 4 | food | 1 on food |
    | 5 | hazards | number of hazard entries on the cell (stacked hazards count each), max 255 |
    | 6 | off_board | 1 on window cells outside the board (always 0 in wrapped rulesets) |
    | 7 | own_health | my health, 0..100, on every cell |
    | 8 | own_length | my length, max 255, on every cell |
    | 9 | other_health | each other snake's health, 0..100, at its head cell |

    Eliminated snakes are not drawn, and see all zeros.

    Args:
        view: odd window side in cells, or None (default) for the full ``(2H - 1) x (2W - 1)`` window.
    """

    name = "egocentric"
    channels: ClassVar[tuple[str, ...]] = EGOCENTRIC_CHANNELS

    def __init__(self, view: int | None = None):
        super().__init__()
        if view is not None and (isinstance(view, bool) or not isinstance(view, (int, np.integer)) or view < 1
                                 or view % 2 == 0):
            raise ValueError(f"view must be None or an odd positive integer (window side in cells), got {view!r}")
        self.view = None if view is None else int(view)

    def radii(self, settings: GameSettings) -> tuple[int, int]:
        """(rows, columns) the window reaches from the head in each direction."""
        if self.view is None:
            return settings.height - 1, settings.width - 1
        return (self.view - 1) // 2, (self.view - 1) // 2

    def shape(self, settings: GameSettings, num_snakes: int) -> tuple[int, ...]:
        ry, rx = self.radii(settings)
        return len(self.channels), 2 * ry + 1, 2 * rx + 1

    def high(self, settings: GameSettings, num_snakes: int) -> np.ndarray:
        high = np.empty(self.shape(settings, num_snakes), np.uint8)
        per_channel = {EGO_OWN_BODY: 255, EGO_OTHER_BODIES: 255, EGO_LONGER_HEADS: 1, EGO_SHORTER_HEADS: 1,
                       EGO_FOOD: 1, EGO_HAZARDS: 255, EGO_OFF_BOARD: 0 if settings.rules.wrapped else 1,
                       EGO_OWN_HEALTH: MAX_HEALTH, EGO_OWN_LENGTH: 255, EGO_OTHER_HEALTH: MAX_HEALTH}
        for channel, value in per_channel.items():
            high[channel] = value
        return high

    def _fill(self, games: Games, out: np.ndarray) -> None:
        settings = games.settings
        ry, rx = self.radii(settings)
        _egocentric_kernel(games.state, settings.width, settings.height, settings.rules.wrapped, ry, rx, out)

    def __repr__(self) -> str:
        return f"EgocentricEncoder(view={self.view!r})"
