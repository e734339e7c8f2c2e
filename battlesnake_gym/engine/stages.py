"""The rule stages: the one implementation of the official Battlesnake rules in this project.

Each stage is a compiled function with one signature, ``stage(state, moves, params, running)``, that mutates the
batch in place for the games where ``running[b]`` is true (a stage that ends a game clears its flag, which stops the
pipeline for that game, as the official engine stops at the first stage that reports game over). A ruleset is an
ordered tuple of stage names (see ``rulesets.py``); ``run_pipeline`` runs such a tuple as stage ids.

Map post-update stages (food spawning, hazard layouts) have the signature ``map_stage(state, params, stepped, ...)``.

``params`` is the settings vector, indexed by ``state.P_*``. Coordinates: (0, 0) bottom-left, up = y + 1.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .rng import GOLDEN, mix64, next_u64, rand_below, unit_from_bits
from .state import (
    ALIVE,
    BY_NOBODY,
    DOWN,
    HAZARD,
    HEAD_COLLISION,
    LEFT,
    MAX_HEALTH,
    OUT_OF_HEALTH,
    P_FOOD_SPAWN_CHANCE,
    P_HAZARD_DAMAGE,
    P_HEIGHT,
    P_MINIMUM_FOOD,
    P_SHRINK_EVERY,
    P_WIDTH,
    RIGHT,
    SELF_COLLISION,
    SNAKE_COLLISION,
    START_LENGTH,
    UP,
    WALL_COLLISION,
)

# Stage ids. The names are the ones the official engine uses where it has one.
(GAMEOVER_STANDARD, GAMEOVER_SOLO, MOVE_STANDARD, MOVE_WRAPPED, REDUCE_HEALTH, DAMAGE_HAZARDS, FEED_SNAKES,
 ELIMINATE_SNAKES, REMOVE_FOOD, GROW_CONSTRICTOR, POPULATE_HAZARDS_ROYALE) = range(11)
STAGE_IDS = {
    "gameover.standard": GAMEOVER_STANDARD,
    "gameover.solo": GAMEOVER_SOLO,
    "movement.standard": MOVE_STANDARD,
    "movement.wrapped": MOVE_WRAPPED,
    "reducehealth.standard": REDUCE_HEALTH,
    "hazarddamage.standard": DAMAGE_HAZARDS,
    "feedsnakes.standard": FEED_SNAKES,
    "eliminatesnake.standard": ELIMINATE_SNAKES,
    "removefood.constrictor": REMOVE_FOOD,
    "growsnakes.constrictor": GROW_CONSTRICTOR,
    "populatehazards.royale": POPULATE_HAZARDS_ROYALE,
}
MAP_SPAWN_FOOD, MAP_ROYALE_HAZARDS, MAP_SCHEDULED_HAZARDS = range(3)
MAP_STAGE_IDS = {
    "spawnfood.standard": MAP_SPAWN_FOOD,
    "hazards.royale": MAP_ROYALE_HAZARDS,
    "hazards.scheduled": MAP_SCHEDULED_HAZARDS,
}

# Status codes returned by step_games / setup_games.
OK = 0
ERR_MISSING_MOVE = 1
ERR_CAPACITY = 2
ERR_TOO_MANY_SNAKES = 3
ERR_NO_ROOM_FOR_SNAKE = 4
ERR_NO_ROOM_FOR_FOOD = 5


@njit(cache=True, nogil=True)
def _live_count(state, b):
    n = 0
    for s in range(state.length.shape[1]):
        if state.elim_cause[b, s] == ALIVE:
            n += 1
    return n


@njit(cache=True, nogil=True)
def gameover_standard(state, moves, params, running):
    for b in range(running.shape[0]):
        if running[b] and _live_count(state, b) <= 1:
            running[b] = False


@njit(cache=True, nogil=True)
def gameover_solo(state, moves, params, running):
    for b in range(running.shape[0]):
        if running[b] and _live_count(state, b) == 0:
            running[b] = False


@njit(cache=True, nogil=True)
def _continued_direction(body, n):
    """The direction of the snake's last move, read from neck to head (the ruleset's invalid-move rule)."""
    if n < 2:
        return UP
    hx, hy = body[0, 0], body[0, 1]
    nx, ny = body[1, 0], body[1, 1]
    if hx == nx + 1:
        return RIGHT
    if hx == nx - 1:
        return LEFT
    if hy == ny + 1:
        return UP
    if hy == ny - 1:
        return DOWN
    # A neck on the far side of a wrapped edge.
    if hx == 0 and nx > 0:
        return RIGHT
    if nx == 0 and hx > 0:
        return LEFT
    if hy == 0 and ny > 0:
        return UP
    if ny == 0 and hy > 0:
        return DOWN
    return UP  # stacked neck


@njit(cache=True, nogil=True)
def _move(state, moves, params, running, wrap):
    width, height = params[P_WIDTH], params[P_HEIGHT]
    body, length = state.body, state.length
    for b in range(running.shape[0]):
        if not running[b]:
            continue
        for s in range(length.shape[1]):
            if state.elim_cause[b, s] != ALIVE:
                continue
            n = length[b, s]
            move = moves[b, s]
            if move < UP or move > RIGHT:
                move = _continued_direction(body[b, s], n)
            x = np.int64(body[b, s, 0, 0])
            y = np.int64(body[b, s, 0, 1])
            if move == UP:
                y += 1
            elif move == DOWN:
                y -= 1
            elif move == LEFT:
                x -= 1
            else:
                x += 1
            if wrap:
                x %= width
                y %= height
            # New body = [new head] + body[:-1].
            for i in range(n - 1, 0, -1):
                body[b, s, i, 0] = body[b, s, i - 1, 0]
                body[b, s, i, 1] = body[b, s, i - 1, 1]
            body[b, s, 0, 0] = x
            body[b, s, 0, 1] = y


@njit(cache=True, nogil=True)
def move_standard(state, moves, params, running):
    _move(state, moves, params, running, False)


@njit(cache=True, nogil=True)
def move_wrapped(state, moves, params, running):
    _move(state, moves, params, running, True)


@njit(cache=True, nogil=True)
def reduce_health(state, moves, params, running):
    for b in range(running.shape[0]):
        if not running[b]:
            continue
        for s in range(state.length.shape[1]):
            if state.elim_cause[b, s] == ALIVE:
                state.health[b, s] -= 1


@njit(cache=True, nogil=True)
def _food_at(state, b, x, y):
    for f in range(state.food_count[b]):
        if state.food[b, f, 0] == x and state.food[b, f, 1] == y:
            return True
    return False


@njit(cache=True, nogil=True)
def damage_hazards(state, moves, params, running):
    damage = params[P_HAZARD_DAMAGE]
    for b in range(running.shape[0]):
        if not running[b] or state.hazard_count[b] == 0:
            continue
        for s in range(state.length.shape[1]):
            if state.elim_cause[b, s] != ALIVE:
                continue
            x, y = state.body[b, s, 0, 0], state.body[b, s, 0, 1]
            if _food_at(state, b, x, y):
                continue  # food on the cell cancels hazard damage
            for z in range(state.hazard_count[b]):  # once per stacked entry
                if state.hazards[b, z, 0] == x and state.hazards[b, z, 1] == y:
                    health = min(max(state.health[b, s] - damage, 0), MAX_HEALTH)
                    state.health[b, s] = health
                    if health <= 0:
                        state.elim_cause[b, s] = HAZARD
                        state.elim_by[b, s] = BY_NOBODY
                        state.elim_turn[b, s] = state.turn[b] + 1


@njit(cache=True, nogil=True)
def _grow(state, b, s):
    """Duplicate the tail segment."""
    n = state.length[b, s]
    if n >= state.body.shape[2]:
        raise RuntimeError("snake body capacity exceeded (the step checks capacity first; this is a bug)")
    state.body[b, s, n, 0] = state.body[b, s, n - 1, 0]
    state.body[b, s, n, 1] = state.body[b, s, n - 1, 1]
    state.length[b, s] = n + 1


@njit(cache=True, nogil=True)
def feed_snakes(state, moves, params, running):
    for b in range(running.shape[0]):
        if not running[b]:
            continue
        kept = 0
        for f in range(state.food_count[b]):
            fx, fy = state.food[b, f, 0], state.food[b, f, 1]
            eaten = False
            for s in range(state.length.shape[1]):
                if state.elim_cause[b, s] == ALIVE and state.body[b, s, 0, 0] == fx and state.body[b, s, 0, 1] == fy:
                    state.health[b, s] = MAX_HEALTH
                    _grow(state, b, s)
                    eaten = True
            if not eaten:
                state.food[b, kept, 0] = fx
                state.food[b, kept, 1] = fy
                kept += 1
        state.food_count[b] = kept


@njit(cache=True, nogil=True)
def _hits_body(state, b, x, y, other):
    """Is (x, y) on body[1:] of snake ``other``?"""
    for i in range(1, state.length[b, other]):
        if state.body[b, other, i, 0] == x and state.body[b, other, i, 1] == y:
            return True
    return False


@njit(cache=True, nogil=True)
def eliminate_snakes(state, moves, params, running):
    width, height = params[P_WIDTH], params[P_HEIGHT]
    num_snakes = state.length.shape[1]
    order = np.empty(num_snakes, np.int64)
    cause = np.empty(num_snakes, np.int8)
    by = np.empty(num_snakes, np.int16)
    for b in range(running.shape[0]):
        if not running[b]:
            continue
        turn = state.turn[b] + 1
        # a. Health and walls, applied at once: these snakes are no obstacles below.
        for s in range(num_snakes):
            if state.elim_cause[b, s] != ALIVE:
                continue
            if state.health[b, s] <= 0:
                state.elim_cause[b, s] = OUT_OF_HEALTH
                state.elim_by[b, s] = BY_NOBODY
                state.elim_turn[b, s] = turn
                continue
            for i in range(state.length[b, s]):
                x, y = state.body[b, s, i, 0], state.body[b, s, i, 1]
                if x < 0 or x >= width or y < 0 or y >= height:
                    state.elim_cause[b, s] = WALL_COLLISION
                    state.elim_by[b, s] = BY_NOBODY
                    state.elim_turn[b, s] = turn
                    break
        # b. Collisions, judged on one snapshot: longest snakes first, equal lengths in board order.
        for s in range(num_snakes):
            order[s] = s
        for i in range(1, num_snakes):
            j = i
            while j > 0 and state.length[b, order[j - 1]] < state.length[b, order[j]]:
                order[j - 1], order[j] = order[j], order[j - 1]
                j -= 1
        for s in range(num_snakes):
            cause[s] = ALIVE
            by[s] = BY_NOBODY
            if state.elim_cause[b, s] != ALIVE:
                continue
            x, y = state.body[b, s, 0, 0], state.body[b, s, 0, 1]
            if _hits_body(state, b, x, y, s):
                cause[s] = SELF_COLLISION
                by[s] = s
                continue
            for k in range(num_snakes):
                other = order[k]
                if other != s and state.elim_cause[b, other] == ALIVE and _hits_body(state, b, x, y, other):
                    cause[s] = SNAKE_COLLISION
                    by[s] = other
                    break
            if cause[s] != ALIVE:
                continue
            for k in range(num_snakes):
                other = order[k]
                if (
                    other != s
                    and state.elim_cause[b, other] == ALIVE
                    and state.body[b, other, 0, 0] == x
                    and state.body[b, other, 0, 1] == y
                    and state.length[b, s] <= state.length[b, other]
                ):
                    cause[s] = HEAD_COLLISION
                    by[s] = other
                    break
        for s in range(num_snakes):
            if cause[s] != ALIVE:
                state.elim_cause[b, s] = cause[s]
                state.elim_by[b, s] = by[s]
                state.elim_turn[b, s] = turn


@njit(cache=True, nogil=True)
def remove_food(state, moves, params, running):
    for b in range(running.shape[0]):
        if running[b]:
            state.food_count[b] = 0


@njit(cache=True, nogil=True)
def grow_snakes_constrictor(state, moves, params, running):
    """Every snake in the list, eliminated or not: health 100, and grow unless the tail is already stacked."""
    for b in range(running.shape[0]):
        if not running[b]:
            continue
        for s in range(state.length.shape[1]):
            n = state.length[b, s]
            if n == 0:
                continue
            state.health[b, s] = MAX_HEALTH
            if n < 2 or (
                state.body[b, s, n - 1, 0] != state.body[b, s, n - 2, 0]
                or state.body[b, s, n - 1, 1] != state.body[b, s, n - 2, 1]
            ):
                _grow(state, b, s)


@njit(cache=True, nogil=True)
def royale_hazards(state, params, b, turn):
    """Rebuild game b's hazards for ``turn``: every cell outside a box that lost turn // N random sides.

    The side sequence comes from the game's royale seed alone, so each rebuild extends the previous one.
    Shrinks are not capped: the box can vanish, leaving the whole board hazardous.
    """
    width, height, every = params[P_WIDTH], params[P_HEIGHT], params[P_SHRINK_EVERY]
    state.hazard_count[b] = 0
    if turn < every:
        return
    min_x, max_x, min_y, max_y = 0, width - 1, 0, height - 1
    stream = state.royale_seed[b]
    for _ in range(turn // every):
        stream += GOLDEN
        side = np.int64(unit_from_bits(mix64(stream)) * 4)
        if side == 0:
            min_x += 1
        elif side == 1:
            max_x -= 1
        elif side == 2:
            min_y += 1
        else:
            max_y -= 1
    k = 0
    for x in range(width):
        for y in range(height):
            if x < min_x or x > max_x or y < min_y or y > max_y:
                state.hazards[b, k, 0] = x
                state.hazards[b, k, 1] = y
                k += 1
    state.hazard_count[b] = k


@njit(cache=True, nogil=True)
def populate_hazards_royale(state, moves, params, running):
    for b in range(running.shape[0]):
        if running[b]:
            royale_hazards(state, params, b, state.turn[b] + 1)


@njit(cache=True, nogil=True)
def run_pipeline(state, moves, params, stage_ids, running):
    """Run the ruleset's stages in order; a game whose flag a stage clears skips the rest."""
    for sid in stage_ids:
        if sid == GAMEOVER_STANDARD:
            gameover_standard(state, moves, params, running)
        elif sid == GAMEOVER_SOLO:
            gameover_solo(state, moves, params, running)
        elif sid == MOVE_STANDARD:
            move_standard(state, moves, params, running)
        elif sid == MOVE_WRAPPED:
            move_wrapped(state, moves, params, running)
        elif sid == REDUCE_HEALTH:
            reduce_health(state, moves, params, running)
        elif sid == DAMAGE_HAZARDS:
            damage_hazards(state, moves, params, running)
        elif sid == FEED_SNAKES:
            feed_snakes(state, moves, params, running)
        elif sid == ELIMINATE_SNAKES:
            eliminate_snakes(state, moves, params, running)
        elif sid == REMOVE_FOOD:
            remove_food(state, moves, params, running)
        elif sid == GROW_CONSTRICTOR:
            grow_snakes_constrictor(state, moves, params, running)
        elif sid == POPULATE_HAZARDS_ROYALE:
            populate_hazards_royale(state, moves, params, running)
        else:
            raise ValueError("unknown stage id")


