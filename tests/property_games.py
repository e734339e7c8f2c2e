"""The random games the engine's property tests play (test_properties.py, test_batch_properties.py): hypothesis
strategies for settings and scenarios (``Case``), the move policy (mostly safe moves, sometimes random ones
and invalid move strings), and ``play``, which yields the snapshots around every step (``Step``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from battlesnake_gym.engine import RULESETS, Games, GameSettings, GameState, board_to_json
from battlesnake_gym.engine.state import copy_state

MAPS_UNDER_TEST = ("standard", "empty", "royale", "sinkholes")
BOARD_SIZES = ((7, 7), (11, 11), (19, 19), (5, 5), (3, 3), (7, 11), (11, 7), (9, 5), (13, 8))
#: (dx, dy) of each move code: 0 up, 1 down, 2 left, 3 right.
DIRECTIONS = ((0, 1), (0, -1), (-1, 0), (1, 0))
INVALID_MOVE_CODE = 4
NO_MOVE_CODE = -1
#: Every ruleset on every map.
RULESET_MAP_PAIRS = tuple((ruleset, game_map) for ruleset in sorted(RULESETS) for game_map in MAPS_UNDER_TEST)

PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Case(NamedTuple):
    """One drawn scenario: the games' settings, their seeds and how their snakes choose moves."""

    game_settings: GameSettings
    num_snakes: int
    seeds: tuple[int, ...]  # one per game of the batch
    move_seed: int  # seeds the move policy's own generator
    care: float  # probability that a snake picks a safe move rather than a random one (invalid included)
    turns: int  # at most this many steps


class Step(NamedTuple):
    """Snapshots around one call of ``Games.step``."""

    before: GameState
    moves: np.ndarray  # (B, S) int8
    stepped: np.ndarray  # (B,) bool — the mask passed to step
    finished: np.ndarray  # (B,) bool — Games.finished() before the step
    over: np.ndarray  # (B,) bool — what step returned
    pipeline: GameState  # after the ruleset's stages (step(post_update=False))
    after: GameState  # after the map's post-update and turn += 1


@st.composite
def game_settings(draw: st.DrawFn) -> GameSettings:
    ruleset, game_map = draw(st.sampled_from(RULESET_MAP_PAIRS))
    width, height = draw(st.sampled_from(BOARD_SIZES))
    royale = ruleset == "royale" or game_map == "royale"
    return GameSettings(
        width=width,
        height=height,
        ruleset=ruleset,
        map=game_map,
        food_spawn_chance=draw(st.integers(0, 100)),
        minimum_food=draw(st.integers(0, 5)),
        hazard_damage_per_turn=draw(st.integers(0, 100)),
        shrink_every_n_turns=draw(st.integers(1 if royale else 0, 12)),
    )


@st.composite
def cases(draw: st.DrawFn, max_games: int = 3, max_turns: int = 150) -> Case:
    game = draw(game_settings())
    most = game.max_snakes()
    num_snakes = draw(st.one_of(st.integers(1, min(4, most)), st.integers(1, most)))
    seeds = tuple(draw(st.lists(st.integers(0, 2**63 - 1), min_size=1, max_size=max_games)))
    return Case(
        game_settings=game,
        num_snakes=num_snakes,
        seeds=seeds,
        move_seed=draw(st.integers(0, 2**32 - 1)),
        care=draw(st.sampled_from((1.0, 0.98, 0.9, 0.6, 0.0))),
        turns=draw(st.integers(1, max_turns)),
    )


# ---------------------------------------------------------------- playing games


def live_cells(state: GameState, game: int, snake: int) -> list[tuple[int, int]]:
    return [(int(x), int(y)) for x, y in state.body[game, snake, : state.length[game, snake]]]


def choose_moves(state: GameState, game: int, game_settings: GameSettings, rng: np.random.Generator,
                 care: float) -> np.ndarray:
    """(S,) int8 moves for one game: -1 for eliminated snakes.

    With probability ``care`` a snake picks a move that stays on the board, off every body and, where it can, away
    from the other heads; otherwise any of the five codes (4 stands for an invalid move string).
    """
    width, height, wrapped = game_settings.width, game_settings.height, game_settings.rules.wrapped
    alive = np.flatnonzero(state.elim_cause[game] == 0)
    occupied = {cell for s in alive for cell in live_cells(state, game, s)[:-1]}
    heads = {int(s): (int(state.body[game, s, 0, 0]), int(state.body[game, s, 0, 1])) for s in alive}
    moves = np.full(state.num_snakes, NO_MOVE_CODE, np.int8)
    for s, (hx, hy) in heads.items():
        if rng.random() >= care:
            moves[s] = rng.integers(0, INVALID_MOVE_CODE + 1)
            continue
        near_heads = {(x + dx, y + dy) for o, (x, y) in heads.items() if o != s for dx, dy in DIRECTIONS}
        safe, calm = [], []
        for code, (dx, dy) in enumerate(DIRECTIONS):
            x, y = hx + dx, hy + dy
            if wrapped:
                x, y = x % width, y % height
            if 0 <= x < width and 0 <= y < height and (x, y) not in occupied:
                safe.append(code)
                if (x, y) not in near_heads:
                    calm.append(code)
        choices = calm or safe or [0, 1, 2, 3]
        moves[s] = choices[rng.integers(0, len(choices))]
    return moves


def batch_moves(games: Games, case: Case, rng: np.random.Generator) -> np.ndarray:
    return np.stack([choose_moves(games.state, b, case.game_settings, rng, case.care) for b in range(games.batch_size)])


def new_games(case: Case) -> Games:
    games = Games(case.game_settings, num_snakes=case.num_snakes, batch_size=len(case.seeds))
    games.reset(seeds=np.array(case.seeds, np.int64))
    return games


def play(case: Case) -> Iterator[Step]:
    """Step the case's games until all are over (each stepped once more after that) or ``case.turns`` steps."""
    games = new_games(case)
    rng = np.random.default_rng(case.move_seed)
    for _ in range(case.turns):
        finished = games.finished()
        stepped = rng.random(games.batch_size) < 0.9
        moves = batch_moves(games, case, rng)
        before = copy_state(games.state)
        over = games.step(moves, mask=stepped, post_update=False)
        pipeline = copy_state(games.state)
        games.finish_turn(mask=stepped)
        yield Step(before, moves, stepped, finished, over, pipeline, copy_state(games.state))
        if finished.all() and stepped.all():
            return


def board(state: GameState, game: int, game_settings: GameSettings) -> dict:
    """Game ``game`` as a JSON board, with its turn."""
    out = board_to_json(state, game_settings.width, game_settings.height, game=game)
    out["turn"] = int(state.turn[game])
    return out


def assert_same_game(state: GameState, game: int, other: GameState, other_game: int, game_settings: GameSettings,
                     label: str = "") -> None:
    """The live parts of two games are equal: the board, the turn and both random streams (stale slots may differ)."""
    assert board(state, game, game_settings) == board(other, other_game, game_settings), label
    assert state.rng[game] == other.rng[other_game], label
    assert state.royale_seed[game] == other.royale_seed[other_game], label


def changed_games(step: Step) -> Iterator[int]:
    """Games whose pipeline ran past the game-over stage on this step."""
    yield from np.flatnonzero(step.stepped & ~step.over)
