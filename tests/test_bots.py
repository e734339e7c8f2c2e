"""The bots the benchmark and the demo use: legal output, and the safe bot never takes an avoidable death."""

from __future__ import annotations

import numpy as np
import pytest

from battlesnake_gym.bots import RandomBot, SafeBot, make_bot
from battlesnake_gym.engine import Games, GameSettings, board_from_json

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


@pytest.mark.parametrize("ruleset", ["standard", "wrapped", "constrictor"])
def test_the_safe_bot_never_moves_into_a_wall_or_body_when_it_has_a_choice(ruleset: str) -> None:
    games = Games(GameSettings(ruleset=ruleset), num_snakes=4, batch_size=32, seed=2)
    bot = SafeBot(seed=3)
    checked = 0
    for _ in range(120):
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
    assert checked > 5000


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