# ---------------------------------------------------------------- map post-update stages


@njit(cache=True, nogil=True)
def _mark_blocked_for_food(state, b, width, height, blocked):
    """blocked[x + y*width] = 1 where new food may not go: food, live segments, cells next to live heads."""
    blocked[:] = 0
    for f in range(state.food_count[b]):
        x, y = state.food[b, f, 0], state.food[b, f, 1]
        if 0 <= x < width and 0 <= y < height:
            blocked[x + y * width] = 1
    for s in range(state.length.shape[1]):
        if state.elim_cause[b, s] != ALIVE:
            continue
        for i in range(state.length[b, s]):
            x, y = state.body[b, s, i, 0], state.body[b, s, i, 1]
            if 0 <= x < width and 0 <= y < height:
                blocked[x + y * width] = 1
        hx, hy = np.int64(state.body[b, s, 0, 0]), np.int64(state.body[b, s, 0, 1])
        # The four neighbours of the head, without wrapping (also in wrapped rulesets).
        for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            x, y = hx + dx, hy + dy
            if 0 <= x < width and 0 <= y < height:
                blocked[x + y * width] = 1


@njit(cache=True, nogil=True)
def place_food_randomly(state, b, width, height, count, blocked, candidates):
    """Add up to ``count`` food on distinct random free cells (official PlaceFoodRandomly)."""
    _mark_blocked_for_food(state, b, width, height, blocked)
    free = 0
    for cell in range(width * height):
        if blocked[cell] == 0:
            candidates[free] = cell
            free += 1
    for _ in range(count):
        if free == 0:
            return
        pick = rand_below(state.rng, b, free)
        cell = candidates[pick]
        candidates[pick] = candidates[free - 1]
        free -= 1
        f = state.food_count[b]
        state.food[b, f, 0] = cell % width
        state.food[b, f, 1] = cell // width
        state.food_count[b] = f + 1


