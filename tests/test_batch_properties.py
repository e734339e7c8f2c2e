"""Properties of batches and seeds (hypothesis): a batch steps like its games stepped alone, resetting some games
with seeds equals starting them fresh, the same seed replays the same games and different seeds give different
starts. The games are played by ``property_games``."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from property_games import PROPERTY, Case, assert_same_game, batch_moves, board, cases, game_settings, new_games

from battlesnake_gym.engine import Games, GameSettings, board_to_json
from battlesnake_gym.engine.state import copy_state

# ---------------------------------------------------------------- batches and seeds


@PROPERTY
@given(cases(max_games=4))
def test_a_batch_of_games_steps_exactly_like_each_game_stepped_alone(case: Case) -> None:
    g = case.game_settings
    batch = new_games(case)
    alone = [new_games(case._replace(seeds=(seed,))) for seed in case.seeds]
    rng = np.random.default_rng(case.move_seed)
    for turn in range(case.turns + 1):
        for b, single in enumerate(alone):
            assert_same_game(batch.state, b, single.state, 0, g, f"game {b} differs after {turn} steps")
        finished = batch.finished()
        np.testing.assert_array_equal(finished, [single.finished()[0] for single in alone])
        if finished.all() or turn == case.turns:
            return
        stepped = ~finished & (rng.random(batch.batch_size) < 0.9)
        moves = batch_moves(batch, case, rng)
        over = batch.step(moves, mask=stepped)
        for b in np.flatnonzero(stepped):
            assert alone[b].step(moves[b : b + 1])[0] == over[b]


@PROPERTY
@given(cases(max_games=3))
def test_resetting_some_games_with_seeds_equals_starting_them_fresh(case: Case) -> None:
    g = case.game_settings
    games = new_games(case)
    rng = np.random.default_rng(case.move_seed)
    for _ in range(min(case.turns, 10)):
        if games.finished().all():
            break
        games.step(batch_moves(games, case, rng), mask=~games.finished())
    mask = rng.random(games.batch_size) < 0.5
    seeds = rng.integers(0, 2**62, size=int(mask.sum()))
    kept = copy_state(games.state)
    games.reset(mask=mask, seeds=seeds)
    for b, seed in zip(np.flatnonzero(mask), seeds):
        assert_same_game(games.state, b, new_games(case._replace(seeds=(int(seed),))).state, 0, g)
    for b in np.flatnonzero(~mask):
        assert_same_game(games.state, b, kept, b, g)


@PROPERTY
@given(cases(), st.integers(0, 2**63 - 1))
def test_the_same_seed_replays_the_same_games(case: Case, seed: int) -> None:
    first, second = (Games(case.game_settings, case.num_snakes, len(case.seeds), seed=seed) for _ in range(2))
    rng = np.random.default_rng(case.move_seed)
    for _ in range(case.turns):
        for a, b in zip(first.state, second.state):
            np.testing.assert_array_equal(a, b)
        if first.finished().all():
            break
        moves = batch_moves(first, case, rng)
        np.testing.assert_array_equal(first.step(moves), second.step(moves))


@settings(max_examples=30, deadline=None)
@given(game_settings(), st.data())
def test_different_seeds_give_different_starting_boards(game: GameSettings, data: st.DataObject) -> None:
    num_snakes = data.draw(st.integers(1, game.max_snakes()))
    first_seed = data.draw(st.integers(0, 2**32))
    starts = {
        json.dumps(board_to_json(Games(game, num_snakes, seed=seed).state, game.width, game.height))
        for seed in range(first_seed, first_seed + 12)
    }
    assert len(starts) > 1


def test_a_batch_seeded_once_holds_different_starting_boards() -> None:
    g = GameSettings()
    games = Games(g, num_snakes=4, batch_size=16, seed=0)
    starts = {json.dumps(board(games.state, b, g)) for b in range(games.batch_size)}
    assert len(starts) > 1
