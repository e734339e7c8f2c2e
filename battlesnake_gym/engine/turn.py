"""The turn driver: one whole turn as the official CLI runs it, over a batch of games.

``step_games`` checks the moves and the arrays' capacity, runs the ruleset's pipeline (``rule_stages``), then the
map's post-update (``map_stages``) and ``turn += 1``; ``games_over`` asks the game-over stage alone. Compiled
functions return the status codes below rather than raising, and ``Games`` turns them into errors.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .map_stages import run_map_stages
from .rule_stages import run_pipeline
from .state import ALIVE

# Status codes returned by step_games (and, with the set-up codes of ``starts``, by setup_games).
OK = 0
ERR_MISSING_MOVE = 1
ERR_CAPACITY = 2


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