@njit(cache=True, nogil=True)
def spawn_food_standard(state, params, stepped):
    width, height = params[P_WIDTH], params[P_HEIGHT]
    minimum, chance = params[P_MINIMUM_FOOD], params[P_FOOD_SPAWN_CHANCE]
    blocked = np.empty(width * height, np.uint8)
    candidates = np.empty(width * height, np.int64)
    for b in range(stepped.shape[0]):
        if not stepped[b]:
            continue
        count = state.food_count[b]
        if count < minimum:
            need = minimum - count
        elif chance > 0 and 100 - rand_below(state.rng, b, 100) < chance:
            need = 1
        else:
            continue
        place_food_randomly(state, b, width, height, need, blocked, candidates)


@njit(cache=True, nogil=True)
def hazards_royale_map(state, params, stepped):
    for b in range(stepped.shape[0]):
        if stepped[b]:
            royale_hazards(state, params, b, state.turn[b] + 1)


@njit(cache=True, nogil=True)
def hazards_scheduled(state, stepped, turns, offsets, cells):
    """Append the hazard cells scheduled for the board's turn t = turns[i]: cells[offsets[i]:offsets[i + 1]]."""
    for b in range(stepped.shape[0]):
        if not stepped[b]:
            continue
        row = np.searchsorted(turns, state.turn[b])
        if row >= turns.shape[0] or turns[row] != state.turn[b]:
            continue
        k = state.hazard_count[b]
        for i in range(offsets[row], offsets[row + 1]):
            state.hazards[b, k, 0] = cells[i, 0]
            state.hazards[b, k, 1] = cells[i, 1]
            k += 1
        state.hazard_count[b] = k


