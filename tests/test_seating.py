"""The one seating helper: who plays which snake in the env, the training pool, evaluation and the tournament."""

from __future__ import annotations

import numpy as np
import pytest

from battlesnake_gym.engine import Games, GameSettings, RulesError
from battlesnake_gym.seating import Seating


def test_a_player_against_bots_sits_in_snake_0_and_copies_of_a_bot_are_one_player() -> None:
    seating = Seating.against("learner", ["safe", "greedy", "safe"], num_snakes=4, games=2)
    assert seating.players == ("learner", "safe", "greedy")
    np.testing.assert_array_equal(seating.player, [[0, 1, 2, 1], [0, 1, 2, 1]])
    np.testing.assert_array_equal(seating.seat_of("learner"), [0, 0])


def test_with_rotation_the_player_takes_snake_g_mod_snakes_in_game_g() -> None:
    seating = Seating.against("policy", "flood", num_snakes=4, games=6, rotate=True)
    np.testing.assert_array_equal(seating.seat_of("policy"), [0, 1, 2, 3, 0, 1])
    assert (seating.seats("flood").sum(axis=1) == 3).all()


def test_the_pool_takes_every_snake_but_0_in_its_share_of_the_games_entries_taking_turns() -> None:
    seating = Seating.pool("learner", ["safe", "past", "safe"], 0.5, games=8, num_snakes=3)
    assert seating.players == ("learner", "safe", "past")
    names = np.array(seating.players, dtype=object)[seating.player]
    assert [list(row) for row in names[:4]] == [["learner", "safe", "safe"], ["learner", "past", "past"],
                                                ["learner", "safe", "safe"], ["learner", "safe", "safe"]]
    assert (names[4:] == "learner").all()  # self-play in the other half
    assert Seating.pool("learner", [], 1.0, games=4, num_snakes=2).seats("learner").all()  # no entries: self-play


def test_rotating_players_take_every_snake_in_turn() -> None:
    seating = Seating.rotating(3, games=3)
    np.testing.assert_array_equal(seating.player, [[0, 1, 2], [2, 0, 1], [1, 2, 0]])
    np.testing.assert_array_equal(seating.seat_of(0), [0, 1, 2])


def test_bots_move_only_their_own_seats_and_a_bot_without_seats_is_not_asked() -> None:
    games = Games(GameSettings(width=7, height=7), num_snakes=3, batch_size=4, seed=1)
    seating = Seating.against("learner", "safe", num_snakes=3, games=4)
    asked = []

    def bot(name: str, move: int):
        def decide(g: Games) -> np.ndarray:
            asked.append(name)
            return np.full((g.batch_size, g.num_snakes), move, np.int8)
        return decide

    moves = np.full((4, 3), 9, np.int64)
    seating.bot_moves(games, {"safe": bot("safe", 2), "learner": bot("learner", 1)}, moves)
    np.testing.assert_array_equal(moves, [[1, 2, 2]] * 4)
    self_play = Seating.pool("learner", ["safe"], 0.0, games=4, num_snakes=3)
    asked.clear()
    self_play.bot_moves(games, {"safe": bot("safe", 2)}, moves)
    assert asked == []


def test_bad_seatings_are_refused_naming_the_value() -> None:
    with pytest.raises(RulesError, match="opponents must name one bot or 3 bots"):
        Seating.against("learner", ["safe", "safe"], num_snakes=4)
    with pytest.raises(ValueError, match="share of the games must lie in \\[0, 1\\], got 1.5"):
        Seating.pool("learner", ["safe"], 1.5, games=4, num_snakes=2)
    with pytest.raises(ValueError, match="no player 'flood'"):
        Seating.against("learner", "safe", num_snakes=2).seats("flood")
    with pytest.raises(ValueError, match="does not hold exactly one snake"):
        Seating.against("learner", "safe", num_snakes=3).seat_of("safe")
    with pytest.raises(ValueError, match="games must be a positive integer, got 0"):
        Seating.rotating(2, games=0)
