"""Starting boards (``setup_games``): the official start cells and starting food, drawn from each game's own stream.

Coordinates: (0, 0) bottom-left, up = y + 1.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .map_stages import place_food_randomly
from .rng import next_u64, rand_below
from .rule_stages import food_at
from .state import ALIVE, BY_NOBODY, MAX_HEALTH, P_HEIGHT, P_WIDTH, START_LENGTH
from .turn import OK

# Status codes returned by setup_games (OK and the turn's codes are in ``turn``).
ERR_TOO_MANY_SNAKES = 3
ERR_NO_ROOM_FOR_SNAKE = 4
ERR_NO_ROOM_FOR_FOOD = 5


@njit(cache=True, nogil=True)
def _shuffle_points(state, b, points):
    for i in range(points.shape[0] - 1, 0, -1):
        j = rand_below(state.rng, b, i + 1)
        tx, ty = points[i, 0], points[i, 1]
        points[i, 0], points[i, 1] = points[j, 0], points[j, 1]
        points[j, 0], points[j, 1] = tx, ty


@njit(cache=True, nogil=True)
def _place_snake(state, b, s, x, y):
    for i in range(START_LENGTH):
        state.body[b, s, i, 0] = x
        state.body[b, s, i, 1] = y
    state.length[b, s] = START_LENGTH


@njit(cache=True, nogil=True)
def _place_snakes_fixed(state, b, width, num_snakes):
    mn, md, mx = 1, (width - 1) // 2, width - 2
    corners = np.array([[mn, mn], [mn, mx], [mx, mn], [mx, mx]], np.int64)
    cardinals = np.array([[mn, md], [md, mn], [md, mx], [mx, md]], np.int64)
    _shuffle_points(state, b, corners)
    _shuffle_points(state, b, cardinals)
    if rand_below(state.rng, b, 2) == 0:
        points = np.concatenate((corners, cardinals))
    else:
        points = np.concatenate((cardinals, corners))
    for s in range(num_snakes):
        _place_snake(state, b, s, points[s, 0], points[s, 1])


@njit(cache=True, nogil=True)
def _place_snakes_distributed(state, b, width, height, num_snakes):
    """Up to 16 snakes spread over the four quadrants, rotating from a random one."""
    qw, qh = width // 2, height // 2
    ho, vo = qw // 3, qh // 3
    base = np.array([[ho, vo], [qw - ho, vo], [ho, qh - vo], [qw - ho, qh - vo]], np.int64)
    quads = np.empty((4, 4, 2), np.int64)
    for i in range(4):
        x, y = base[i, 0], base[i, 1]
        quads[0, i, 0], quads[0, i, 1] = x, y
        quads[1, i, 0], quads[1, i, 1] = width - x - 1, y
        quads[2, i, 0], quads[2, i, 1] = x, height - y - 1
        quads[3, i, 0], quads[3, i, 1] = width - x - 1, height - y - 1
    left = np.full(4, 4, np.int64)
    quad = rand_below(state.rng, b, 4)
    for s in range(num_snakes):
        idx = rand_below(state.rng, b, left[quad])
        _place_snake(state, b, s, quads[quad, idx, 0], quads[quad, idx, 1])
        last = left[quad] - 1
        quads[quad, idx, 0], quads[quad, idx, 1] = quads[quad, last, 0], quads[quad, last, 1]
        left[quad] = last
        quad = (quad + 1) % 4


@njit(cache=True, nogil=True)
def _place_snakes_randomly(state, b, width, height, num_snakes):
    """Each snake on a random free cell of even parity that is not the centre."""
    cx, cy = (width - 1) // 2, (height - 1) // 2
    candidates = np.empty(width * height, np.int64)
    for s in range(num_snakes):
        free = 0
        for x in range(width):
            for y in range(height):
                if (x + y) % 2 != 0 or (x == cx and y == cy):
                    continue
                taken = False
                for o in range(s):
                    if state.body[b, o, 0, 0] == x and state.body[b, o, 0, 1] == y:
                        taken = True
                if not taken:
                    candidates[free] = x + y * width
                    free += 1
        if free == 0:
            return ERR_NO_ROOM_FOR_SNAKE
        cell = candidates[rand_below(state.rng, b, free)]
        _place_snake(state, b, s, cell % width, cell // width)
    return OK


@njit(cache=True, nogil=True)
def _place_food_fixed(state, b, width, height, num_snakes):
    """One food on a diagonal of each snake, away from the centre and not in a corner; then one in the centre."""
    cx, cy = (width - 1) // 2, (height - 1) // 2
    options = np.empty((4, 2), np.int64)
    if num_snakes <= 4 or width * height >= 121:
        for s in range(num_snakes):
            hx, hy = np.int64(state.body[b, s, 0, 0]), np.int64(state.body[b, s, 0, 1])
            n = 0
            for dx, dy in ((-1, -1), (-1, 1), (1, -1), (1, 1)):
                x, y = hx + dx, hy + dy
                if x == cx and y == cy:
                    continue
                if food_at(state, b, x, y):
                    continue
                away = (x < hx < cx) or (cx < hx < x) or (y < hy < cy) or (cy < hy < y)
                if not away:
                    continue
                if (x == 0 or x == width - 1) and (y == 0 or y == height - 1):
                    continue
                options[n, 0], options[n, 1] = x, y
                n += 1
            if n == 0:
                return ERR_NO_ROOM_FOR_FOOD
            pick = rand_below(state.rng, b, n)
            f = state.food_count[b]
            state.food[b, f, 0], state.food[b, f, 1] = options[pick, 0], options[pick, 1]
            state.food_count[b] = f + 1
    if food_at(state, b, cx, cy):
        return ERR_NO_ROOM_FOR_FOOD
    for s in range(num_snakes):
        for i in range(state.length[b, s]):
            if state.body[b, s, i, 0] == cx and state.body[b, s, i, 1] == cy:
                return ERR_NO_ROOM_FOR_FOOD
    f = state.food_count[b]
    state.food[b, f, 0], state.food[b, f, 1] = cx, cy
    state.food_count[b] = f + 1
    return OK


@njit(cache=True, nogil=True)
def setup_games(state, params, mask, place_food, errors):
    """Official starting boards for every game with ``mask[b]``, drawn from each game's own stream.

    Snakes: fixed cells on square boards >= 7 with <= 8 snakes, quadrants for more (boards >= 11, <= 16 snakes),
    random even cells otherwise. Food: the fixed pattern on square boards >= 7, else one random food per snake.
    """
    width, height = params[P_WIDTH], params[P_HEIGHT]
    num_snakes = state.length.shape[1]
    square = width == height
    blocked = np.empty(width * height, np.uint8)
    candidates = np.empty(width * height, np.int64)
    for b in range(mask.shape[0]):
        if not mask[b]:
            continue
        errors[b] = OK
        state.turn[b] = 0
        state.food_count[b] = 0
        state.hazard_count[b] = 0
        state.royale_seed[b] = next_u64(state.rng, b)
        for s in range(num_snakes):
            state.health[b, s] = MAX_HEALTH
            state.length[b, s] = 0
            state.elim_cause[b, s] = ALIVE
            state.elim_by[b, s] = BY_NOBODY
            state.elim_turn[b, s] = 0
        status = OK
        if square and num_snakes > 8 and width < 7:
            status = ERR_TOO_MANY_SNAKES
        elif square and num_snakes <= 8 and width >= 7:
            _place_snakes_fixed(state, b, width, num_snakes)
        elif square and width >= 11:
            if num_snakes > 16:
                status = ERR_TOO_MANY_SNAKES
            else:
                _place_snakes_distributed(state, b, width, height, num_snakes)
        else:
            status = _place_snakes_randomly(state, b, width, height, num_snakes)
        if status == OK and place_food:
            if square and width >= 7:
                status = _place_food_fixed(state, b, width, height, num_snakes)
            else:
                place_food_randomly(state, b, width, height, num_snakes, blocked, candidates)
        errors[b] = status
