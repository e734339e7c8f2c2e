"""The bots: legal output, no avoidable death, and each heuristic doing what its description says on small boards."""

from __future__ import annotations

import numpy as np
import pytest

from battlesnake_gym import bots as bots_module
from battlesnake_gym.bots import BOTS, FloodBot, RandomBot, SafeBot, make_bot
from battlesnake_gym.engine import LEFT, RIGHT, RULESETS, UP, Games, GameSettings, board_from_json

DIRECTIONS = ((0, 1), (0, -1), (-1, 0), (1, 0))


def _nonfatal_moves(games: Games, b: int, s: int) -> set[int]:
    """Moves into a free cell: on the board (unless wrapped) and off every segment still there next turn."""
    st, settings = games.state, games.settings
    occupied = set()
    for o in range(games.num_snakes):
        if st.elim_cause[b, o]:
            continue
        body = [tuple(p) for p in st.body[b, o, : st.length[b, o]].tolist()]
        stays = body if len(body) >= 2 and body[-1] == body[-2] else body[:-1]
        occupied.update(stays)
    x, y = st.body[b, s, 0].tolist()
    moves = set()
    for d, (dx, dy) in enumerate(DIRECTIONS):
        nx, ny = x + dx, y + dy
        if settings.rules.wrapped:
            nx, ny = nx % settings.width, ny % settings.height
        if 0 <= nx < settings.width and 0 <= ny < settings.height and (nx, ny) not in occupied:
            moves.add(d)
    return moves


def _count_nonfatal_choices(bot, games: Games, turns: int) -> int:
    """Play ``turns`` turns; assert every move is non-fatal whenever a non-fatal move exists; count those checks."""
    checked = 0
    for _ in range(turns):
        moves = bot(games)
        for b in range(games.batch_size):
            for s in range(games.num_snakes):
                if games.state.elim_cause[b, s]:
                    assert moves[b, s] == -1
                    continue
                options = _nonfatal_moves(games, b, s)
                if options:
                    assert moves[b, s] in options, (b, s, options, moves[b, s])
                    checked += 1
        games.step(moves)
        games.reset(games.finished())
    return checked


@pytest.mark.parametrize("ruleset", ["standard", "wrapped", "constrictor"])
def test_the_safe_bot_never_moves_into_a_wall_or_body_when_it_has_a_choice(ruleset: str) -> None:
    games = Games(GameSettings(ruleset=ruleset), num_snakes=4, batch_size=32, seed=2)
    assert _count_nonfatal_choices(SafeBot(seed=3), games, turns=120) > 5000


def test_the_safe_bot_avoids_a_head_to_head_it_would_lose() -> None:
    def pt(x: int, y: int) -> dict:
        return {"x": x, "y": y}

    # a (length 3) heads right at (2, 3); the longer b's head at (4, 3) can also reach (3, 3).
    board = {"width": 7, "height": 7, "food": [], "hazards": [], "snakes": [
        {"id": "a", "health": 90, "body": [pt(2, 3), pt(1, 3), pt(0, 3)]},
        {"id": "b", "health": 90, "body": [pt(4, 3), pt(5, 3), pt(6, 3), pt(6, 2)]}]}
    state, _ = board_from_json(board)
    games = Games.from_state(GameSettings(width=7, height=7), state)
    for seed in range(20):
        move = SafeBot(seed)(games)[0, 0]
        assert move in (0, 1), move  # up or down: right risks a head-to-head a shorter snake loses


def test_bots_give_one_move_per_snake_and_none_for_eliminated_snakes() -> None:
    games = Games(GameSettings(), num_snakes=4, batch_size=8, seed=0)
    games.state.elim_cause[0, 1] = 3
    for bot in (RandomBot(0), SafeBot(0)):
        moves = bot(games)
        assert moves.shape == (8, 4) and moves.dtype == np.int8
        assert moves[0, 1] == -1
        live = moves[games.alive()]
        assert ((live >= 0) & (live <= 3)).all()


def test_an_unknown_bot_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="unknown bot 'clever'"):
        make_bot("clever")


# ---------------------------------------------------------------- greedy and flood

def _games(picture: str, *, ruleset: str = "standard", **facts) -> Games:
    """A batch of one game holding the board the picture shows."""
    from ascii_boards import board

    wrapped = RULESETS[ruleset].wrapped
    json_board = board(picture, wrapped=wrapped, **facts)
    state, _ = board_from_json(json_board, wrapped=wrapped)
    settings = GameSettings(width=json_board["width"], height=json_board["height"], ruleset=ruleset)
    return Games.from_state(settings, state)


