"""What the encoder tests share (test_observations.py, test_legacy_grids.py): a known pictured board, boards
from JSON, and random games played by bots."""

from __future__ import annotations

from collections.abc import Sequence

from ascii_boards import board

from battlesnake_gym.bots import RandomBot, SafeBot
from battlesnake_gym.engine import Games, GameSettings, board_from_json

Point = tuple[int, int]

# A 5 x 4 board (non-square, so swapped axes show). Snakes in slot order a, b, c.
#   a: head (1, 2), length 4 with its tail stacked on (3, 2); health 90
#   b: head (2, 0), length 4 (as long as a); health 50
#   c: head (0, 3), length 2 (shorter); health 30
#   food on (2, 3) and (1, 0); one hazard on (0, 0), two stacked on (4, 2)
KNOWN = board("""
    C c * . .
    . A a a 2
    . . . b b
    ~ * B b .
""", health={"a": 90, "b": 50, "c": 30}, stacked={"a": 2})
A, B, C = 0, 1, 2


def games_from(board_json: dict, ruleset: str = "standard") -> Games:
    settings = GameSettings(width=board_json["width"], height=board_json["height"], ruleset=ruleset)
    state, _ = board_from_json(board_json, wrapped=settings.rules.wrapped)
    return Games.from_state(settings, state)


def snake(sid: str, body: Sequence[Point], health: int = 100, eliminated: dict | None = None) -> dict:
    return {"id": sid, "health": health, "body": [{"x": x, "y": y} for x, y in body], "eliminated": eliminated}


def random_games(ruleset: str, turns: int, batch_size: int = 6, size: int = 7, num_snakes: int = 4,
                 seed: int = 0) -> list[Games]:
    """Snapshots of a batch played by random (mostly dying) and safe bots, taken every few turns."""
    settings = GameSettings(width=size, height=size, ruleset=ruleset,
                            map="sinkholes" if ruleset == "standard" else "standard")
    games = Games(settings, num_snakes=num_snakes, batch_size=batch_size, seed=seed)
    safe, rand = SafeBot(seed), RandomBot(seed)
    snapshots = []
    for turn in range(turns):
        moves = safe(games) if turn % 3 else rand(games)
        games.step(moves)
        if turn % 4 == 0:
            snapshots.append(games.copy())
        games.reset(games.finished())
    return snapshots
