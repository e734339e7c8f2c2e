"""Heuristic bots that play on the batched engine state: opponents for training, evaluation and benchmarks.

A bot maps a ``Games`` batch to a (B, S) int8 array of moves (0 up, 1 down, 2 left, 3 right) for every snake slot;
eliminated snakes get -1. Bots never change the games. Their randomness is a hash of the bot's seed with each game's
stream state (read, never advanced), turn and snake slot: a bot made with the same seed, shown the same board, plays
the same move, whatever else is in the batch, so a batch of games against bots equals those games played alone.
Every bot but ``random`` runs one compiled kernel over the whole batch and allocates its scratch once per call.

- ``random``: a uniformly random move.
- ``safe``: never an avoidable immediate death. Among moves that hit no wall and no body segment that is still there
  next turn, it prefers cells no equal-or-longer head can also reach (a head-to-head it could lose); ties are broken
  at random. With no such move it takes a risky one, and with nothing non-fatal at all, any move.
- ``greedy``: ``safe``'s ranking first; among the best-ranked moves, the one that starts a shortest path to the
  nearest food (breadth-first search over the cells free next turn, across the edges in wrapped rulesets), then a
  cell next to a shorter snake's head (a head-to-head it would win), then at random.
- ``flood``: ``safe``'s ranking first; then a move whose flood fill (the cells reachable from its target through
  cells free next turn) holds at least the snake's length, or else the largest fill; then the fewest hazards on the
  target (none counted under food). Among those: when hungry (health below ``hungry_health``, or not ``lead``
  segments longer than the longest opponent) a shortest path to food; otherwise a shortest path to a cell next to
  the head of a shorter snake (an attack); then the largest fill, then at random.
- ``territory``: ``flood``'s safety, room and hazard tiers; then, when hungry (as ``flood``, with ``lead`` 1), a
  shortest path to food, otherwise the most territory after the move: the cells it would reach before every other
  snake (``features.contest``: the others still at their heads, bodies leaving in time), as minimax snakes score a
  position; then the most territory, then at random. It beats ``flood`` in about 7 of 10 1v1 games.

None of them re-implements a rule: which cells are obstacles next turn and where a move lands come from ``features``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import njit

from .engine import Games
from .engine.rng import GOLDEN, mix64, seeds_from, unit_from_bits
from .engine.state import ALIVE, NO_MOVE, P_HEIGHT, P_WIDTH
from .features import (
    DX,
    DY,
    count_hazards,
    free_after,
    mark_obstacles,
    next_to_head,
    reachable,
    step_target,
    territory_after_move,
)

#: Distance of a cell no search reached.
UNREACHED = np.int64(1 << 20)
# Score fields of the compiled bots, most significant first; every field below holds values < 2**15 (a cell count
# or a distance on a board of at most 128 x 128 cells, capped at _KEY - 1).
_RANK, _ROOMY, _CRAMPED, _DRY, _GOAL, _SPACE = 1 << 60, 1 << 55, 1 << 40, 1 << 35, 1 << 20, 1 << 0
_KEY = 1 << 15
_MAX_STACK = 31  # hazard entries counted on one cell (the _DRY field holds 5 bits)


@njit(cache=True, nogil=True, inline="always")
def _safety_ranks(state, params, wrapped, b, s, grid, rank):
    """rank[d] for each move of snake s in game b: 0 certain death, 1 a head-to-head it could lose, 2 neither.
    ``grid`` holds the game's obstacles (``mark_obstacles``). Returns the best rank."""
    width, height = params[P_WIDTH], params[P_HEIGHT]
    best = 0
    for d in range(4):
        x, y = step_target(state, params, wrapped, b, s, d)
        if x < 0 or x >= width or y < 0 or y >= height or grid[x + y * width]:
            rank[d] = 0  # certain death
            continue
        # could an equal-or-longer head reach this cell too?
        rank[d] = 1 if next_to_head(state, b, s, x, y, width, height, wrapped, True) else 2
        best = max(best, rank[d])
    return best