def _moves_over_seeds(name: str, games: Games, snake: int = 0, seeds: int = 20, **kwargs) -> set[int]:
    return {int(BOTS[name](seed, **kwargs)(games)[0, snake]) for seed in range(seeds)}


@pytest.mark.parametrize("name", ["greedy", "flood"])
@pytest.mark.parametrize("ruleset", ["standard", "wrapped", "royale"])
def test_greedy_and_flood_never_move_into_a_wall_or_body_when_they_have_a_choice(name: str, ruleset: str) -> None:
    settings = GameSettings(ruleset=ruleset, map="royale" if ruleset == "royale" else "standard")
    games = Games(settings, num_snakes=4, batch_size=32, seed=5)
    assert _count_nonfatal_choices(make_bot(name, seed=6), games, turns=80) > 3000


def test_the_greedy_bot_takes_a_shortest_path_to_food_not_the_move_that_looks_closer() -> None:
    # Left brings a nearer by manhattan distance, but the wall of c (its tail stacked, so it stays) leaves
    # only the way round by the right: up starts a 9-step path, left an 11-step one.
    games = _games("""
        * . . . .
        c c c C .
        . . . . .
        . A a a .
        . . . . .
    """, stacked={"c": 2})
    assert _moves_over_seeds("greedy", games) == {UP}


def test_the_greedy_bot_reaches_food_across_the_edge_in_a_wrapped_game() -> None:
    picture = """
        . . . . .
        . . . . .
        A a a . *
        . . . . .
        . . . . .
    """
    assert _moves_over_seeds("greedy", _games(picture, ruleset="wrapped")) == {LEFT}
    assert LEFT not in _moves_over_seeds("greedy", _games(picture))


DEAD_END = """
    . . . . . .
    b b b b B .
    * . A . . .
    a a a . . .
"""


def test_the_flood_bot_keeps_out_of_a_pocket_smaller_than_itself_that_greedy_enters_for_food() -> None:
    # Left leads into 3 free cells (food included) for a snake of length 4; right into the open board.
    games = _games(DEAD_END, stacked={"b": 2})
    assert _moves_over_seeds("greedy", games) == {LEFT}
    assert _moves_over_seeds("flood", games) == {RIGHT}


CHASE = """
    . . . . . . .
    . . . . . . .
    . . . . . . .
    * . A . . B b
    . . a . . . b
    . . a a a a .
    . . . . . . .
"""


def test_the_flood_bot_attacks_a_shorter_snake_when_fed_and_eats_when_hungry() -> None:
    assert _moves_over_seeds("flood", _games(CHASE)) == {RIGHT}  # toward the head of b, 3 segments shorter
    assert _moves_over_seeds("flood", _games(CHASE, health={"a": 10})) == {LEFT}  # to the food
    # Not far enough ahead (a lead of 4 wanted): it eats even at full health.
    assert _moves_over_seeds("flood", _games(CHASE), lead=4) == {LEFT}


def test_the_flood_bot_prefers_a_cell_without_hazard() -> None:
    games = _games("""
        . . . . .
        . . ~ . .
        . ~ A . .
        . . a . .
        . . a . .
    """)
    assert _moves_over_seeds("flood", games) == {RIGHT}


@pytest.mark.parametrize("name", ["safe", "greedy", "flood"])
def test_a_bot_made_with_the_same_seed_plays_the_same_moves(name: str) -> None:
    runs = []
    for _ in range(2):
        games = Games(GameSettings(), num_snakes=4, batch_size=16, seed=9)
        bot = make_bot(name, seed=10)
        played = []
        for _ in range(60):
            moves = bot(games)
            played.append(moves)
            games.step(moves)
            games.reset(games.finished())
        runs.append(np.stack(played))
    assert np.array_equal(runs[0], runs[1])


def test_every_registered_bot_gives_legal_moves_and_is_described_in_the_module_docstring() -> None:
    games = Games(GameSettings(ruleset="wrapped"), num_snakes=4, batch_size=8, seed=0)
    games.state.elim_cause[0, 1] = 3
    for name in BOTS:
        assert f"``{name}``" in bots_module.__doc__
        moves = make_bot(name, 0)(games)
        assert moves.shape == (8, 4) and moves.dtype == np.int8
        assert moves[0, 1] == -1
        live = moves[games.alive()]
        assert ((live >= 0) & (live <= 3)).all()


def test_the_flood_bot_refuses_negative_thresholds() -> None:
    with pytest.raises(ValueError, match="hungry_health and lead must be >= 0"):
        FloodBot(0, lead=-1)