@njit(cache=True, nogil=True)
def run_map_stages(state, params, map_stage_ids, stepped, turns, offsets, cells):
    for sid in map_stage_ids:
        if sid == MAP_SPAWN_FOOD:
            spawn_food_standard(state, params, stepped)
        elif sid == MAP_ROYALE_HAZARDS:
            hazards_royale_map(state, params, stepped)
        elif sid == MAP_SCHEDULED_HAZARDS:
            hazards_scheduled(state, stepped, turns, offsets, cells)
        else:
            raise ValueError("unknown map stage id")


# ---------------------------------------------------------------- one whole turn


@njit(cache=True, nogil=True)
def _capacity_ok(state, stepped, grows_every_turn):
    body_cap = state.body.shape[2]
    for b in range(stepped.shape[0]):
        if not stepped[b]:
            continue
        # Worst case: one snake eats every food entry of its game (entries may stack) and constrictor grows it.
        worst = state.food_count[b] + (1 if grows_every_turn else 0)
        for s in range(state.length.shape[1]):
            if state.length[b, s] + worst > body_cap:
                return False
    return True


@njit(cache=True, nogil=True)
def finish_turn(state, params, map_stage_ids, turns, offsets, cells, stepped):
    """The map's post-update (food, hazards), then ``turn += 1``."""
    run_map_stages(state, params, map_stage_ids, stepped, turns, offsets, cells)
    for b in range(stepped.shape[0]):
        if stepped[b]:
            state.turn[b] += 1


