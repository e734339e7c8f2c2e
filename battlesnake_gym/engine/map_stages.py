"""The map stages: a map's post-update after the ruleset's pipeline (food spawning, hazard layouts).

Each stage has the signature ``map_stage(state, params, stepped, ...)`` and changes the games where ``stepped[b]``
is true. A map lists its post-update stages by name (see ``GameMap`` in ``rulesets.py``); ``run_map_stages`` runs
them as ids. The official engine writes each map's post-update as Go code; here a map is a list of these stages.
``params`` is the settings vector (``state.P_*``). Coordinates: (0, 0) bottom-left, up = y + 1.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .rng import rand_below
from .rule_stages import STAGE_SPAWN_HAZARDS_SHRINK_MAP, royale_hazards
from .state import (
    ALIVE,
    P_FOOD_SPAWN_CHANCE,
    P_HEIGHT,
    P_MINIMUM_FOOD,
    P_WIDTH,
)

# Map stage names, in the official engine's naming.
STAGE_SPAWN_FOOD_STANDARD = "spawn_food.standard"  # SpawnFoodStandard, which the official maps' post-update runs
# STAGE_SPAWN_HAZARDS_SHRINK_MAP: the royale map's post-update rebuilds hazards as the royale ruleset's stage does.
# Not an official stage: the cells of a map's hazard schedule (``GameMap.hazard_schedule``) for the board's turn.
STAGE_SPAWN_HAZARDS_SCHEDULED = "spawn_hazards.scheduled"

# Their ids in the compiled post-update.
MAP_SPAWN_FOOD_STANDARD, MAP_SPAWN_HAZARDS_SHRINK_MAP, MAP_SPAWN_HAZARDS_SCHEDULED = range(3)
MAP_STAGE_IDS = {
    STAGE_SPAWN_FOOD_STANDARD: MAP_SPAWN_FOOD_STANDARD,
    STAGE_SPAWN_HAZARDS_SHRINK_MAP: MAP_SPAWN_HAZARDS_SHRINK_MAP,
    STAGE_SPAWN_HAZARDS_SCHEDULED: MAP_SPAWN_HAZARDS_SCHEDULED,
}


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
    """Run the map's post-update stages in order on every game with ``stepped[b]``."""
    for sid in map_stage_ids:
        if sid == MAP_SPAWN_FOOD_STANDARD:
            spawn_food_standard(state, params, stepped)
        elif sid == MAP_SPAWN_HAZARDS_SHRINK_MAP:
            hazards_royale_map(state, params, stepped)
        elif sid == MAP_SPAWN_HAZARDS_SCHEDULED:
            hazards_scheduled(state, stepped, turns, offsets, cells)
        else:
            raise ValueError("unknown map stage id")
