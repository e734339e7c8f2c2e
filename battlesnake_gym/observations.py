"""Observation encoders: what every snake of a batch of games sees, as compact uint8 arrays filled by compiled kernels.

An encoder is a pluggable object (pass one into an environment, or build one by name with ``make_encoder``):

- ``shape(settings, num_snakes)``: the per-snake observation shape;
- ``space(settings, num_snakes)``: the matching ``gymnasium.spaces.Box`` (uint8; ``low`` 0, ``high`` the exact bound
  of each element, so models cast to float themselves);
- ``encode(games, out=None)``: ``(B, S, *shape)`` uint8, one observation per snake slot of every game. Eliminated
  snakes get all zeros. With ``out`` given, it is filled in place and returned: nothing is allocated.

Encoders:

- ``egocentric`` (the default): board planes centred on the snake's own head, channels first (``EgocentricEncoder``);
- ``flat-51s``, ``bordered-51s``, ``max-bordered-51s``, ``flat-num``, ``bordered-num``, ``max-bordered-num``: the
  global encodings of the archived AWS SageMaker Battlesnake starter pack, for users migrating from it
  (``LegacyGridEncoder``).

``action_mask(games)`` gives the (B, S, 4) non-fatal-move mask (moves 0 up, 1 down, 2 left, 3 right).

Coordinates: (0, 0) is the bottom-left cell and ``up`` is y + 1. The egocentric planes keep that orientation (row
index grows with y); the legacy grids are drawn top row first, as the starter pack's models were trained.

Example::

    games = Games(GameSettings(), num_snakes=4, batch_size=1024, seed=0)
    encoder = make_encoder("egocentric")
    obs = encoder.encode(games)                # (1024, 4, 10, 21, 21) uint8
    encoder.encode(games, out=obs)             # refill in place after a step: no allocation
    mask = action_mask(games)                  # (1024, 4, 4) uint8
"""

from __future__ import annotations

import threading
from typing import ClassVar

import numpy as np
from gymnasium import spaces
from numba import njit

from .engine import Games, GameSettings
from .engine.state import ALIVE, MAX_HEALTH
from .features import DX, DY, contest, free_after, neighbour, nonfatal_moves, reachable

# Egocentric channels, in order (see EgocentricEncoder).
(EGO_OWN_BODY, EGO_OTHER_BODIES, EGO_LONGER_HEADS, EGO_SHORTER_HEADS, EGO_FOOD, EGO_HAZARDS, EGO_OFF_BOARD,
 EGO_OWN_HEALTH, EGO_OWN_LENGTH, EGO_OTHER_HEALTH) = range(10)
EGOCENTRIC_CHANNELS = (
    "own_body", "other_bodies", "longer_heads", "shorter_heads", "food", "hazards", "off_board", "own_health",
    "own_length", "other_health",
)
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
#: The legacy grids' wall value: the starter pack's -1 as a uint8 (``obs.view(np.int8)`` gives -1 back).
LEGACY_BORDER = 255
#: Legacy numbered bodies stop here, so a body number never reads as the border.
LEGACY_MAX_NUMBER = 254
#: The starter pack's largest board (19 x 19) plus a one-cell border on each side.
LEGACY_MAX_SIZE = 21


# ---------------------------------------------------------------------------------------------- compiled kernels


@njit(cache=True, nogil=True, inline="always")
def _images(p, head, size, radius, wrapped):
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
                    r0, nr = _images(state.body[b, o, i, 1], hy, height, ry, wrapped)
                    c0, nc = _images(state.body[b, o, i, 0], hx, width, rx, wrapped)
                    for u in range(nr):
                        for v in range(nc):
                            r, c = r0 + u * height, c0 + v * width
                            if view[channel, r, c] < value:
                                view[channel, r, c] = value
                if o == s:
                    continue
                head_channel = EGO_LONGER_HEADS if n >= own_length else EGO_SHORTER_HEADS
                health = min(max(np.int64(state.health[b, o]), 0), MAX_HEALTH)
                r0, nr = _images(state.body[b, o, 0, 1], hy, height, ry, wrapped)
                c0, nc = _images(state.body[b, o, 0, 0], hx, width, rx, wrapped)
                for u in range(nr):
                    for v in range(nc):
                        r, c = r0 + u * height, c0 + v * width
                        view[head_channel, r, c] = 1
                        if view[EGO_OTHER_HEALTH, r, c] < health:
                            view[EGO_OTHER_HEALTH, r, c] = health

            for k in range(state.food_count[b]):
                r0, nr = _images(state.food[b, k, 1], hy, height, ry, wrapped)
                c0, nc = _images(state.food[b, k, 0], hx, width, rx, wrapped)
                for u in range(nr):
                    for v in range(nc):
                        view[EGO_FOOD, r0 + u * height, c0 + v * width] = 1
            for k in range(state.hazard_count[b]):
                r0, nr = _images(state.hazards[b, k, 1], hy, height, ry, wrapped)
                c0, nc = _images(state.hazards[b, k, 0], hx, width, rx, wrapped)
                for u in range(nr):
                    for v in range(nc):
                        r, c = r0 + u * height, c0 + v * width
                        if view[EGO_HAZARDS, r, c] < 255:
                            view[EGO_HAZARDS, r, c] += 1


@njit(cache=True, nogil=True, inline="always")
def _put_max(view, channel, x, y, hx, hy, width, height, ry, rx, wrapped, value):
    """view[channel] at board cell (x, y), in every image of the window centred on (hx, hy): at least ``value``."""
    r0, nr = _images(y, hy, height, ry, wrapped)
    c0, nc = _images(x, hx, width, rx, wrapped)
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
        live = 0
        for s in range(num_snakes):
            if state.elim_cause[b, s] == ALIVE:
                heads[live] = np.int64(state.body[b, s, 0, 0]) + np.int64(state.body[b, s, 0, 1]) * width
                slots[live] = s
                lengths[live] = state.length[b, s]
                live += 1
        if live == 0:
            continue
        free_after(state, b, width, height, free_at)
        contest(width, height, wrapped, free_at, heads[:live], zeros[:live], slots[:live], lengths[:live], owner,
                dist, queue)
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
                src_cells[k], src_times[k], src_owners[k], src_lengths[k] = target, 1, s, own_length
                contest(width, height, wrapped, free_at, src_cells[:k + 1], src_times[:k + 1], src_owners[:k + 1],
                        src_lengths[:k + 1], after, dist, queue)
                mine = 0
                for c in range(cells):
                    mine += after[c] == s
                view[TER_MOVE_ROOM, ry + DY[d], rx + DX[d]] = min(max(room - own_length + ROOM_OFFSET, 1), 255)
                view[TER_MOVE_TERRITORY, ry + DY[d], rx + DX[d]] = min(mine, 255)


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


ENCODERS: dict[str, type[ObservationEncoder]] = {
    cls.name: cls
    for cls in (EgocentricEncoder, TerritoryEncoder, Flat51s, Bordered51s, MaxBordered51s, FlatNum, BorderedNum,
                MaxBorderedNum)
}
DEFAULT_ENCODER = "egocentric"


def make_encoder(name: str = DEFAULT_ENCODER, **kwargs) -> ObservationEncoder:
    """The encoder registered as ``name``, built with ``kwargs`` (e.g. ``make_encoder("egocentric", view=11)``)."""
    if name not in ENCODERS:
        raise ValueError(f"unknown observation encoder {name!r}; known: {', '.join(ENCODERS)}")
    return ENCODERS[name](**kwargs)


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