@njit(cache=True, nogil=True, inline="always")
def _pick(score, uniform):
    """The move with the highest score; ties are broken by ``uniform`` in [0, 1)."""
    top = score[0]
    for d in range(1, 4):
        top = max(top, score[d])
    count = 0
    for d in range(4):
        if score[d] == top:
            count += 1
    pick = np.int64(uniform * count)
    for d in range(4):
        if score[d] == top:
            if pick == 0:
                return d
            pick -= 1
    return 0


@njit(cache=True, nogil=True)
def _spread(grid, width, height, wrapped, queue, count, dist):
    """Breadth-first search from the ``count`` cells in ``queue`` (their ``dist`` already 0) through free cells
    (``grid == 0``); fills ``dist`` with the step count of every reached cell. Returns how many cells it reached."""
    head = 0
    while head < count:
        c = queue[head]
        head += 1
        cx, cy = c % width, c // width
        for d in range(4):
            x, y = cx + DX[d], cy + DY[d]
            if wrapped:
                x %= width
                y %= height
            elif x < 0 or x >= width or y < 0 or y >= height:
                continue
            n = x + y * width
            if grid[n] or dist[n] != UNREACHED:
                continue
            dist[n] = dist[c] + 1
            queue[count] = n
            count += 1
    return count


@njit(cache=True, nogil=True)
def _food_distances(state, b, width, height, wrapped, grid, queue, dist):
    """dist[cell]: steps from each cell to the nearest food of game b through cells free next turn."""
    dist[:] = UNREACHED
    count = 0
    for i in range(state.food_count[b]):
        c = state.food[b, i, 0] + state.food[b, i, 1] * width
        if dist[c] == UNREACHED and grid[c] == 0:
            dist[c] = 0
            queue[count] = c
            count += 1
    _spread(grid, width, height, wrapped, queue, count, dist)


@njit(cache=True, nogil=True)
def _attack_distances(state, b, s, width, height, wrapped, grid, queue, dist):
    """dist[cell]: steps from each cell to the nearest free cell next to the head of a snake shorter than s.
    Returns False (and leaves ``dist`` all UNREACHED) when there is no such cell."""
    dist[:] = UNREACHED
    count = 0
    for o in range(state.length.shape[1]):
        if o == s or state.elim_cause[b, o] != ALIVE or state.length[b, o] >= state.length[b, s]:
            continue
        for d in range(4):
            x = np.int64(state.body[b, o, 0, 0]) + DX[d]
            y = np.int64(state.body[b, o, 0, 1]) + DY[d]
            if wrapped:
                x %= width
                y %= height
            elif x < 0 or x >= width or y < 0 or y >= height:
                continue
            c = x + y * width
            if grid[c] == 0 and dist[c] == UNREACHED:
                dist[c] = 0
                queue[count] = c
                count += 1
    if count == 0:
        return False
    _spread(grid, width, height, wrapped, queue, count, dist)
    return True


@njit(cache=True, nogil=True)
def _begin_game(state, b, out):
    """Set every snake of game b to NO_MOVE; returns whether any is alive."""
    live = False
    for s in range(state.length.shape[1]):
        out[b, s] = NO_MOVE
        if state.elim_cause[b, s] == ALIVE:
            live = True
    return live


@njit(cache=True, nogil=True)
def safe_moves(state, params, wrapped, uniforms, out):
    """Fill out (B, S) with the ``safe`` bot's move for every live snake (see module docstring)."""
    width, height = params[P_WIDTH], params[P_HEIGHT]
    grid = np.empty(width * height, np.uint8)
    rank = np.empty(4, np.int64)
    for b in range(state.turn.shape[0]):
        if not _begin_game(state, b, out):
            continue
        mark_obstacles(state, b, width, height, grid)
        for s in range(state.length.shape[1]):
            if state.elim_cause[b, s] != ALIVE:
                continue
            _safety_ranks(state, params, wrapped, b, s, grid, rank)
            out[b, s] = _pick(rank, uniforms[b, s])


