"""Territory (who reaches each cell first) and the territory encoder's planes, on small pictured boards."""

from __future__ import annotations

import numpy as np
import pytest
from ascii_boards import board

from battlesnake_gym.bots import SafeBot
from battlesnake_gym.engine import Games, GameSettings, board_from_json
from battlesnake_gym.features import CONTESTED, contest, free_after
from battlesnake_gym.observations import (
    EGOCENTRIC_CHANNELS,
    LEAD_OFFSET,
    ROOM_OFFSET,
    TER_HEAD_REACH,
    TER_LENGTH_LEAD,
    TER_MOVE_ROOM,
    TER_MOVE_TERRITORY,
    TER_OTHER_TERRITORY,
    TER_OWN_TERRITORY,
    TERRITORY_CHANNELS,
    EgocentricEncoder,
    TerritoryEncoder,
    make_encoder,
)

A, B = 0, 1


def games_from(board_json: dict, ruleset: str = "standard") -> Games:
    settings = GameSettings(width=board_json["width"], height=board_json["height"], ruleset=ruleset)
    state, _ = board_from_json(board_json, wrapped=settings.rules.wrapped)
    return Games.from_state(settings, state)


def owners(games: Games) -> np.ndarray:
    """(H, W) owner of each cell of game 0 with every live head a source at turn 0, top row first."""
    s = games.settings
    state = games.state
    free_at = np.empty(s.width * s.height, np.int64)
    free_after(state, 0, s.width, s.height, free_at)
    live = np.flatnonzero(games.alive()[0])
    heads = (state.body[0, live, 0, 0].astype(np.int64) + state.body[0, live, 0, 1].astype(np.int64) * s.width)
    owner = np.empty(s.width * s.height, np.int64)
    contest(s.width, s.height, s.rules.wrapped, free_at, heads, np.zeros(len(live), np.int64), live.astype(np.int64),
            state.length[0, live].astype(np.int64), owner, np.empty_like(owner),
            np.empty(s.width * s.height + len(live), np.int64))
    return owner.reshape(s.height, s.width)[::-1]


C = CONTESTED  # a short name for the expected maps


def test_equal_snakes_split_the_board_and_share_the_middle():
    games = games_from(board("""
        . . . . .
        A a . b B
        . . . . .
    """))
    # a's tail at (1, 1) leaves after one turn, so a enters it on turn 1; the middle column is reached by both on
    # the same turn and belongs to nobody.
    assert owners(games).tolist() == [
        [A, A, C, B, B],
        [A, A, C, B, B],
        [A, A, C, B, B],
    ]


def test_the_longer_snake_takes_the_cells_both_reach_together():
    games = games_from(board("""
        . . . . .
        A a . b B
        . . . . .
    """, stacked={"a": 2}))
    # a is 3 long (stacked tail): its tail cell stays two turns, so b takes the middle cell (2, 1) first; the cells
    # both then reach on the same turn go to the longer a, its own tail cell (1, 1) included.
    assert owners(games).tolist() == [
        [A, A, A, B, B],
        [A, A, B, B, B],
        [A, A, A, B, B],
    ]


def test_a_cell_is_entered_only_once_its_segments_have_left():
    games = games_from(board("""
        A . . . .
        b b b b B
        . . . . .
    """))
    # b's wall opens from its tail (0, 1) one cell a turn; a follows it through (0, 1) on turn 1, (1, 1) on turn 2,
    # (2, 1) on turn 3 and (3, 1) on turn 4, while b, going round, holds the far side.
    assert owners(games).tolist() == [
        [A, A, A, B, B],
        [A, A, A, A, B],
        [A, A, B, B, B],
    ]


