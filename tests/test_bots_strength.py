"""The bots' strength order, measured in batches of 1v1 games on 11x11 standard (seats alternating), and a 4-player
free-for-all.

Measured with these seeds: safe beats random in 200 of 200 games; greedy beats safe in 781 of 1000 (215 losses);
flood beats greedy in 1216 of 2000 (764 losses, 20 draws); flood beats safe in 388 of 400; against safe in 300
games, greedy wins 237 (wrapped) and 264 (royale), flood 230 and 298. In 400 four-player free-for-alls (random, safe,
greedy, flood; seats rotating) the wins are 0, 36, 115, 247. The thresholds leave 4 or more standard errors of
margin.
"""

from __future__ import annotations

import pytest

from battlesnake_gym.engine import GameSettings
from battlesnake_gym.tournament import decision_cost, play_free_for_all, play_match


def _win_rate(result: dict) -> float:
    return result["wins"] / result["games"]


def test_safe_beats_random_in_nearly_every_game() -> None:
    result = play_match("safe", "random", games=200, seed=11)
    assert _win_rate(result) > 0.9, result


def test_greedy_beats_safe_in_most_games() -> None:
    result = play_match("greedy", "safe", games=1000, seed=11)
    assert _win_rate(result) > 0.7, result


def test_flood_wins_more_games_than_greedy() -> None:
    result = play_match("flood", "greedy", games=2000, seed=11)
    assert _win_rate(result) > 0.52 and result["wins"] > 1.25 * result["losses"], result


def test_territory_beats_flood_in_most_games() -> None:
    # measured with this seed: 266 wins, 134 losses, no draw (66.5%; 4 standard errors above 57%)
    result = play_match("territory", "flood", games=400, seed=11)
    assert _win_rate(result) > 0.57, result


def test_flood_beats_safe_in_nearly_every_game() -> None:
    result = play_match("flood", "safe", games=400, seed=11)
    assert _win_rate(result) > 0.9, result


@pytest.mark.parametrize(("ruleset", "game_map"), [("wrapped", "standard"), ("royale", "royale")])
def test_flood_and_greedy_beat_safe_in_other_modes_too(ruleset: str, game_map: str) -> None:
    settings = GameSettings(ruleset=ruleset, map=game_map)
    for bot in ("greedy", "flood"):
        result = play_match(bot, "safe", games=300, seed=12, settings=settings)
        assert _win_rate(result) > 0.65, (bot, result)


def test_in_a_four_player_free_for_all_flood_wins_most_and_random_never() -> None:
    result = play_free_for_all(["random", "safe", "greedy", "flood"], games=400, seed=11)
    random_wins, safe_wins, greedy_wins, flood_wins = result["wins"]
    assert random_wins <= 4, result
    assert flood_wins > greedy_wins > safe_wins, result
    assert flood_wins > 0.4 * result["games"], result


def test_a_match_counts_every_game_once_and_is_fixed_by_its_seed() -> None:
    first = play_match("greedy", "greedy", games=100, seed=3)
    assert first == play_match("greedy", "greedy", games=100, seed=3)
    assert first["wins"] + first["losses"] + first["draws"] == 100
    # Same bot on both sides, seats alternating: neither side runs away with it.
    assert abs(first["wins"] - first["losses"]) < 30, first


def test_a_game_still_running_after_max_turns_is_a_draw() -> None:
    result = play_match("flood", "flood", games=20, seed=4, max_turns=5)
    assert result == {"wins": 0, "losses": 0, "draws": 20, "games": 20, "mean_turns": 5.0}


def test_a_bot_decision_on_a_big_batch_is_cheap() -> None:
    # 1024 games x 4 snakes on 11x11; measured ~1 ms (safe), ~4 ms (greedy), ~7 ms (flood) a call on one core.
    for name in ("safe", "greedy", "flood"):
        cost = decision_cost(name, calls=5)
        assert cost["seconds_per_call"] < 0.25, (name, cost)