@njit(cache=True, nogil=True)
def step_games(state, moves, params, stage_ids, map_stage_ids, turns, offsets, cells, stepped, over,
               grows_every_turn, post_update):
    """One turn as the official CLI runs it, for every game with ``stepped[b]``.

    The ruleset's pipeline, then (if ``post_update``) the map's post-update and ``turn += 1``. ``over[b]`` is set
    where the game-over stage ended the game (the board is then unchanged by the pipeline). Returns a status code;
    on a status other than OK nothing was changed.
    """
    for b in range(stepped.shape[0]):
        if not stepped[b]:
            continue
        for s in range(state.length.shape[1]):
            if state.elim_cause[b, s] == ALIVE and moves[b, s] < 0:
                return ERR_MISSING_MOVE
    if not _capacity_ok(state, stepped, grows_every_turn):
        return ERR_CAPACITY
    running = stepped.copy()
    run_pipeline(state, moves, params, stage_ids, running)
    for b in range(stepped.shape[0]):
        over[b] = stepped[b] and not running[b]
    if post_update:
        finish_turn(state, params, map_stage_ids, turns, offsets, cells, stepped)
    return OK


@njit(cache=True, nogil=True)
def games_over(state, game_over_stage_id, out):
    """out[b] = whether the next step of game b would end it at the game-over stage."""
    out[:] = True
    run_pipeline(state, np.empty((0, 0), np.int8), np.empty(0, np.int64), game_over_stage_id, out)
    for b in range(out.shape[0]):
        out[b] = not out[b]


# ---------------------------------------------------------------- starting boards


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
                if _food_at(state, b, x, y):
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
    if _food_at(state, b, cx, cy):
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
