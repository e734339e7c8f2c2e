"""The map's post-update (``engine/map_stages.py``) as small board pictures: food spawning up to the minimum and
with the spawn chance, and the sinkholes' hazard rings (see ``ascii_boards`` for the notation).

Coordinates: (0, 0) is bottom-left, ``up`` is y + 1; the top row of a picture is y = height - 1.
"""

from __future__ import annotations

import numpy as np
import pytest
from ascii_boards import assert_board, board

from battlesnake_gym.engine import Games, GameSettings, board_from_json, board_to_json

# Two heads on an empty 7 x 7 board.
TWO_SNAKES_7X7 = """
    .......
    .......
    .......
    .A...B.
    .......
    .......
    .......
"""


# ------------------------------------------------------------------------------------- map post-update: food

FOOD_ROOM = """
    .  .  .  .  *
    A  a  .  .  .
    .  a  ~  .  .
    b  b  B  .  .
    .  .  .  .  .
"""
FOOD_EVERYWHERE_ALLOWED = """
    .  *  *  *  *
    A  a  *  *  *
    .  a  *~ *  *
    b* b* B* *  *
    *  *  *  *  *
"""


@pytest.mark.parametrize("ruleset", ["standard", "wrapped"])
def test_minimum_food_goes_on_every_free_cell_not_next_to_a_live_head_computed_without_wrapping(
        ruleset: str) -> None:
    # Hazards and an eliminated snake's body do not block food; the head's wrapped neighbour (4, 3) gets food too.
    dead = {"b": ("out-of-health", "", 2)}
    before = board(FOOD_ROOM, eliminated=dead)
    settings = GameSettings(width=5, height=5, ruleset=ruleset, map="standard", food_spawn_chance=0,
                            minimum_food=25)
    state, ids = board_from_json(before, turn=3, wrapped=settings.rules.wrapped, rng_seed=9)
    games = Games.from_state(settings, state)
    games.finish_turn()
    after = board_to_json(games.state, 5, 5, ids)
    assert_board(after, FOOD_EVERYWHERE_ALLOWED, eliminated=dead)
    assert after["food"][0] == {"x": 4, "y": 4}, "existing food keeps its place at the front of the list"
    assert int(games.state.turn[0]) == 4


def test_the_empty_map_spawns_no_food_even_below_the_minimum() -> None:
    before = board(FOOD_ROOM, eliminated={"b": ("out-of-health", "", 2)})
    settings = GameSettings(width=5, height=5, map="empty", food_spawn_chance=100, minimum_food=25)
    state, ids = board_from_json(before, rng_seed=9)
    games = Games.from_state(settings, state)
    games.finish_turn()
    assert board_to_json(games.state, 5, 5, ids)["food"] == before["food"]


@pytest.mark.parametrize(("chance", "least", "most"), [(0, 0, 0), (100, 25, 30)])
def test_at_or_above_the_minimum_at_most_one_food_spawns_per_turn_with_the_spawn_chance(
        chance: int, least: int, most: int) -> None:
    before = board(TWO_SNAKES_7X7, stacked={"a": 3, "b": 3})
    settings = GameSettings(width=7, height=7, map="standard", food_spawn_chance=chance, minimum_food=0)
    state, ids = board_from_json(before, rng_seed=13)
    games = Games.from_state(settings, state)
    counts = []
    for _ in range(30):
        games.finish_turn()
        counts.append(int(games.state.food_count[0]))
    steps = np.diff([0] + counts)
    assert set(steps.tolist()) <= {0, 1}
    assert least <= counts[-1] <= most


# --------------------------------------------------------------------------------- map post-update: sinkholes

RING_0 = """
    .......
    .......
    .......
    ...~...
    .......
    .......
    .......
"""
RING_1 = """
    .......
    .......
    ...~...
    ..~~~..
    ...~...
    .......
    .......
"""
RING_2 = """
    .......
    ..~~~..
    .~~~~~.
    .~~~~~.
    .~~~~~.
    ..~~~..
    .......
"""
NO_HAZARDS = TWO_SNAKES_7X7.replace("A", ".").replace("B", ".")


@pytest.mark.parametrize(("turn", "added"), [
    pytest.param(turn, added, id=f"after turn {turn}")
    for turn, added in [(0, NO_HAZARDS), (1, RING_0), (2, NO_HAZARDS), (10, NO_HAZARDS), (11, RING_1),
                        (12, NO_HAZARDS), (21, RING_2), (22, NO_HAZARDS), (31, NO_HAZARDS)]
])
@pytest.mark.parametrize("shrink_every", [10, 0], ids=["every 10", "0 means every 10"])
def test_sinkholes_add_the_centre_after_turn_1_then_a_ring_every_n_turns_while_turn_is_at_most_n_times_3_on_7x7(
        turn: int, added: str, shrink_every: int) -> None:
    before = board(TWO_SNAKES_7X7.replace("A", "."), stacked={"b": 3}, health={"b": 50})
    settings = GameSettings(width=7, height=7, map="sinkholes", food_spawn_chance=0, minimum_food=0,
                            shrink_every_n_turns=shrink_every)
    state, ids = board_from_json(before, turn=turn)
    games = Games.from_state(settings, state)
    games.finish_turn()
    hazards = sorted((p["x"], p["y"]) for p in board_to_json(games.state, 7, 7, ids)["hazards"])
    assert hazards == sorted((p["x"], p["y"]) for p in board(added)["hazards"])
