"""Compiled board features shared by bots, action masks and observation encoders (none of them is a rule).

All take the batched ``GameState`` and the settings vector ``params`` (see ``engine.state.P_*``); cells are indexed
``x + y * width`` with (0, 0) bottom-left.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .engine.state import ALIVE, P_HEIGHT, P_WIDTH

#: (dx, dy) of the moves 0 up, 1 down, 2 left, 3 right.
DX = np.array([0, 0, -1, 1], np.int64)
DY = np.array([1, -1, 0, 0], np.int64)


@njit(cache=True, nogil=True)
def mark_obstacles(state, b, width, height, grid):
    """grid[x + y*width] = 1 on live segments still there next turn: all but a tail that is about to move.

    A tail moves unless it is stacked (the snake just ate); whether a snake eats this turn is not known, so a
    non-stacked tail counts as free.
    """
    grid[:] = 0
    for s in range(state.length.shape[1]):
        if state.elim_cause[b, s] != ALIVE:
            continue
        n = state.length[b, s]
        stacked_tail = n >= 2 and state.body[b, s, n - 1, 0] == state.body[b, s, n - 2, 0] and \
            state.body[b, s, n - 1, 1] == state.body[b, s, n - 2, 1]
        end = n if stacked_tail else n - 1
        for i in range(end):
            x, y = state.body[b, s, i, 0], state.body[b, s, i, 1]
            if 0 <= x < width and 0 <= y < height:
                grid[x + y * width] = 1


@njit(cache=True, nogil=True, inline="always")
def step_target(state, params, wrapped, b, s, move):
    """The cell (x, y) snake s of game b reaches with ``move`` (wrapped across edges when ``wrapped``)."""
    width, height = params[P_WIDTH], params[P_HEIGHT]
    x = np.int64(state.body[b, s, 0, 0]) + DX[move]
    y = np.int64(state.body[b, s, 0, 1]) + DY[move]
    if wrapped:
        x %= width
        y %= height
    return x, y


@njit(cache=True, nogil=True)
def nonfatal_moves(state, params, wrapped, out):
    """out (B, S, 4) uint8: 1 where a move is not certainly fatal (stays on the board, or wraps, and enters no
    segment that will still be there: the neck included). Eliminated snakes get all zeros."""
    width, height = params[P_WIDTH], params[P_HEIGHT]
    grid = np.empty(width * height, np.uint8)
    out[:] = 0
    for b in range(state.turn.shape[0]):
        mark_obstacles(state, b, width, height, grid)
        for s in range(state.length.shape[1]):
            if state.elim_cause[b, s] != ALIVE:
                continue
            for d in range(4):
                x, y = step_target(state, params, wrapped, b, s, d)
                if 0 <= x < width and 0 <= y < height and grid[x + y * width] == 0:
                    out[b, s, d] = 1


@njit(cache=True, nogil=True)
def free_after(state, b, width, height, free_at):
    """free_at[cell]: turns until the cell holds no live segment (0 free now; a segment k from the tail: k).
    Stacked segments take the larger count. Meals to come are not known, so they are not counted."""
    free_at[:] = 0
    for o in range(state.length.shape[1]):
        if state.elim_cause[b, o] != ALIVE:
            continue
        n = np.int64(state.length[b, o])
        for i in range(n):
            x, y = np.int64(state.body[b, o, i, 0]), np.int64(state.body[b, o, i, 1])
            if 0 <= x < width and 0 <= y < height:
                c = x + y * width
                free_at[c] = max(free_at[c], n - i)


@njit(cache=True, nogil=True)
def count_hazards(state, b, width, height, stack):
    """stack[cell]: the hazard entries of game b on each cell. Stacked hazards hurt once per entry, so the count (not
    a flag) is what hazard damage and the bots' and safety layer's health checks read."""
    stack[:] = 0
    for i in range(state.hazard_count[b]):
        x, y = state.hazards[b, i, 0], state.hazards[b, i, 1]
        if 0 <= x < width and 0 <= y < height:
            stack[x + y * width] += 1


@njit(cache=True, nogil=True, inline="always")
def next_to_head(state, b, s, x, y, width, height, wrapped, longer):
    """Is (x, y) one step from the head of another live snake of game b that is at least as long as snake s
    (``longer`` True: a head-to-head s could lose) or shorter than it (``longer`` False: one s would win)?
    Distances wrap across the edges when ``wrapped``."""
    own = state.length[b, s]
    for o in range(state.length.shape[1]):
        if o == s or state.elim_cause[b, o] != ALIVE or (state.length[b, o] >= own) != longer:
            continue
        dx = abs(np.int64(state.body[b, o, 0, 0]) - x)
        dy = abs(np.int64(state.body[b, o, 0, 1]) - y)
        if wrapped:
            dx, dy = min(dx, width - dx), min(dy, height - dy)
        if dx + dy == 1:
            return True
    return False


@njit(cache=True, nogil=True, inline="always")
def neighbour(c, d, width, height, wrapped):
    """The cell one move ``d`` from cell ``c``, or -1 off the board."""
    x, y = c % width + DX[d], c // width + DY[d]
    if wrapped:
        x %= width
        y %= height
    elif x < 0 or x >= width or y < 0 or y >= height:
        return -1
    return x + y * width


@njit(cache=True, nogil=True)
def reachable(start, width, height, wrapped, free_at, dist, queue):
    """Cells reachable from ``start`` (entered on turn 1) moving one cell a turn, entering a cell only once its
    segments have left (``free_at[cell] <= arrival turn``). Returns the count, ``start`` included."""
    dist[:] = -1
    dist[start] = 1
    queue[0] = start
    head, count = 0, 1
    while head < count:
        c = queue[head]
        head += 1
        for d in range(4):
            n = neighbour(c, d, width, height, wrapped)
            if n < 0 or dist[n] >= 0 or free_at[n] > dist[c] + 1:
                continue
            dist[n] = dist[c] + 1
            queue[count] = n
            count += 1
    return count


#: ``owner`` values of ``contest`` for cells nobody reaches, and cells two equally long snakes reach together.
UNCLAIMED, CONTESTED = -1, -2


@njit(cache=True, nogil=True)
def contest(width, height, wrapped, free_at, cells, times, owners, lengths, owner, dist, queue):
    """Territory: which snake reaches each cell first (a Voronoi partition that knows when bodies leave).

    The sources are ``cells[i]`` (board cells), reached by snake ``owners[i]`` of length ``lengths[i]`` at turn
    ``times[i]`` (0 for a head where it stands, 1 for a cell a snake has just moved to); sources must come in
    non-decreasing ``times``. Snakes move one cell a turn and enter a cell only once its segments have left
    (``free_at[cell] <= arrival turn``). A cell first reached on the same turn by several snakes goes to the
    longest; between equally long ones it is CONTESTED and nobody spreads from it. Fills ``owner[cell]`` (a snake,
    UNCLAIMED or CONTESTED; sources keep their snake) and ``dist[cell]`` (arrival turn, -1 unreached).
    """
    owner[:] = UNCLAIMED
    dist[:] = -1
    best = np.zeros(width * height, np.int64)  # length of the snake holding each cell
    count = 0
    for i in range(cells.shape[0]):
        c = cells[i]
        if dist[c] >= 0:  # two sources on one cell (a head-to-head square): the longer holds it
            if lengths[i] > best[c]:
                owner[c], best[c] = owners[i], lengths[i]
            elif lengths[i] == best[c]:
                owner[c] = CONTESTED
            continue
        owner[c], dist[c], best[c] = owners[i], times[i], lengths[i]
        queue[count] = c
        count += 1
    head = 0
    while head < count:
        c = queue[head]
        head += 1
        who = owner[c]
        if who < 0:
            continue
        t = dist[c] + 1
        for d in range(4):
            n = neighbour(c, d, width, height, wrapped)
            if n < 0 or free_at[n] > t:
                continue
            if dist[n] < 0:
                owner[n], dist[n], best[n] = who, t, best[c]
                queue[count] = n
                count += 1
            elif dist[n] == t and owner[n] != who:
                if best[c] > best[n]:
                    owner[n], best[n] = who, best[c]
                elif best[c] == best[n]:
                    owner[n] = CONTESTED


@njit(cache=True, nogil=True)
def live_heads(state, b, width, heads, slots, lengths):
    """Game ``b``'s live snakes, in slot order, into the first entries of ``heads`` (head cell), ``slots`` and
    ``lengths``; returns how many there are (the sources of a ``contest`` from where the heads stand)."""
    live = 0
    for s in range(state.length.shape[1]):
        if state.elim_cause[b, s] == ALIVE:
            heads[live] = np.int64(state.body[b, s, 0, 0]) + np.int64(state.body[b, s, 0, 1]) * width
            slots[live] = s
            lengths[live] = state.length[b, s]
            live += 1
    return live


@njit(cache=True, nogil=True)
def contest_from_heads(state, b, width, height, wrapped, free_at, heads, zeros, slots, lengths, owner, dist, queue):
    """Game ``b``'s territory now: its live snakes (``live_heads``) contest the board from where their heads stand
    (``contest`` into ``owner``, ``free_at`` filled by ``free_after``); returns how many snakes live (0: nothing
    computed). ``zeros`` holds 0 in its first entries (the heads' start times)."""
    live = live_heads(state, b, width, heads, slots, lengths)
    if live == 0:
        return 0
    free_after(state, b, width, height, free_at)
    contest(width, height, wrapped, free_at, heads[:live], zeros[:live], slots[:live], lengths[:live], owner, dist,
            queue)
    return live


@njit(cache=True, nogil=True)
def territory_after_move(width, height, wrapped, free_at, src_cells, src_times, src_owners, src_lengths, k, target,
                         me, my_length, owner, dist, queue):
    """My territory if my head steps to ``target`` next turn: the first ``k`` sources (the others' heads, at time 0)
    and mine at ``target`` (time 1, source ``k``) contest the board (``contest``, into ``owner``); returns the cells
    that are mine."""
    src_cells[k], src_times[k], src_owners[k], src_lengths[k] = target, 1, me, my_length
    contest(width, height, wrapped, free_at, src_cells[:k + 1], src_times[:k + 1], src_owners[:k + 1],
            src_lengths[:k + 1], owner, dist, queue)
    mine = 0
    for c in range(width * height):
        mine += owner[c] == me
    return mine


@njit(cache=True, nogil=True)
def territory_counts(state, params, wrapped, out):
    """out (B, S) int64: the cells each live snake of each game reaches first (``contest`` from every live head at
    turn 0; its own head included); 0 for eliminated snakes."""
    width, height = params[P_WIDTH], params[P_HEIGHT]
    num_snakes = state.length.shape[1]
    cells = width * height
    free_at = np.empty(cells, np.int64)
    owner = np.empty(cells, np.int64)
    dist = np.empty(cells, np.int64)
    queue = np.empty(cells + num_snakes, np.int64)
    heads = np.empty(num_snakes, np.int64)
    zeros = np.zeros(num_snakes, np.int64)
    slots = np.empty(num_snakes, np.int64)
    lengths = np.empty(num_snakes, np.int64)
    out[:] = 0
    for b in range(state.turn.shape[0]):
        if contest_from_heads(state, b, width, height, wrapped, free_at, heads, zeros, slots, lengths, owner, dist,
                              queue) == 0:
            continue
        for c in range(cells):
            if owner[c] >= 0:
                out[b, owner[c]] += 1
