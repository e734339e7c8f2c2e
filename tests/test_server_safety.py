"""The safety layer of the arena server: which moves it refuses, keeps and prefers, its rollouts and their bounds.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from server_helpers import one_hot, picture_games

from battlesnake_gym.engine import DOWN, LEFT, RIGHT, UP, Games, GameSettings
from battlesnake_server.safety import RISKY, SAFE, SURE_DEATH, SafetyLayer, assess_moves, rollout_values

# ---------------------------------------------------------------- the safety layer


def test_the_layer_refuses_a_policy_move_into_the_wall() -> None:
    games = picture_games("""
        . . . .
        A a a .
        . . . .
    """)
    decision = SafetyLayer().choose(games, 0, one_hot(LEFT, 0.99))
    assert decision.rank[LEFT] == SURE_DEATH and decision.move in (UP, DOWN) and decision.reason == "safety"


def test_the_raw_policy_setting_plays_the_favourite_even_into_the_wall() -> None:
    games = picture_games("""
        . . . .
        A a a .
        . . . .
    """)
    assert SafetyLayer(enabled=False).choose(games, 0, one_hot(LEFT)).move == LEFT


def test_the_layer_avoids_a_head_to_head_with_a_longer_snake_when_a_safe_move_exists() -> None:
    games = picture_games("""
        . . . . .
        . . B b b
        . A . . b
        . a . . .
        . a . . .
    """)
    decision = SafetyLayer().choose(games, 0, one_hot(RIGHT))
    assert decision.rank[RIGHT] == RISKY and decision.rank[UP] == RISKY and decision.rank[LEFT] == SAFE
    assert decision.move == LEFT


def test_a_head_to_head_with_a_shorter_snake_is_not_a_risk() -> None:
    games = picture_games("""
        . . . . .
        . . B b .
        . A . . .
        . a . . .
        . a . . .
    """)
    assert SafetyLayer().choose(games, 0, one_hot(RIGHT)).move == RIGHT


def test_a_starving_snake_takes_the_food_and_nothing_else() -> None:
    games = picture_games("""
        . . . .
        . A * .
        . a . .
        . a . .
    """, health={"a": 1})
    decision = SafetyLayer().choose(games, 0, one_hot(UP))
    assert [decision.rank[d] for d in (UP, LEFT, RIGHT)] == [SURE_DEATH, SURE_DEATH, SAFE] and decision.move == RIGHT


def test_hazard_damage_that_would_end_the_snake_counts_as_sure_death_unless_food_cancels_it() -> None:
    games = picture_games("""
        . 2 . .
        ~ A *~ .
        . a . .
        . a . .
    """, health={"a": 20})
    rank = np.zeros(4, np.int64)
    space = np.zeros(4, np.int64)
    assess_moves(games.state, games.params, False, 0, 0, rank, space)
    assert rank[UP] == SURE_DEATH  # 20 - 1 - 2 * 14 <= 0
    assert rank[LEFT] == SAFE  # 20 - 1 - 14 = 5 left
    assert rank[RIGHT] == SAFE  # food on the hazard: no damage


def test_the_tail_of_a_snake_that_may_eat_this_turn_is_risky() -> None:
    games = picture_games("""
        . . . * .
        A b b B .
        a . . . .
        a . . . .
    """)
    rank = np.zeros(4, np.int64)
    space = np.zeros(4, np.int64)
    assess_moves(games.state, games.params, False, 0, 0, rank, space)
    assert rank[RIGHT] == RISKY  # b's tail stays if b eats the food next to its head


def test_a_pocket_smaller_than_the_snake_is_refused_even_against_a_strong_preference() -> None:
    # Left leads into a three-cell pocket walled by b's body, which stays longer than the pocket lasts; up is open.
    games = picture_games("""
        . . . . . . .
        b b b . . . .
        b . . . . . .
        b b B . . . .
        . . . A a a a
    """)
    decision = SafetyLayer().choose(games, 0, one_hot(LEFT, 0.95))
    assert decision.space[LEFT] == 3 and decision.space[UP] > 4
    assert decision.move == UP


def test_a_near_tie_in_the_policy_goes_to_the_move_with_more_room() -> None:
    # Left enters a closed 3x3 pocket (roomy enough for the 8-long snake), right the larger rest of the board.
    games = picture_games("""
        . . . . . . . . .
        c c c c c c c c c
        c c C a a a a a .
        . . . a . . . . .
        . . . a . . . . .
        . . . A . . . . .
    """, bodies={"c": [(2, 3), (1, 3), (0, 3)] + [(x, 4) for x in range(9)]})
    rank = np.zeros(4, np.int64)
    space = np.zeros(4, np.int64)
    assess_moves(games.state, games.params, False, 0, 0, rank, space)
    assert rank[LEFT] == rank[RIGHT] == SAFE and space[LEFT] == 9 and space[RIGHT] > 9
    near_tie = np.array([0.0, 0.0, 0.55, 0.45])  # left slightly preferred
    assert SafetyLayer(near_tie=0.15).choose(games, 0, near_tie).move == RIGHT
    assert SafetyLayer(near_tie=0.05).choose(games, 0, near_tie).move == LEFT


HAZARD_CORRIDOR = """
    . . . . . . .
    . . . . . . .
    . . . . . . .
    ~ ~ ~ ~ . . .
    . . . . A a a
