"""The rule stages: the one implementation of the official Battlesnake rules in this project.

Each stage is a compiled function with one signature, ``stage(state, moves, params, running)``, that mutates the
batch in place for the games where ``running[b]`` is true (a stage that ends a game clears its flag, which stops the
pipeline for that game, as the official engine stops at the first stage that reports game over). A ruleset is an
ordered tuple of stage names (see ``rulesets.py``); ``run_pipeline`` runs such a tuple as stage ids.

Stage names are the official engine's (``rules/pipeline.go``), each followed by the Go function that implements it.
``params`` is the settings vector (``state.P_*``). Coordinates: (0, 0) bottom-left, up = y + 1.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .rng import GOLDEN, mix64, unit_from_bits
from .state import (
    ALIVE,
    BY_NOBODY,
    DOWN,
    HAZARD,
    HEAD_COLLISION,
    LEFT,
    MAX_HEALTH,
    OUT_OF_HEALTH,
    P_HAZARD_DAMAGE,
    P_HEIGHT,
    P_SHRINK_EVERY,
    P_WIDTH,
    RIGHT,
    SELF_COLLISION,
    SNAKE_COLLISION,
    UP,
    WALL_COLLISION,
)

# The official stage names.
STAGE_GAME_OVER_STANDARD = "game_over.standard"  # GameOverStandard
STAGE_GAME_OVER_SOLO_SNAKE = "game_over.solo_snake"  # GameOverSolo
STAGE_MOVEMENT_STANDARD = "movement.standard"  # MoveSnakesStandard
STAGE_MOVEMENT_WRAP_BOUNDARIES = "movement.wrap_boundaries"  # MoveSnakesWrapped
STAGE_STARVATION_STANDARD = "starvation.standard"  # ReduceSnakeHealthStandard
STAGE_HAZARD_DAMAGE_STANDARD = "hazard_damage.standard"  # DamageHazardsStandard
STAGE_FEED_SNAKES_STANDARD = "feed_snakes.standard"  # FeedSnakesStandard
STAGE_ELIMINATION_STANDARD = "elimination.standard"  # EliminateSnakesStandard
STAGE_SPAWN_FOOD_NO_FOOD = "spawn_food.no_food"  # RemoveFoodConstrictor
STAGE_MODIFY_SNAKES_ALWAYS_GROW = "modify_snakes.always_grow"  # GrowSnakesConstrictor
STAGE_SPAWN_HAZARDS_SHRINK_MAP = "spawn_hazards.shrink_map"  # PopulateHazardsRoyale

# Their ids in the compiled pipeline.
(GAME_OVER_STANDARD, GAME_OVER_SOLO_SNAKE, MOVEMENT_STANDARD, MOVEMENT_WRAP_BOUNDARIES, STARVATION_STANDARD,
 HAZARD_DAMAGE_STANDARD, FEED_SNAKES_STANDARD, ELIMINATION_STANDARD, SPAWN_FOOD_NO_FOOD, MODIFY_SNAKES_ALWAYS_GROW,
 SPAWN_HAZARDS_SHRINK_MAP) = range(11)
STAGE_IDS = {
    STAGE_GAME_OVER_STANDARD: GAME_OVER_STANDARD,
    STAGE_GAME_OVER_SOLO_SNAKE: GAME_OVER_SOLO_SNAKE,
    STAGE_MOVEMENT_STANDARD: MOVEMENT_STANDARD,
    STAGE_MOVEMENT_WRAP_BOUNDARIES: MOVEMENT_WRAP_BOUNDARIES,
    STAGE_STARVATION_STANDARD: STARVATION_STANDARD,
    STAGE_HAZARD_DAMAGE_STANDARD: HAZARD_DAMAGE_STANDARD,
    STAGE_FEED_SNAKES_STANDARD: FEED_SNAKES_STANDARD,
    STAGE_ELIMINATION_STANDARD: ELIMINATION_STANDARD,
    STAGE_SPAWN_FOOD_NO_FOOD: SPAWN_FOOD_NO_FOOD,
    STAGE_MODIFY_SNAKES_ALWAYS_GROW: MODIFY_SNAKES_ALWAYS_GROW,
    STAGE_SPAWN_HAZARDS_SHRINK_MAP: SPAWN_HAZARDS_SHRINK_MAP,
}


@njit(cache=True, nogil=True)
def _live_count(state, b):
    n = 0
    for s in range(state.length.shape[1]):
        if state.elim_cause[b, s] == ALIVE:
            n += 1
    return n


@njit(cache=True, nogil=True)
def game_over_standard(state, moves, params, running):
    for b in range(running.shape[0]):
        if running[b] and _live_count(state, b) <= 1:
            running[b] = False


@njit(cache=True, nogil=True)
def game_over_solo(state, moves, params, running):
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
def food_at(state, b, x, y):
    """Is there food on (x, y) in game b?"""
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
            if food_at(state, b, x, y):
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
        if sid == GAME_OVER_STANDARD:
            game_over_standard(state, moves, params, running)
        elif sid == GAME_OVER_SOLO_SNAKE:
            game_over_solo(state, moves, params, running)
        elif sid == MOVEMENT_STANDARD:
            move_standard(state, moves, params, running)
        elif sid == MOVEMENT_WRAP_BOUNDARIES:
            move_wrapped(state, moves, params, running)
        elif sid == STARVATION_STANDARD:
            reduce_health(state, moves, params, running)
        elif sid == HAZARD_DAMAGE_STANDARD:
            damage_hazards(state, moves, params, running)
        elif sid == FEED_SNAKES_STANDARD:
            feed_snakes(state, moves, params, running)
        elif sid == ELIMINATION_STANDARD:
            eliminate_snakes(state, moves, params, running)
        elif sid == SPAWN_FOOD_NO_FOOD:
            remove_food(state, moves, params, running)
        elif sid == MODIFY_SNAKES_ALWAYS_GROW:
            grow_snakes_constrictor(state, moves, params, running)
        elif sid == SPAWN_HAZARDS_SHRINK_MAP:
            populate_hazards_royale(state, moves, params, running)
        else:
            raise ValueError("unknown stage id")