def test_the_territory_encoder_adds_its_planes_after_the_egocentric_ones():
    picture = board("""
        . . . . .
        A a . b B
        . . . . .
    """, stacked={"a": 2}, health={"a": 80})
    games = games_from(picture)
    encoder = TerritoryEncoder()
    obs = encoder.encode(games)  # (1, 2, 16, 5, 9)
    assert encoder.channels == TERRITORY_CHANNELS and obs.shape == (1, 2, 16, 5, 9)
    ego = EgocentricEncoder().encode(games)
    np.testing.assert_array_equal(obs[:, :, :len(EGOCENTRIC_CHANNELS)], ego)
    mine, theirs = obs[0, A], obs[0, B]

    def cells(plane: np.ndarray, head: tuple[int, int]) -> set[tuple[int, int]]:
        """Board cells marked on a full window plane (row 2 + dy, column 4 + dx) seen from ``head``."""
        return {(int(c) - 4 + head[0], int(r) - 2 + head[1]) for r, c in np.argwhere(plane)}

    # The owners of the previous test: a holds 8 cells (its head included), b 7.
    assert cells(mine[TER_OWN_TERRITORY], (0, 1)) == {(0, 2), (1, 2), (2, 2), (0, 1), (1, 1), (0, 0), (1, 0),
                                                      (2, 0)}
    assert cells(mine[TER_OTHER_TERRITORY], (0, 1)) == {(3, 2), (4, 2), (2, 1), (3, 1), (4, 1), (3, 0), (4, 0)}
    assert cells(theirs[TER_OWN_TERRITORY], (4, 1)) == cells(mine[TER_OTHER_TERRITORY], (0, 1))
    assert mine[TER_LENGTH_LEAD].min() == mine[TER_LENGTH_LEAD].max() == LEAD_OFFSET + 1  # 3 long against 2
    assert theirs[TER_LENGTH_LEAD, 0, 0] == LEAD_OFFSET - 1
    # a's moves, on the window cells next to its head (row 2 + dy, column 4 + dx): up (0, 2) and down (0, 0) are
    # open and reach every cell in time (15, against a's length 3: 128 + 12); left is off the board and right is its
    # own stacked tail: 0.
    room, territory = mine[TER_MOVE_ROOM], mine[TER_MOVE_TERRITORY]
    assert (room[3, 4], room[1, 4], room[2, 3], room[2, 5]) == (ROOM_OFFSET + 12, ROOM_OFFSET + 12, 0, 0)
    assert territory[2, 3] == territory[2, 5] == 0
    assert territory[3, 4] == territory[1, 4] > 0
    elsewhere = room.copy()
    elsewhere[[3, 1, 2, 2], [4, 4, 3, 5]] = 0
    assert not elsewhere.any()  # nothing but the four cells next to the head
    # b is shorter: the cells its head can enter are prey (1) for a; those of a's head are a threat (2) for b.
    assert cells(mine[TER_HEAD_REACH] == 1, (0, 1)) == {(4, 2), (4, 0), (3, 1)}
    assert not (mine[TER_HEAD_REACH] == 2).any()
    assert cells(theirs[TER_HEAD_REACH] == 2, (4, 1)) == {(0, 2), (0, 0), (1, 1)}


def test_eliminated_snakes_see_zeros_and_the_space_has_exact_highs():
    games = Games(GameSettings(), num_snakes=4, batch_size=8, seed=3)
    bot = SafeBot(0)
    encoder = make_encoder("territory")
    for _ in range(60):
        games.step(bot(games))
    obs = encoder.encode(games)
    dead = ~games.alive()
    assert dead.any()
    assert not obs[dead].any()
    high = encoder.space(games.settings, 4).high
    assert (obs <= high).all()
    assert high[TER_HEAD_REACH].max() == 2 and high[TER_LENGTH_LEAD].max() == 2 * LEAD_OFFSET


def test_the_territory_encoder_needs_the_cells_next_to_the_head_in_view():
    with pytest.raises(ValueError, match="at least 3"):
        TerritoryEncoder(view=1)
    assert TerritoryEncoder(view=5).shape(GameSettings(), 4) == (16, 5, 5)