"""


def test_rollouts_score_a_dead_end_walled_by_lethal_hazards_below_the_open_board() -> None:
    games = picture_games(HAZARD_CORRIDOR, damage=100)
    values, rollouts = rollout_values(games, 0, [UP, LEFT], deadline=float("inf"), depth=8, max_rollouts=16)
    assert rollouts == 16 and np.isnan(values[DOWN]) and np.isnan(values[RIGHT])
    assert values[UP] == 1.0 and values[LEFT] <= 0.75


def test_the_search_turns_the_snake_away_from_a_dead_end_the_one_step_checks_cannot_see() -> None:
    games = picture_games(HAZARD_CORRIDOR, damage=100)
    plain = SafetyLayer().choose(games, 0, one_hot(LEFT))
    assert plain.move == LEFT and plain.rank[LEFT] == SAFE  # roomy by the flood fill, which ignores hazards
    searched = SafetyLayer(search_ms=1000, max_rollouts=16).choose(games, 0, one_hot(LEFT))
    assert searched.move == UP and searched.reason == "search" and searched.rollouts == 16


def test_the_search_copies_a_huge_board_only_within_its_memory_bound() -> None:
    from battlesnake_server import safety

    games = Games(GameSettings(width=128, height=128), num_snakes=16, seed=0)
    per_copy = sum(a[:1].nbytes for a in games.state) * 2
    values, rollouts = rollout_values(games, 0, [UP, DOWN], deadline=float("inf"), depth=1, max_rollouts=8)
    assert rollouts == 8 and per_copy * 8 > safety.MAX_ROLLOUT_BYTES  # rounds were made smaller, not skipped
    huge = Games(GameSettings(width=128, height=128), num_snakes=16, seed=0)
    huge.state = huge.state._replace(body=np.zeros((1, 16, safety.MAX_ROLLOUT_BYTES // 64, 2), np.int16))
    assert rollout_values(huge, 0, [UP, DOWN], deadline=float("inf"))[1] == 0


def test_the_search_stops_at_the_deadline() -> None:
    games = picture_games(HAZARD_CORRIDOR, damage=100)

    values, rollouts = rollout_values(games, 0, [UP, LEFT], deadline=time.perf_counter() - 1.0)
    assert rollouts == 0 and np.isnan(values).all()


def test_when_every_move_is_fatal_the_policy_favourite_is_played() -> None:
    games = picture_games("""
        A b b
        a b B
        a b b
    """, bodies={"b": [(2, 1), (2, 2), (1, 2), (1, 1), (1, 0), (2, 0)]})
    decision = SafetyLayer().choose(games, 0, one_hot(RIGHT))
    assert decision.reason == "doomed" and decision.move == RIGHT


@pytest.mark.parametrize("kwargs", [{"near_tie": 1.5}, {"search_ms": -1}, {"search_depth": 0}, {"max_rollouts": 0}])
def test_bad_safety_settings_are_refused_by_name(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs)).split("_")[0]):
        SafetyLayer(**kwargs)
