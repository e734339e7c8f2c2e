"""``TerritoryEncoder``: the egocentric planes plus territory, room and head-to-head channels, and the scratch
space its kernel works in (one per board size and thread, never pickled)."""

from __future__ import annotations

import threading
from typing import ClassVar

import numpy as np
from numba import njit

from ..engine import Games, GameSettings
from ..engine.state import ALIVE
from ..features import DX, DY, contest_from_heads, neighbour, reachable, territory_after_move
from .egocentric import EGOCENTRIC_CHANNELS, EgocentricEncoder, window_images

# Channels the territory encoder adds after the egocentric ones (see TerritoryEncoder).
(TER_OWN_TERRITORY, TER_OTHER_TERRITORY, TER_MOVE_ROOM, TER_MOVE_TERRITORY, TER_HEAD_REACH,
 TER_LENGTH_LEAD) = range(10, 16)
TERRITORY_CHANNELS = EGOCENTRIC_CHANNELS + (
    "own_territory", "other_territory", "move_room", "move_territory", "head_reach", "length_lead",
)
#: ``length_lead`` is my length minus the longest other snake's, plus this, clipped to [0, 2 * LEAD_OFFSET].
LEAD_OFFSET = 16
#: ``move_room`` is the room after a move minus my length, plus this, clipped to [1, 255]: ROOM_OFFSET and above
#: means room for the whole snake, below it a pocket (the network compares with a threshold, not two small numbers).
ROOM_OFFSET = 128


# ---------------------------------------------------------------------------------------------- compiled kernels


@njit(cache=True, nogil=True, inline="always")
def _put_max(view, channel, x, y, hx, hy, width, height, ry, rx, wrapped, value):
    """view[channel] at board cell (x, y), in every image of the window centred on (hx, hy): at least ``value``."""
    r0, nr = window_images(y, hy, height, ry, wrapped)
    c0, nc = window_images(x, hx, width, rx, wrapped)
    for u in range(nr):
        for v in range(nc):
            r, c = r0 + u * height, c0 + v * width
            if view[channel, r, c] < value:
                view[channel, r, c] = value