@njit(cache=True, nogil=True)
def greedy_moves(state, params, wrapped, uniforms, out):
    """Fill out (B, S) with the ``greedy`` bot's move for every live snake (see module docstring)."""
    width, height = params[P_WIDTH], params[P_HEIGHT]
    cells = width * height
    grid = np.empty(cells, np.uint8)
    queue = np.empty(cells, np.int64)
    food_dist = np.empty(cells, np.int64)
    rank = np.empty(4, np.int64)
    score = np.empty(4, np.int64)
    for b in range(state.turn.shape[0]):
        if not _begin_game(state, b, out):
            continue
        mark_obstacles(state, b, width, height, grid)
        _food_distances(state, b, width, height, wrapped, grid, queue, food_dist)
        for s in range(state.length.shape[1]):
            if state.elim_cause[b, s] != ALIVE:
                continue
            _safety_ranks(state, params, wrapped, b, s, grid, rank)
            for d in range(4):
                score[d] = rank[d] * _RANK
                if rank[d] == 0:
                    continue
                x, y = step_target(state, params, wrapped, b, s, d)
                score[d] += (_KEY - 1 - min(food_dist[x + y * width], _KEY - 1)) * _GOAL
                if next_to_head(state, b, s, x, y, width, height, wrapped, False):
                    score[d] += _SPACE
            out[b, s] = _pick(score, uniforms[b, s])


@njit(cache=True, nogil=True)
def _label_regions(grid, width, height, wrapped, queue, region, sizes):
    """region[cell]: the index of the connected region of free cells (``grid == 0``) holding the cell, or -1 on an
    obstacle; sizes[r]: the cells of region r. The flood fill from any free cell is its region."""
    region[:] = UNREACHED
    count = 0
    for c in range(width * height):
        if grid[c] or region[c] != UNREACHED:
            continue
        region[c] = 0
        queue[0] = c
        n = _spread(grid, width, height, wrapped, queue, 1, region)
        for i in range(n):
            region[queue[i]] = count
        sizes[count] = n
        count += 1
    for c in range(width * height):
        if grid[c]:
            region[c] = -1


@njit(cache=True, nogil=True)
def flood_moves(state, params, wrapped, uniforms, hungry_health, lead, out):
    """Fill out (B, S) with the ``flood`` bot's move for every live snake (see module docstring)."""
    width, height = params[P_WIDTH], params[P_HEIGHT]
    num_snakes = state.length.shape[1]
    cells = width * height
    grid = np.empty(cells, np.uint8)
    queue = np.empty(cells, np.int64)
    food_dist = np.empty(cells, np.int64)
    goal_dist = np.empty(cells, np.int64)
    region = np.empty(cells, np.int64)
    sizes = np.empty(cells, np.int64)
    stack = np.empty(cells, np.int64)
    rank = np.empty(4, np.int64)
    score = np.empty(4, np.int64)
    for b in range(state.turn.shape[0]):
        if not _begin_game(state, b, out):
            continue
        mark_obstacles(state, b, width, height, grid)
        _food_distances(state, b, width, height, wrapped, grid, queue, food_dist)
        _label_regions(grid, width, height, wrapped, queue, region, sizes)
        count_hazards(state, b, width, height, stack)
        for s in range(num_snakes):
            if state.elim_cause[b, s] != ALIVE:
                continue
            longest = 0
            for o in range(num_snakes):
                if o != s and state.elim_cause[b, o] == ALIVE:
                    longest = max(longest, np.int64(state.length[b, o]))
            length = np.int64(state.length[b, s])
            hungry = state.health[b, s] < hungry_health or length < longest + lead
            attacking = not hungry and _attack_distances(state, b, s, width, height, wrapped, grid, queue,
                                                         goal_dist)
            goal = food_dist if hungry else goal_dist
            _safety_ranks(state, params, wrapped, b, s, grid, rank)
            for d in range(4):
                score[d] = rank[d] * _RANK
                if rank[d] == 0:
                    continue
                x, y = step_target(state, params, wrapped, b, s, d)
                c = x + y * width
                space = sizes[region[c]]
                if space >= length:
                    score[d] += _ROOMY
                else:
                    score[d] += space * _CRAMPED
                if food_dist[c] != 0:  # food on a hazard cancels its damage
                    score[d] += (_MAX_STACK - min(stack[c], _MAX_STACK)) * _DRY
                else:
                    score[d] += _MAX_STACK * _DRY
                if hungry or attacking:
                    score[d] += (_KEY - 1 - min(goal[c], _KEY - 1)) * _GOAL
                score[d] += min(space, _KEY - 1) * _SPACE
            out[b, s] = _pick(score, uniforms[b, s])


