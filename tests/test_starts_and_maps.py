"""Official starting boards for every supported size and snake count; maps, including a user-registered one."""

from __future__ import annotations

import numpy as np
import pytest

from battlesnake_gym.conformance import royale_hazard_problems, start_board_problems
from battlesnake_gym.engine import (
    RULESETS,
    GameMap,
    Games,
    GameSettings,
    RulesError,
    Ruleset,
    board_to_json,
    register_map,
)
from battlesnake_gym.engine.rulesets import MAPS

SIZES = [(7, 7), (9, 9), (11, 11), (13, 13), (19, 19), (25, 25), (5, 5), (9, 13), (13, 9), (11, 17), (7, 11)]


def _cases():
    for width, height in SIZES:
        most = GameSettings(width=width, height=height).max_snakes()
        for n in sorted({1, 2, 3, 4, 5, 8, 9, 12, 16, most} & set(range(1, min(most, 16) + 1))):
            yield width, height, n


@pytest.mark.parametrize(("width", "height", "num_snakes"), list(_cases()))
def test_every_generated_start_is_an_official_start(width: int, height: int, num_snakes: int) -> None:
    settings = GameSettings(width=width, height=height)
    games = Games(settings, num_snakes=num_snakes, batch_size=16, seed=width * 100 + num_snakes)
    for b in range(games.batch_size):
        board = board_to_json(games.state, width, height, game=b)
        assert start_board_problems(board, settings) == [], board


def test_constrictor_and_empty_map_starts_have_no_food() -> None:
    for settings in (GameSettings(ruleset="constrictor"), GameSettings(map="empty")):
        games = Games(settings, num_snakes=4, batch_size=8, seed=1)
        assert (games.state.food_count == 0).all()


def test_starts_vary_with_the_seed_and_repeat_with_it() -> None:
    def heads(seed: int) -> list:
        return Games(GameSettings(), num_snakes=4, batch_size=1, seed=seed).state.body[0, :, 0].tolist()

    assert heads(7) == heads(7)
    assert len({str(heads(seed)) for seed in range(12)}) > 1


def test_more_snakes_than_start_cells_is_refused_by_name() -> None:
    with pytest.raises(RulesError, match="num_snakes=17 is more than the 16 start cells of a 11x11 board"):
        Games(GameSettings(), num_snakes=17)
    with pytest.raises(RulesError, match="num_snakes=9 .* 5x5"):
        Games(GameSettings(width=5, height=5), num_snakes=9)


def test_sinkholes_stack_hazard_rings_from_the_centre() -> None:
    settings = GameSettings(width=11, height=11, map="sinkholes", shrink_every_n_turns=2, minimum_food=0,
                            food_spawn_chance=0, hazard_damage_per_turn=0)
    games = Games(settings, num_snakes=1, batch_size=1, seed=0)
    for _ in range(5):  # steps from turns 0..4: hazards appear after turns 1 and 3
        games.step(np.zeros((1, 1), np.int8) + 3 * (games.state.turn[0] % 2))
    hazards = [tuple(p) for p in games.state.hazards[0, : games.state.hazard_count[0]].tolist()]
    assert hazards[0] == (5, 5)
    assert len(hazards) == 1 + 5  # centre, then the 3x3 ring without its corners (centre stacked twice)
    assert hazards.count((5, 5)) == 2


def test_the_royale_map_closes_in_one_side_per_interval() -> None:
    settings = GameSettings(width=7, height=7, map="royale", ruleset="solo", shrink_every_n_turns=3,
                            minimum_food=0, food_spawn_chance=0, hazard_damage_per_turn=0)
    games = Games(settings, num_snakes=1, batch_size=1, seed=4)
    previous: list | None = None
    for turn in range(9):
        games.step(np.array([[turn % 2 * 2 + (turn // 2) % 2]], np.int8))  # wander near the start
        hazards = [tuple(p) for p in games.state.hazards[0, : games.state.hazard_count[0]].tolist()]
        assert royale_hazard_problems(hazards, 7, 7, turn + 1, 3, previous, turn) == []
        previous = hazards
    assert len(previous) > 0


def test_a_registered_hazard_map_adds_its_scheduled_cells() -> None:
    name = "test-corners"
    if name not in MAPS:
        register_map(GameMap(name, hazard_schedule=lambda w, h, s: {0: [(0, 0), (w - 1, h - 1)], 2: [(0, 0)]}))
    settings = GameSettings(width=7, height=7, map=name, minimum_food=0, food_spawn_chance=0)
    games = Games(settings, num_snakes=2, batch_size=3, seed=0)
    for _ in range(3):
        games.step(np.full((3, 2), 4, np.int8))  # invalid moves: everyone keeps going up
    counts = games.state.hazard_count.tolist()
    assert counts == [3, 3, 3]
    assert games.state.hazards[0, :3].tolist() == [[0, 0], [6, 6], [0, 0]]


def test_rulesets_are_the_official_stage_lists_and_what_a_mode_does_follows_from_its_stages() -> None:
    standard = ("game_over.standard", "movement.standard", "starvation.standard", "hazard_damage.standard",
                "feed_snakes.standard", "elimination.standard")
    constrictor = ("spawn_food.no_food", "modify_snakes.always_grow")
    wrapped = (standard[0], "movement.wrap_boundaries", *standard[2:])
    assert {name: r.stages for name, r in RULESETS.items()} == {
        "standard": standard,
        "solo": ("game_over.solo_snake", *standard[1:]),
        "royale": (*standard, "spawn_hazards.shrink_map"),
        "constrictor": (*standard, *constrictor),
        "wrapped": wrapped,
        "wrapped_constrictor": (*wrapped, *constrictor),
    }
    flags = {name: (r.wrapped, r.constrictor, r.shrinks_map) for name, r in RULESETS.items()}
    assert flags == {"standard": (False, False, False), "solo": (False, False, False), "royale": (False, False, True),
                     "constrictor": (False, True, False), "wrapped": (True, False, False),
                     "wrapped_constrictor": (True, True, False)}
    custom = Ruleset("wrapped-royale", (*wrapped, "spawn_hazards.shrink_map"))
    assert custom.wrapped and custom.shrinks_map and not custom.no_food and not custom.always_grow
    assert GameSettings(ruleset="royale").hazard_capacity() == 11 * 11
    with pytest.raises(RulesError, match="unknown stages"):
        Ruleset("old-names", ("gameover.standard", "movement.standard"))


def test_a_map_with_an_unknown_stage_or_off_board_hazard_is_refused() -> None:
    with pytest.raises(RulesError, match="unknown post-update stages"):
        register_map(GameMap("test-bad-stage", post_update=("spawn_food.everywhere",)))
    with pytest.raises(RulesError, match="already registered"):
        register_map(GameMap("standard"))
    off = GameMap("test-off-board", hazard_schedule=lambda w, h, s: {1: [(w, 0)]})
    with pytest.raises(RulesError, match=r"scheduled hazard \(7, 0\) is off the 7x7 board"):
        off.schedule_arrays(GameSettings(width=7, height=7))