@njit(cache=True, nogil=True)
def _territory_kernel(state, width, height, wrapped, ry, rx, work, out):
    """Fill channels 10..15 of out (B, S, 16, 2*ry + 1, 2*rx + 1) uint8 (channels 0..9 come from the egocentric
    kernel, which clears every channel first); see TerritoryEncoder. ``work`` (13, cells + S) int64 is scratch
    space, allocated once by the encoder."""
    num_games, num_snakes = state.length.shape
    cells = width * height
    free_at, owner, after, dist = work[0, :cells], work[1, :cells], work[2, :cells], work[3, :cells]
    queue = work[4]
    heads, zeros, slots, lengths = work[5, :num_snakes], work[6, :num_snakes], work[7, :num_snakes], \
        work[8, :num_snakes]
    zeros[:] = 0
    # the sources of one move's contest
    src_cells, src_times, src_owners, src_lengths = work[9, :num_snakes], work[10, :num_snakes], \
        work[11, :num_snakes], work[12, :num_snakes]
    for b in range(num_games):
        live = contest_from_heads(state, b, width, height, wrapped, free_at, heads, zeros, slots, lengths, owner,
                                  dist, queue)
        if live == 0:
            continue
        for s in range(num_snakes):
            if state.elim_cause[b, s] != ALIVE:
                continue
            view = out[b, s]
            hx, hy = np.int64(state.body[b, s, 0, 0]), np.int64(state.body[b, s, 0, 1])
            own_length = np.int64(state.length[b, s])
            for c in range(cells):
                if owner[c] >= 0:
                    channel = TER_OWN_TERRITORY if owner[c] == s else TER_OTHER_TERRITORY
                    _put_max(view, channel, c % width, c // width, hx, hy, width, height, ry, rx, wrapped, 1)
            longest = 0
            k = 0  # the other snakes' heads where they stand (turn 0) open each move's contest
            for i in range(live):
                o = slots[i]
                if o == s:
                    continue
                src_cells[k], src_times[k], src_owners[k], src_lengths[k] = heads[i], 0, o, lengths[i]
                k += 1
                longest = max(longest, lengths[i])
                reach = 2 if lengths[i] >= own_length else 1
                for d in range(4):
                    c = neighbour(heads[i], d, width, height, wrapped)
                    if c >= 0:
                        _put_max(view, TER_HEAD_REACH, c % width, c // width, hx, hy, width, height, ry, rx, wrapped,
                                 reach)
            view[TER_LENGTH_LEAD] = min(max(own_length - longest + LEAD_OFFSET, 0), 2 * LEAD_OFFSET)
            # Each move: room (time-aware flood fill) and territory after it, on the window cell next to the head.
            for d in range(4):
                target = neighbour(hx + hy * width, d, width, height, wrapped)
                if target < 0 or free_at[target] > 1:
                    continue
                room = reachable(target, width, height, wrapped, free_at, dist, queue)
                mine = territory_after_move(width, height, wrapped, free_at, src_cells, src_times, src_owners,
                                            src_lengths, k, target, s, own_length, after, dist, queue)
                view[TER_MOVE_ROOM, ry + DY[d], rx + DX[d]] = min(max(room - own_length + ROOM_OFFSET, 1), 255)
                view[TER_MOVE_TERRITORY, ry + DY[d], rx + DX[d]] = min(mine, 255)


# ---------------------------------------------------------------------------------------------- interface


class TerritoryEncoder(EgocentricEncoder):
    """The egocentric planes plus what strong heuristic snakes compute: ``(16, 2H - 1, 2W - 1)`` uint8.

    Channels 0..9 are ``EgocentricEncoder``'s (same window, same placement); six more follow. Territory is the
    cells a snake reaches before every other snake (``features.contest``: moving one cell a turn, entering a cell
    once its segments have left, the longer snake winning a tie; cells equally long snakes reach together belong
    to nobody).

    | channel | name | value |
    |---|---|---|
    | 10 | own_territory | 1 on the cells I reach first |
    | 11 | other_territory | 1 on the cells another snake reaches first |
    | 12 | move_room | next to my head, per move: cells reachable after it, minus my length, + 128, in 1..255 |
    | 13 | move_territory | next to my head, per move: my territory after it (others at their heads), max 255 |
    | 14 | head_reach | 2 where an equal-or-longer head can go next turn, else 1 where a shorter one can |
    | 15 | length_lead | my length minus the longest other snake's, plus 16, clipped to 0..32, on every cell |

    ``move_room`` and ``move_territory`` are 0 for a move into a wall or a segment still there next turn (128 and
    above: room for the whole snake after the move). A
    ``head_reach`` of 2 marks a head-to-head I would lose; 1 one I would win.

    Args:
        view: odd window side in cells (at least 3, so the cells next to the head are in the window), or None
            (default) for the full ``(2H - 1) x (2W - 1)`` window.
    """

    name = "territory"
    channels: ClassVar[tuple[str, ...]] = TERRITORY_CHANNELS

    def __init__(self, view: int | None = None):
        super().__init__(view)
        # the kernel's scratch space, allocated once per board size and per thread (servers encode from many)
        self._scratch = threading.local()
        if self.view is not None and self.view < 3:
            raise ValueError(f"the territory encoder needs a view of at least 3 cells (the cells next to the head), "
                             f"got {view!r}")

    def high(self, settings: GameSettings, num_snakes: int) -> np.ndarray:
        high = super().high(settings, num_snakes)  # channels 0..9; the rest are set here
        for channel, value in {TER_OWN_TERRITORY: 1, TER_OTHER_TERRITORY: 1, TER_MOVE_ROOM: 255,
                               TER_MOVE_TERRITORY: 255, TER_HEAD_REACH: 2, TER_LENGTH_LEAD: 2 * LEAD_OFFSET}.items():
            high[channel] = value
        return high

    def _fill(self, games: Games, out: np.ndarray) -> None:
        super()._fill(games, out)
        settings = games.settings
        ry, rx = self.radii(settings)
        size = settings.width * settings.height + games.num_snakes
        work = getattr(self._scratch, "work", None)
        if work is None or work.shape[1] != size:
            work = self._scratch.work = np.empty((13, size), np.int64)
        _territory_kernel(games.state, settings.width, settings.height, settings.rules.wrapped, ry, rx, work, out)

    def __getstate__(self) -> dict:  # scratch space is per process and thread: not pickled (remote env runners)
        return {k: v for k, v in self.__dict__.items() if k != "_scratch"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._scratch = threading.local()

    def __repr__(self) -> str:
        return f"TerritoryEncoder(view={self.view!r})"