@njit(cache=True, nogil=True)
def territory_moves(state, params, wrapped, uniforms, hungry_health, lead, out):
    """Fill out (B, S) with the ``territory`` bot's move for every live snake (see module docstring)."""
    width, height = params[P_WIDTH], params[P_HEIGHT]
    num_snakes = state.length.shape[1]
    cells = width * height
    grid = np.empty(cells, np.uint8)
    queue = np.empty(cells + num_snakes, np.int64)
    food_dist = np.empty(cells, np.int64)
    free_at = np.empty(cells, np.int64)
    dist = np.empty(cells, np.int64)
    owner = np.empty(cells, np.int64)
    stack = np.empty(cells, np.int64)
    rank = np.empty(4, np.int64)
    score = np.empty(4, np.int64)
    # one move's territory contest: the other heads where they stand (turn 0), then this snake on its target (1)
    src_cells = np.empty(num_snakes, np.int64)
    src_times = np.empty(num_snakes, np.int64)
    src_owners = np.empty(num_snakes, np.int64)
    src_lengths = np.empty(num_snakes, np.int64)
    for b in range(state.turn.shape[0]):
        if not _begin_game(state, b, out):
            continue
        mark_obstacles(state, b, width, height, grid)
        _food_distances(state, b, width, height, wrapped, grid, queue, food_dist)
        count_hazards(state, b, width, height, stack)
        free_after(state, b, width, height, free_at)
        for s in range(num_snakes):
            if state.elim_cause[b, s] != ALIVE:
                continue
            longest = 0
            k = 0
            for o in range(num_snakes):
                if o != s and state.elim_cause[b, o] == ALIVE:
                    longest = max(longest, np.int64(state.length[b, o]))
                    src_cells[k] = np.int64(state.body[b, o, 0, 0]) + np.int64(state.body[b, o, 0, 1]) * width
                    src_times[k], src_owners[k], src_lengths[k] = 0, o, state.length[b, o]
                    k += 1
            length = np.int64(state.length[b, s])
            hungry = state.health[b, s] < hungry_health or length < longest + lead
            _safety_ranks(state, params, wrapped, b, s, grid, rank)
            for d in range(4):
                score[d] = rank[d] * _RANK
                if rank[d] == 0:
                    continue
                x, y = step_target(state, params, wrapped, b, s, d)
                c = x + y * width
                room = reachable(c, width, height, wrapped, free_at, dist, queue)
                if room >= length:
                    score[d] += _ROOMY
                else:
                    score[d] += room * _CRAMPED
                if food_dist[c] != 0:  # food on a hazard cancels its damage
                    score[d] += (_MAX_STACK - min(stack[c], _MAX_STACK)) * _DRY
                else:
                    score[d] += _MAX_STACK * _DRY
                mine = min(territory_after_move(width, height, wrapped, free_at, src_cells, src_times, src_owners,
                                                src_lengths, k, c, s, length, owner, dist, queue), _KEY - 1)
                if hungry:
                    score[d] += (_KEY - 1 - min(food_dist[c], _KEY - 1)) * _GOAL
                else:
                    score[d] += mine * _GOAL
                score[d] += mine * _SPACE
            out[b, s] = _pick(score, uniforms[b, s])


Bot = Callable[[Games], np.ndarray]


@njit(cache=True, nogil=True)
def game_uniforms(state, key, out):
    """out (B, S) float64 in [0, 1): one draw per snake from (bot key, game stream state, turn, slot)."""
    for b in range(out.shape[0]):
        base = mix64(state.rng[b] ^ key) ^ mix64(np.uint64(state.turn[b]) + GOLDEN)
        for s in range(out.shape[1]):
            out[b, s] = unit_from_bits(mix64(base + GOLDEN * np.uint64(s + 1)))


def _bot_key(seed: int | np.random.Generator | None) -> np.uint64:
    return seeds_from(np.random.default_rng(seed), 1)[0]


