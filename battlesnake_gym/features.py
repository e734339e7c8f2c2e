"""Compiled board features shared by bots, action masks and observation encoders (none of them is a rule).

All take the batched ``GameState`` and the settings vector ``params`` (see ``engine.stages.P_*``); cells are indexed
``x + y * width`` with (0, 0) bottom-left.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .engine.stages import P_HEIGHT, P_WIDTH
from .engine.state import ALIVE

#: (dx, dy) of the moves 0 up, 1 down, 2 left, 3 right.
DX = np.array([0, 0, -1, 1], np.int64)
DY = np.array([1, -1, 0, 0], np.int64)


@njit(cache=True)
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


@njit(cache=True, inline="always")
def step_target(state, params, wrapped, b, s, move):
    """The cell (x, y) snake s of game b reaches with ``move`` (wrapped across edges when ``wrapped``)."""
    width, height = params[P_WIDTH], params[P_HEIGHT]
    x = np.int64(state.body[b, s, 0, 0]) + DX[move]
    y = np.int64(state.body[b, s, 0, 1]) + DY[move]
    if wrapped:
        x %= width
        y %= height
    return x, y


@njit(cache=True)
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
