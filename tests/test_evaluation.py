"""The evaluation harness: a policy against the bots in batches of 1v1 and 4-player games, with Wilson intervals.

Bots stand in as the policy under test (``BotPolicy``), so the harness can be checked against the bots' known order
(``tests/test_bots_strength.py``): safe beats random in every game, greedy beats safe in about 3 of 4.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from battlesnake_gym.engine import Games, GameSettings
from battlesnake_gym.evaluation import (
    DRAW,
    LOSS,
    WIN,
    BotPolicy,
    EvaluationReport,
    evaluate,
    policy_outcomes,
    wilson_interval,
)
from battlesnake_gym.observations import make_encoder


class RecordingPolicy(BotPolicy):
    """A bot as the policy that also records what the harness hands it, one entry per call."""

    def __init__(self, bot: str = "safe", seed: int = 0):
        super().__init__(bot, seed)
        self.calls: list[dict] = []

    def set_games(self, games: Games, rows: np.ndarray, slots: np.ndarray) -> None:
        super().set_games(games, rows, slots)
        self.calls.append({"rows": rows.copy(), "slots": slots.copy(), "turns": games.state.turn[rows].copy(),
                           "alive": games.alive()[rows, slots].copy()})

    def __call__(self, obs: np.ndarray, action_mask: np.ndarray) -> np.ndarray:
        self.calls[-1].update(obs_shape=obs.shape, obs_dtype=obs.dtype, mask_shape=action_mask.shape)
        return super().__call__(obs, action_mask)


def first_allowed_move(obs: np.ndarray, action_mask: np.ndarray) -> np.ndarray:
    """A trivial policy: the first move the mask allows (up when none is)."""
    return np.argmax(action_mask, axis=1)


# ---------------------------------------------------------------------------------------------------- statistics


# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Statistics in Medicine 17, table II
# (method 3, the score interval), plus symmetric cases worked by hand.
@pytest.mark.parametrize(("successes", "trials", "low", "high"), [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
    (0, 10, 0.0, 0.2775),
    (5, 10, 0.2366, 0.7634),
    (10, 10, 0.7225, 1.0),
    (50, 100, 0.4038, 0.5962),
])
def test_the_wilson_interval_matches_published_values(successes: int, trials: int, low: float, high: float) -> None:
    assert wilson_interval(successes, trials) == pytest.approx((low, high), abs=5e-5)


def test_the_wilson_interval_mirrors_between_successes_and_failures_and_holds_the_rate() -> None:
    for trials in (1, 7, 200):
        for successes in range(0, trials + 1, max(1, trials // 9)):
            low, high = wilson_interval(successes, trials)
            mirror_low, mirror_high = wilson_interval(trials - successes, trials)
            assert low == pytest.approx(1 - mirror_high) and high == pytest.approx(1 - mirror_low)
            assert 0.0 <= low <= successes / trials <= high <= 1.0


@pytest.mark.parametrize(("successes", "trials"), [(0, 0), (-1, 10), (11, 10)])
def test_the_wilson_interval_rejects_impossible_counts(successes: int, trials: int) -> None:
    with pytest.raises(ValueError, match=f"successes={successes}, trials={trials}"):
        wilson_interval(successes, trials)


# ---------------------------------------------------------------------------------------------------- outcomes

# (case, elimination turn of each snake slot (None: still in), the policy's slot, expected outcome)
OUTCOMES = [
    ("the only snake left wins", (None, 4), 0, WIN),
    ("out while the opponent is still in loses", (4, None), 0, LOSS),
    ("out on the same turn as the last opponent is a draw", (6, 6), 1, DRAW),
    ("two snakes still in (a game cut at max_turns) is a draw", (None, None), 1, DRAW),
    ("out first in a four-player game loses", (3, None, None, 5), 0, LOSS),
    ("out before the last two leave together loses", (3, 7, 7, 5), 0, LOSS),
    ("out together with the last opponent is a draw in four-player too", (3, 7, 7, 5), 2, DRAW),
    ("the last of four wins", (3, None, 9, 5), 1, WIN),
    ("still in with another at the cut is a draw, even with two out", (3, None, None, 5), 2, DRAW),
]


@pytest.mark.parametrize(("case", "out_turns", "seat", "expected"), OUTCOMES, ids=[c[0] for c in OUTCOMES])
def test_a_game_is_judged_from_who_is_left_and_when_the_others_left(case: str, out_turns: tuple, seat: int,
                                                                    expected: int) -> None:
    games = Games(GameSettings(), num_snakes=len(out_turns), batch_size=1, seed=0)
    for slot, turn in enumerate(out_turns):
        if turn is not None:
            games.state.elim_cause[0, slot] = 1
            games.state.elim_turn[0, slot] = turn
    assert policy_outcomes(games, np.array([seat]))[0] == expected


# ---------------------------------------------------------------------------------------------------- playing


def test_bots_as_the_policy_reproduce_the_tournament_order() -> None:
    safe_vs_random = evaluate(BotPolicy("safe"), opponents="random", games=100, modes="1v1")["1v1", "random"]
    random_vs_safe = evaluate(BotPolicy("random"), opponents="safe", games=100, modes="1v1")["1v1", "safe"]
    greedy_vs_safe = evaluate(BotPolicy("greedy"), opponents="safe", games=200, modes="1v1")["1v1", "safe"]
    assert safe_vs_random.win_rate > 0.9, safe_vs_random
    assert random_vs_safe.loss_rate > 0.9, random_vs_safe
    assert greedy_vs_safe.win_rate > 0.6 and greedy_vs_safe.win_interval[0] > greedy_vs_safe.parity, greedy_vs_safe


def test_in_1v1_the_policy_alternates_between_both_seats() -> None:
    policy = RecordingPolicy()
    result = evaluate(policy, opponents="safe", games=40, modes="1v1")["1v1", "safe"]
    first = policy.calls[0]
    assert np.array_equal(first["rows"], np.arange(40))
    assert np.array_equal(first["slots"], np.arange(40) % 2)
    assert set(np.concatenate([c["slots"] for c in policy.calls])) == {0, 1}
    assert result.seat_games == (20, 20) and sum(result.seat_wins) == result.wins


def test_a_pairing_plays_exactly_the_games_asked_for_and_starts_no_new_one() -> None:
    policy = RecordingPolicy("greedy")
    result = evaluate(policy, opponents="safe", games=7, modes="1v1")["1v1", "safe"]
    assert result.games == 7 and result.wins + result.draws + result.losses == 7
    assert result.seat_games == (4, 3)
    turns_seen: dict[int, list[int]] = {}
    for call in policy.calls:
        for row, turn in zip(call["rows"], call["turns"]):
            turns_seen.setdefault(int(row), []).append(int(turn))
    assert sorted(turns_seen) == list(range(7))
    for row, turns in turns_seen.items():  # every turn of one game, from 0, never a second game in the slot
        assert turns == list(range(len(turns))), row


def test_only_live_policy_snakes_are_fed_to_the_policy_in_one_batched_call() -> None:
    policy = RecordingPolicy("safe")
    evaluate(policy, opponents="greedy", games=12, modes="ffa4")
    assert policy.calls
    for call in policy.calls:
        n = len(call["rows"])
        assert call["alive"].all()
        assert call["obs_shape"] == (n, 10, 21, 21) and call["obs_dtype"] == np.uint8
        assert call["mask_shape"] == (n, 4)
    assert len(policy.calls[-1]["rows"]) < 12  # snakes that are out are not fed


def test_ffa4_plays_every_opponent_kind_with_the_seat_rotating_through_four_slots() -> None:
    report = evaluate(first_allowed_move, opponents=("random", "safe"), games=10, modes="ffa4")
    assert [(r.mode, r.opponent) for r in report.results] == [("ffa4", "random"), ("ffa4", "safe")]
    for result in report.results:
        assert result.games == 10 and result.wins + result.draws + result.losses == 10
        assert result.num_snakes == 4 and result.parity == 0.25
        assert result.seat_games == (3, 3, 2, 2)


def test_games_still_running_at_max_turns_are_draws() -> None:
    result = evaluate(BotPolicy("safe"), opponents="safe", games=20, modes=("1v1",), max_turns=3)["1v1", "safe"]
    assert (result.wins, result.draws, result.losses) == (0, 20, 0)
    assert result.mean_turns == 3.0 and result.draw_interval[0] > 0.8


def test_the_same_seed_gives_the_same_report_and_each_pairing_is_fixed_by_the_seed_alone() -> None:
    def run(opponents: tuple[str, ...], seed: int) -> EvaluationReport:
        return evaluate(BotPolicy("greedy", seed=1), opponents=opponents, games=30, seed=seed)

    first = run(("random", "safe"), seed=5)
    assert first.to_dict() == run(("random", "safe"), seed=5).to_dict()
    assert first["ffa4", "safe"] == run(("safe",), seed=5)["ffa4", "safe"]
    assert first.to_dict()["results"] != run(("random", "safe"), seed=6).to_dict()["results"]


def test_an_encoder_object_sets_what_the_policy_sees() -> None:
    policy = RecordingPolicy()
    report = evaluate(policy, opponents="safe", games=4, modes="1v1", encoder=make_encoder("egocentric", view=5))
    assert policy.calls[0]["obs_shape"] == (4, 10, 5, 5)
    assert report.encoder == "egocentric"


def test_the_report_is_json_and_a_readable_table() -> None:
    report = evaluate(first_allowed_move, opponents=("safe", "greedy"), games=6, modes=("1v1", "ffa4"),
                      settings={"width": 7, "height": 7})
    data = json.loads(json.dumps(report.to_dict()))
    assert data["settings"]["width"] == 7 and data["seed"] == 0 and data["max_turns"] == 1000
    assert [(r["mode"], r["opponent"]) for r in data["results"]] == [
        ("1v1", "safe"), ("1v1", "greedy"), ("ffa4", "safe"), ("ffa4", "greedy")]
    row = data["results"][0]
    assert row["wins"] + row["draws"] + row["losses"] == 6
    assert row["win_interval"][0] <= row["win_rate"] <= row["win_interval"][1]
    lines = report.table().splitlines()
    assert len(lines) == 2 + 4 and "win rate" in lines[1] and "parity" in lines[1]
    assert lines[2].split()[:3] == ["1v1", "safe", "6"] and "50%" in lines[2] and "25%" in lines[4]
    with pytest.raises(KeyError, match="ffa8"):
        report["ffa8", "safe"]


def test_200_games_against_safe_take_a_few_seconds_at_most() -> None:
    evaluate(first_allowed_move, opponents="safe", games=2, modes="1v1")  # load the compiled kernels
    start = time.perf_counter()
    result = evaluate(first_allowed_move, opponents="safe", games=200, modes="1v1")["1v1", "safe"]
    assert time.perf_counter() - start < 5.0
    assert result.games == 200


# ---------------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"opponents": ("safe", "sneaky")}, "unknown opponent 'sneaky'"),
    ({"opponents": ()}, "at least one"),
    ({"games": 0}, "games must be an integer >= 1, got 0"),
    ({"games": 2.5}, "games must be an integer >= 1, got 2.5"),
    ({"modes": ("1v1", "ffa8")}, "unknown mode 'ffa8'"),
    ({"max_turns": 0}, "max_turns must be an integer >= 1, got 0"),
    ({"seed": -1}, "seed must be a non-negative integer, got -1"),
    ({"encoder": "pixels"}, "unknown observation encoder 'pixels'"),
    ({"settings": {"width": 2}}, "width must be >= 3"),
])
def test_bad_evaluation_arguments_are_named_in_a_value_error(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate(first_allowed_move, **{"opponents": "safe", "games": 2, **kwargs})


@pytest.mark.parametrize(("policy", "message"), [
    (lambda obs, mask: np.zeros((len(obs), 1), np.int64), r"got shape \(2, 1\)"),
    (lambda obs, mask: np.zeros(len(obs) + 1, np.int64), r"got shape \(3,\)"),
    (lambda obs, mask: np.full(len(obs), 7), "returned action 7"),
    (lambda obs, mask: np.full(len(obs), -1), "returned action -1"),
    (lambda obs, mask: np.zeros(len(obs), np.float32), "integer actions, got dtype float32"),
    ("safe", "policy must be callable"),
])
def test_a_policy_answering_badly_is_named_in_a_value_error(policy, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate(policy, opponents="safe", games=2, modes="1v1")


def test_a_bot_policy_needs_the_boards_and_a_known_bot() -> None:
    with pytest.raises(ValueError, match="set_games"):
        BotPolicy("safe")(np.zeros((1, 10, 21, 21), np.uint8), np.ones((1, 4), np.uint8))
    with pytest.raises(ValueError, match="unknown bot 'sneaky'"):
        BotPolicy("sneaky")