class _Bot:
    """Base of the bots: per-snake uniforms that depend on the bot's seed and each game alone."""

    name = ""

    def __init__(self, seed: int | np.random.Generator | None = None):
        self.key = _bot_key(seed)
        self._out: np.ndarray | None = None
        self._uniforms: np.ndarray | None = None

    def _buffers(self, games: Games) -> tuple[np.ndarray, np.ndarray]:
        shape = (games.batch_size, games.num_snakes)
        if self._out is None or self._out.shape != shape:
            self._out = np.empty(shape, np.int8)
            self._uniforms = np.empty(shape, np.float64)
        game_uniforms(games.state, self.key, self._uniforms)
        return self._out, self._uniforms


class RandomBot(_Bot):
    """Uniformly random moves."""

    name = "random"

    def __call__(self, games: Games) -> np.ndarray:
        out, uniforms = self._buffers(games)
        out[:] = (uniforms * 4).astype(np.int8)
        out[~games.alive()] = NO_MOVE
        return out.copy()


class _CompiledBot(_Bot):
    """A bot whose moves come from one compiled kernel over the batch; ties are broken with one uniform per snake."""

    def __call__(self, games: Games) -> np.ndarray:
        out, uniforms = self._buffers(games)
        self._kernel(games, uniforms, out)
        return out.copy()

    def _kernel(self, games: Games, uniforms: np.ndarray, out: np.ndarray) -> None:
        raise NotImplementedError


class SafeBot(_CompiledBot):
    """Never an avoidable immediate death (walls, bodies, head-to-heads it could lose); random among the rest."""

    name = "safe"

    def _kernel(self, games: Games, uniforms: np.ndarray, out: np.ndarray) -> None:
        safe_moves(games.state, games.params, games.settings.rules.wrapped, uniforms, out)


class GreedyBot(_CompiledBot):
    """``safe``, then a shortest path to the nearest food, then a head-to-head it would win; random among ties."""

    name = "greedy"

    def _kernel(self, games: Games, uniforms: np.ndarray, out: np.ndarray) -> None:
        greedy_moves(games.state, games.params, games.settings.rules.wrapped, uniforms, out)


class FloodBot(_CompiledBot):
    """``safe``, then room to live (flood fill), then food when hungry or else an attack on a shorter snake.

    Args:
        seed: seeds the tie-breaking.
        hungry_health: below this health the snake heads for food.
        lead: the snake also heads for food until it is this many segments longer than every opponent.
    """

    name = "flood"

    def __init__(self, seed: int | np.random.Generator | None = None, *, hungry_health: int = 40, lead: int = 2):
        super().__init__(seed)
        if hungry_health < 0 or lead < 0:
            raise ValueError(f"hungry_health and lead must be >= 0, got {hungry_health} and {lead}")
        self.hungry_health = int(hungry_health)
        self.lead = int(lead)

    def _kernel(self, games: Games, uniforms: np.ndarray, out: np.ndarray) -> None:
        flood_moves(games.state, games.params, games.settings.rules.wrapped, uniforms, self.hungry_health, self.lead,
                    out)


class TerritoryBot(_CompiledBot):
    """``flood``'s safety and room, then food when hungry, else the most territory after the move.

    Args:
        seed: seeds the tie-breaking.
        hungry_health: below this health the snake heads for food.
        lead: the snake also heads for food until it is this many segments longer than every opponent.
    """

    name = "territory"

    def __init__(self, seed: int | np.random.Generator | None = None, *, hungry_health: int = 40, lead: int = 1):
        super().__init__(seed)
        if hungry_health < 0 or lead < 0:
            raise ValueError(f"hungry_health and lead must be >= 0, got {hungry_health} and {lead}")
        self.hungry_health = int(hungry_health)
        self.lead = int(lead)

    def _kernel(self, games: Games, uniforms: np.ndarray, out: np.ndarray) -> None:
        territory_moves(games.state, games.params, games.settings.rules.wrapped, uniforms, self.hungry_health,
                        self.lead, out)


BOTS: dict[str, type] = {"random": RandomBot, "safe": SafeBot, "greedy": GreedyBot, "flood": FloodBot,
                         "territory": TerritoryBot}


def make_bot(name: str, seed: int | np.random.Generator | None = None) -> Bot:
    """The bot registered as ``name`` in ``BOTS``, seeded with ``seed``."""
    if name not in BOTS:
        raise ValueError(f"unknown bot {name!r}; known: {', '.join(BOTS)}")
    return BOTS[name](seed)
