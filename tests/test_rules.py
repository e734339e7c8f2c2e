"""The official Battlesnake rules (``/work/shared/RULES.md``) as tables of small board pictures.

Each ``Case`` is one turn: a picture before, the moves, a picture after (see ``ascii_boards`` for the notation), and
the eliminations, health and game-over flag expected. A case is written once for the standard rules and runs under
every ruleset where the outcome is the same (``rulesets``); a mode that differs gets a clone of the case with the
differences patched in (``clone``), so one picture serves every mode. Every case also runs through both ways of
stepping the engine: one game with API move strings, and a batch of three copies with move codes.

This file stays over 500 lines because it is one table of rule cases, whose pictures and cases belong together
(the map's post-update is in test_map_stages.py).

Coordinates: (0, 0) is bottom-left, ``up`` is y + 1; the top row of a picture is y = height - 1.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pytest
from ascii_boards import Elimination, assert_board, board

from battlesnake_gym.engine import (
    NO_MOVE,
    RULESETS,
    Games,
    GameSettings,
    GameState,
    board_from_json,
    board_to_json,
    move_code,
)

ALL_MODES = tuple(RULESETS)  # standard solo royale constrictor wrapped wrapped_constrictor
#: Modes that play a turn like standard when at least 2 snakes are alive and no head crosses an edge.
LIKE_STANDARD = ("standard", "solo", "royale", "wrapped")
#: Modes that play a turn like standard when at least 2 snakes are alive (heads may leave the board).
UNWRAPPED = ("standard", "solo", "royale")
CONSTRICTORS = ("constrictor", "wrapped_constrictor")
SHRINK_EVERY = 25


@dataclass(frozen=True)
class Case:
    """One turn of the rules, drawn before and after."""

    name: str  # the behaviour, as a sentence
    before: str  # picture of the board before the turn
    moves: Mapping[str, str]  # snake id -> move string, as a snake's server would answer
    after: str  # picture after the ruleset's pipeline (before the map spawns anything)
    eliminated: Mapping[str, Elimination] = field(default_factory=dict)  # id -> (cause, by[, turn])
    health: Mapping[str, int] = field(default_factory=dict)  # id -> health after the turn
    game_over: bool = False  # then the board must come back unchanged
    rulesets: tuple[str, ...] = LIKE_STANDARD
    given: Mapping[str, Any] = field(default_factory=dict)  # facts of the before picture (ascii_boards.board)
    expect: Mapping[str, Any] = field(default_factory=dict)  # facts of the after picture
    turn: int = 0  # the board's turn before the step
    hazard_damage: int = 14
    bug: str = ""  # a known engine bug: the case is marked xfail(strict=True) with this reason


def clone(case: Case, rulesets: tuple[str, ...], **patch: Any) -> Case:
    """The same picture in other modes, with what differs there patched in."""
    return replace(case, rulesets=rulesets, **patch)


# ----------------------------------------------------------------------------------------------------- pictures

MOVES = """
    .a.....
    .accC..
    .A.....
    .....B.
    ..Dddbb
"""
MOVES_AFTER = """
    .......
    .a.ccC.
    .a...B.
    .A...b.
    .Ddd.b.
"""
STACKED_START = """
    .....
    ...B.
    .....
    .A...
    .....
"""
STACKED_START_AFTER = """
    .....
    ..Bb.
    .A...
    .a...
    .....
"""
EAT = """
    .....
    .*..B
    .A..b
    .a..b
    *a.*.
"""
EAT_AFTER = """
    ....B
    .A..b
    .a..b
    .a...
    *..*.
"""
EAT_TWICE = """
    .  .  .  .  .
    .  ** .  .  B
    .  A  .  .  b
    .  a  .  .  b
    .  a  .  .  .
"""
GROWN = """
    ....B
    .A..b
    .a..b
    .a...
    .....
"""
GROWN_AFTER = """
    ...Bb
    .aA.b
    .a...
    .a...
    .....
"""
NECK = """
    .....
    ....B
    .Aa.b
    ..a.b
    .....
"""
ONLY_B_MOVED_UP = """
    ....B
    ....b
    ....b
    .....
    .....
"""
CURL = """
    .....
    aa..B
    .aA.b
    .aa.b
    .....
"""
BODY = """
    .....
    a.b..
    aAb..
    ..B..
    .....
"""
BODY_AFTER = """
    .....
    .....
    ..b..
    ..b..
    ..B..
"""
TAIL_CHASE = """
    .....
    ....*
    aAbbB
    a....
    .....
"""
OWN_TAIL = """
    .....
    .....
    .aa.B
    .Aa.b
    ....b
"""
OWN_TAIL_AFTER = """
    .....
    ....B
    .Aa.b
    .aa.b
    .....
"""
HEAD_TO_HEAD = """
    .....
    .....
    aA.Bb
    a...b
    .....
"""
HEAD_TO_HEAD_ON_FOOD = """
    .....
    .....
    aA*Bb
    a...b
    .....
"""
B_WON_HEAD_TO_HEAD = """
    .....
    .....
    ..Bbb
    ....b
    .....
"""
THREE_WAY = """
    ..cc.
    ..C..
    aA.Bb
    a...b
    .....
"""
EMPTY_5X5 = """
    .....
    .....
    .....
    .....
    .....
"""
BODY_BEATS_HEAD = """
    .....
    ..C..
    aAcBb
    a.c.b
    .....
"""
SNAPSHOT = """
    .  .  .  .  .
    .  c  c~ C  .
    .  .  B  b  b
    .  a  A  .  .
    .  a  .  .  .
"""
WALL = """
    .....
    .....
    .....
    aaA..
    ..Bbb
"""
WALL_AFTER = """
    .....
    .....
    .....
    .aa..
    ..A..
"""
WALLS = """
    .A...
    .abbB
    .a.c.
    Dddc.
    ...C.
"""
EARLIER_DEAD = """
    ....C
    .....
    .....
    aaA..
    ..Bbb
"""
EARLIER_DEAD_AFTER = """
    ...Cc
    .....
    .....
    .aa..
    ..A..
"""
HAZARDS = """
    .  .  .  .  B
    .  .  ~  .  b
    .  3  A  *~ b
    .  .  a  .  .
    .  .  a  .  .
"""
HAZARD_UP = """
    .  .  .  B  b
    .  .  A~ .  b
    .  3  a  *~ .
    .  .  a  .  .
    .  .  .  .  .
"""
HAZARD_LEFT = """
    .  .  .  B  b
    .  .  ~  .  b
    .  A3 a  *~ .
    .  .  a  .  .
    .  .  .  .  .
"""
HAZARD_RIGHT = """
    .  .  .  B  b
    .  .  ~  .  b
    .  3  a  A~ .
    .  .  a  .  .
    .  .  .  .  .
"""
ONE_LEFT = """
    .....
    .A.~.
    .a.~.
    .aBbb
    .....
"""
ONE_SNAKE = """
    .....
    .A...
    .a...
    .a...
    .....
"""
ONE_SNAKE_AFTER = """
    .A...
    .a...
    .a...
    .....
    .....
"""
INVALID = """
    .......
    aaA....
    ......B
    .c..E.b
    .c....b
    .C.Ddd.
    F......
"""
INVALID_AFTER = """
    .......
    .aaA..B
    ....E.b
    ....e.b
    .c.....
    FcDdd..
    .C.....
"""
WRAP_NECKS = """
    ..bD..
    ccb..C
    ......
    ......
    A..daa
    ..Bd..
"""
WRAP_NECKS_AFTER = """
    ..bd..
    c..DCc
    ......
    ......
    aAB..a
    ..bd..
"""

# ---------------------------------------------------------------------------------------------------- the table

DEAD_EARLIER = ("out-of-health", "", 3)
INVALID_MOVE_STRINGS = ("Up", "UP", " up", "up ", "", "sideways", "LEFT", "null")

CASES: list[Case] = [
    # Movement: new body = [new head] + body[:-1].
    moving := Case(
        "snakes move one cell up, down, left or right and leave their tail cell",
        MOVES, {"a": "down", "b": "up", "c": "right", "d": "left"}, MOVES_AFTER,
        health={"a": 99, "b": 99, "c": 99, "d": 99}, turn=10,
    ),
    clone(moving, CONSTRICTORS, name="in constrictor every snake also grows by its tail and is set to 100 health",
          expect={"stacked": {"a": 2, "b": 2, "c": 2, "d": 2}}, health={"a": 100, "b": 100, "c": 100, "d": 100}),
    start := Case(
        "the first move from a stacked start leaves [new head, start, start] and the length stays 3",
        STACKED_START, {"a": "up", "b": "left"}, STACKED_START_AFTER,
        given={"stacked": {"a": 3, "b": 3}}, expect={"stacked": {"a": 2, "b": 2}}, health={"a": 99, "b": 99},
    ),
    clone(start, CONSTRICTORS, name="in constrictor the first move from a stacked start does not grow the snake",
          health={"a": 100, "b": 100}),
    Case(
        "a stacked tail stays stacked one turn less",
        GROWN, {"a": "right", "b": "left"}, GROWN_AFTER, given={"stacked": {"a": 2}}, health={"a": 99, "b": 99},
    ),
    # Health and feeding.
    eat := Case(
        "a snake that eats gets 100 health, grows by its tail and the food is removed; the others lose 1 health",
        EAT, {"a": "up", "b": "up"}, EAT_AFTER,
        given={"health": {"b": 50}}, expect={"stacked": {"a": 2}}, health={"a": 100, "b": 49},
    ),
    clone(eat, CONSTRICTORS, name="in constrictor an eating snake grows once, the others grow too and all food goes",
          after=EAT_AFTER.replace("*", "."), expect={"stacked": {"a": 2, "b": 2}}, health={"a": 100, "b": 100}),
    replace(eat, name="a snake on its last health point that reaches food survives with 100 health",
            given={"health": {"a": 1, "b": 50}}),
    replace(eat, name="a snake that reaches 0 health is eliminated out-of-health",
            given={"health": {"b": 1}}, health={"a": 100, "b": 0}, eliminated={"b": ("out-of-health", "")}),
    Case(
        "two food entries on one cell feed the snake twice",
        EAT_TWICE, {"a": "up", "b": "up"}, EAT_AFTER.replace("*", "."),
        expect={"stacked": {"a": 3}}, health={"a": 100, "b": 99},
    ),
    # Self-collision.
    Case(
        "a snake that turns back into its neck collides with itself",
        NECK, {"a": "right", "b": "up"}, ONLY_B_MOVED_UP,
        expect={"bodies": {"a": [(2, 2), (1, 2), (2, 2)]}},
        eliminated={"a": ("snake-self-collision", "a")}, health={"a": 99, "b": 99},
    ),
    Case(
        "a snake that runs into its own body is eliminated by itself",
        CURL, {"a": "left", "b": "up"}, ONLY_B_MOVED_UP,
        expect={"bodies": {"a": [(1, 2), (2, 2), (2, 1), (1, 1), (1, 2), (1, 3)]}},
        eliminated={"a": ("snake-self-collision", "a")}, health={"a": 99, "b": 99}, turn=3,
    ),
    Case(
        "a snake may follow its own tail into the cell the tail leaves",
        OWN_TAIL, {"a": "up", "b": "up"}, OWN_TAIL_AFTER,
        given={"bodies": {"a": [(1, 1), (2, 1), (2, 2), (1, 2)]}},
        expect={"bodies": {"a": [(1, 2), (1, 1), (2, 1), (2, 2)]}}, health={"a": 99, "b": 99},
    ),
    # Collisions with other snakes.
    Case(
        "a head on another snake's body is eliminated by that snake",
        BODY, {"a": "right", "b": "down"}, BODY_AFTER,
        expect={"bodies": {"a": [(2, 2), (1, 2), (0, 2)]}}, eliminated={"a": ("snake-collision", "b")},
        health={"a": 99, "b": 99},
    ),
    chase := Case(
        "a snake may move into the cell another snake's tail leaves",
        TAIL_CHASE, {"a": "right", "b": "down"}, """
            .....
            ....*
            aaAbb
            ....B
            .....
        """, health={"a": 99, "b": 99},
    ),
    replace(chase, name="the cell a tail leaves is free even when that snake eats this turn",
            moves={"a": "right", "b": "up"}, after="""
                .....
                ....B
                aaAbb
                .....
                .....
            """, expect={"stacked": {"b": 2}}, health={"a": 99, "b": 100}),
    replace(chase, name="a tail that just grew stays put, so chasing it is a collision",
            given={"stacked": {"b": 2}}, after="""
                .....
                ....*
                ..bbb
                ....B
                .....
            """, expect={"bodies": {"a": [(2, 2), (1, 2), (0, 2)]}}, eliminated={"a": ("snake-collision", "b")}),
    h2h := Case(
        "two heads of equal length on one cell eliminate each other",
        HEAD_TO_HEAD, {"a": "right", "b": "left"}, EMPTY_5X5,
        expect={"bodies": {"a": [(2, 2), (1, 2), (0, 2)], "b": [(2, 2), (3, 2), (4, 2)]}},
        eliminated={"a": ("head-collision", "b"), "b": ("head-collision", "a")}, health={"a": 99, "b": 99},
    ),
    replace(h2h, name="in a head-to-head the shorter snake is eliminated by the longer one",
            given={"stacked": {"b": 2}}, after=B_WON_HEAD_TO_HEAD, expect={},
            eliminated={"a": ("head-collision", "b")}),
    h2h_food := replace(
        h2h, name="two heads on one food both eat, then equal lengths eliminate each other",
        before=HEAD_TO_HEAD_ON_FOOD,
        expect={"bodies": {"a": [(2, 2), (1, 2), (0, 2), (0, 2)], "b": [(2, 2), (3, 2), (4, 2), (4, 2)]}},
        health={"a": 100, "b": 100},
    ),
    replace(h2h_food, name="two heads on one food both eat, then the shorter is eliminated by the longer",
            given={"stacked": {"b": 2}}, after=B_WON_HEAD_TO_HEAD, expect={"stacked": {"b": 2}},
            eliminated={"a": ("head-collision", "b")}),
    three := Case(
        "three heads of equal length on one cell all die; by is the first other snake in board order",
        THREE_WAY, {"a": "right", "b": "left", "c": "down"}, EMPTY_5X5,
        eliminated={"a": ("head-collision", "b"), "b": ("head-collision", "a"), "c": ("head-collision", "a")},
        health={"a": 99, "b": 99, "c": 99},
    ),
    replace(three, name="in a three-way head collision the longest snake survives and eliminates both others",
            given={"stacked": {"a": 2}}, after="""
                .....
                .....
                aaA..
                a....
                .....
            """, eliminated={"b": ("head-collision", "a"), "c": ("head-collision", "a")}),
    replace(three, name="a collision is credited to the longest snake first, not to the first in board order",
            given={"stacked": {"b": 2, "c": 3}}, after="""
                ..cc.
                ..c..
                ..C..
                .....
                .....
            """, expect={"stacked": {"c": 2}},
            eliminated={"a": ("head-collision", "c"), "b": ("head-collision", "c")}),
    replace(three, name="among equally long snakes the collision is credited in board order",
            given={"stacked": {"b": 2, "c": 2}},
            eliminated={"a": ("head-collision", "b"), "b": ("head-collision", "c"), "c": ("head-collision", "b")}),
    replace(three, name="board order, not the id, breaks the tie between equally long snakes",
            given={"stacked": {"b": 2, "c": 2}, "order": "acb"},
            eliminated={"a": ("head-collision", "c"), "b": ("head-collision", "c"), "c": ("head-collision", "b")}),
    Case(
        "a body hit beats a head-to-head: both heads on a third snake's tail are eliminated by that snake",
        BODY_BEATS_HEAD, {"a": "right", "b": "left", "c": "up"}, """
            ..C..
            ..c..
            ..c..
            .....
            .....
        """,
        given={"stacked": {"b": 2}},
        expect={"bodies": {"a": [(2, 2), (1, 2), (0, 2)], "b": [(2, 2), (3, 2), (4, 2), (4, 1)]}},
        eliminated={"a": ("snake-collision", "c"), "b": ("snake-collision", "c")}, health={"a": 99, "b": 99, "c": 99},
    ),
    snapshot := Case(
        "collisions are judged on one snapshot: a snake eliminated this turn still blocks others",
        SNAPSHOT, {"a": "up", "b": "up", "c": "up"}, """
            .  .  .  C  .
            .  .  c~ c  .
            .  .  .  .  .
            .  .  .  .  .
            .  .  .  .  .
        """,
        expect={"bodies": {"a": [(2, 2), (2, 1), (1, 1)], "b": [(2, 3), (2, 2), (3, 2)]}},
        eliminated={"a": ("snake-collision", "b"), "b": ("snake-collision", "c")},
        health={"a": 99, "b": 85, "c": 99},
    ),
    replace(snapshot, name="a snake eliminated by a hazard is no obstacle that turn",
            given={"health": {"b": 10}}, after="""
                .  .  .  C  .
                .  .  c~ c  .
                .  .  A  .  .
                .  a  a  .  .
                .  .  .  .  .
            """, expect={"bodies": {"b": [(2, 3), (2, 2), (3, 2)]}},
            eliminated={"b": ("hazard", "")}, health={"a": 99, "b": 0, "c": 99}),
    # Walls, and the order of the first elimination checks.
    wall := Case(
        "a snake whose head leaves the board is eliminated by the wall and is no obstacle that turn",
        WALL, {"a": "down", "b": "down"}, WALL_AFTER,
        expect={"bodies": {"b": [(2, -1), (2, 0), (3, 0)]}}, eliminated={"b": ("wall-collision", "")},
        health={"a": 99, "b": 99}, rulesets=UNWRAPPED,
    ),
    clone(wall, ("wrapped",), name="in wrapped the head re-enters on the opposite edge and still blocks others",
          after="""
              ..B..
              .....
              .....
              .....
              ..bb.
          """, expect={"wrapped": True, "bodies": {"a": [(2, 0), (2, 1), (1, 1)]}},
          eliminated={"a": ("snake-collision", "b")}),
    starved := replace(
        wall, name="out of health is checked before the wall, and a starved snake is no obstacle that turn",
        given={"health": {"b": 1}}, eliminated={"b": ("out-of-health", "")}, health={"a": 99, "b": 0}, turn=41,
    ),
    clone(starved, ("wrapped",), name="in wrapped a starved snake is no obstacle either",
          expect={"bodies": {"b": [(2, 4), (2, 0), (3, 0)]}}),
    walls := Case(
        "a head off any of the four edges is a wall collision",
        WALLS, {"a": "up", "b": "right", "c": "down", "d": "left"}, EMPTY_5X5,
        expect={"bodies": {"a": [(1, 5), (1, 4), (1, 3)], "b": [(5, 3), (4, 3), (3, 3)],
                           "c": [(3, -1), (3, 0), (3, 1)], "d": [(-1, 1), (0, 1), (1, 1)]}},
        eliminated={s: ("wall-collision", "") for s in "abcd"}, health={s: 99 for s in "abcd"},
        rulesets=UNWRAPPED, turn=7,
    ),
    wrapped_walls := clone(walls, ("wrapped",), name="in wrapped a head re-enters on the opposite edge", after="""
        .a.C.
        Ba.bb
        .....
        dd.cD
        .A.c.
    """, expect={"wrapped": True}, eliminated={}),
    clone(walls, ("constrictor",), name="in constrictor a snake eliminated this turn still grows once",
          expect={"bodies": {s: body + [body[-1]] for s, body in walls.expect["bodies"].items()}},
          health={s: 100 for s in "abcd"}),
    clone(wrapped_walls, ("wrapped_constrictor",), name="in wrapped constrictor a head crosses the edge and grows",
          expect={"wrapped": True, "stacked": {s: 2 for s in "abcd"}}, health={s: 100 for s in "abcd"}),
    dead := Case(
        "a snake eliminated on an earlier turn gets no move, stays as it was and is no obstacle",
        EARLIER_DEAD, {"a": "down", "c": "left"}, EARLIER_DEAD_AFTER,
        given={"eliminated": {"b": DEAD_EARLIER}, "health": {"b": 0}, "stacked": {"b": 2, "c": 3}},
        expect={"stacked": {"c": 2}, "bodies": {"b": [(2, 0), (3, 0), (4, 0), (4, 0)]}},
        eliminated={"b": DEAD_EARLIER}, health={"a": 99, "b": 0, "c": 99}, turn=5,
    ),
    clone(dead, CONSTRICTORS, name="in constrictor a snake eliminated earlier only gets its health set to 100",
          expect={"stacked": {"a": 2, "c": 2}, "bodies": {"b": [(2, 0), (3, 0), (4, 0), (4, 0)]}},
          health={"a": 100, "b": 100, "c": 100}),
    # Hazards.
    Case(
        "a hazard costs its damage on top of the usual 1 health",
        HAZARDS, {"a": "up", "b": "left"}, HAZARD_UP, health={"a": 85, "b": 99},
    ),
    Case(
        "a hazard of damage 0 costs only the usual 1 health",
        HAZARDS, {"a": "up", "b": "left"}, HAZARD_UP, given={"health": {"a": 50}}, health={"a": 49, "b": 99},
        hazard_damage=0,
    ),
    stacked_hazard := Case(
        "stacked hazards cost their damage once per entry",
        HAZARDS, {"a": "left", "b": "left"}, HAZARD_LEFT, health={"a": 100 - 1 - 3 * 14, "b": 99},
    ),
    replace(stacked_hazard, name="hazard damage clamps health at 0 and eliminates with cause hazard",
            given={"health": {"a": 20}}, health={"a": 0, "b": 99}, eliminated={"a": ("hazard", "")}),
    food_on_hazard := Case(
        "food on a hazard cancels its damage",
        HAZARDS, {"a": "right", "b": "left"}, HAZARD_RIGHT,
        expect={"stacked": {"a": 2}}, health={"a": 100, "b": 99},
    ),
    replace(food_on_hazard, name="food on a hazard saves a snake on its last health point",
            given={"health": {"a": 1}}),
    last_point := Case(
        "a snake on its last health point entering a hazard of damage 0 is eliminated by the hazard",
        HAZARDS, {"a": "up", "b": "left"}, HAZARD_UP,
        given={"health": {"a": 1}}, health={"a": 0, "b": 99}, eliminated={"a": ("hazard", "")}, hazard_damage=0,
    ),
    replace(last_point, name="a snake on its last health point entering a hazard is eliminated by the hazard",
            hazard_damage=14),
    # Game over, judged first on the board before the moves.
    one_left := Case(
        "the game is over before the moves once at most one snake is alive, and the board is left unchanged",
        ONE_LEFT, {"a": "up"}, ONE_LEFT, game_over=True, turn=10,
        given={"eliminated": {"b": ("head-collision", "a", 10)}},
        rulesets=tuple(m for m in ALL_MODES if m != "solo"),
    ),
    clone(one_left, ("solo",), name="in solo the game goes on while one snake is alive", game_over=False,
          after="""
              .A...
              .a.~.
              .a.~.
              ..Bbb
              .....
          """, eliminated={"b": ("head-collision", "a", 10)}, health={"a": 99}),
    replace(one_left, name="the game is over before the moves when no snake is alive, in every mode", moves={},
            given={"eliminated": {"a": ("out-of-health", "", 10), "b": ("head-collision", "a", 10)}},
            rulesets=ALL_MODES),
    lone := Case(
        "a one-snake game goes on while its snake is alive, in every mode",
        ONE_SNAKE, {"a": "up"}, ONE_SNAKE_AFTER, health={"a": 99},
    ),
    clone(lone, CONSTRICTORS, name="a one-snake constrictor game goes on and the snake grows",
          expect={"stacked": {"a": 2}}, health={"a": 100}),
    replace(lone, name="a one-snake game is over once its snake is gone, in every mode",
            after=ONE_SNAKE, given={"eliminated": {"a": ("wall-collision", "", 4)}}, moves={}, game_over=True,
            rulesets=ALL_MODES),
    # Invalid move strings continue the last move, read from neck to head.
    *[
        Case(
            f"the invalid move {bad!r} continues from neck to head, and up when the neck is stacked",
            INVALID, dict.fromkeys("abcdef", bad), INVALID_AFTER,
            given={"stacked": {"e": 3}}, expect={"stacked": {"e": 2}}, health=dict.fromkeys("abcdef", 99),
        )
        for bad in INVALID_MOVE_STRINGS
    ],
    *[
        Case(
            f"in wrapped the invalid move {bad!r} continues across the edge the snake just crossed",
            WRAP_NECKS, dict.fromkeys("abcd", bad), WRAP_NECKS_AFTER,
            given={"wrapped": True}, expect={"wrapped": True}, health=dict.fromkeys("abcd", 99),
            rulesets=("wrapped",),
        )
        for bad in ("sideways", "Up", "")
    ],
]


# ------------------------------------------------------------------------------------------------------ stepping


def settings_for(picture: Mapping[str, Any], ruleset: str, hazard_damage: int = 14) -> GameSettings:
    # Royale's own rebuild writes up to width*height hazards; only the royale map reserves room for them (see
    # test_the_royale_ruleset_shrinks_on_any_map), so royale cases run on the royale map.
    return GameSettings(width=picture["width"], height=picture["height"], ruleset=ruleset,
                        map="royale" if ruleset == "royale" else "empty", food_spawn_chance=0, minimum_food=0,
                        hazard_damage_per_turn=hazard_damage, shrink_every_n_turns=SHRINK_EVERY)


Stepper = Callable[[GameSettings, dict, Mapping[str, str], int], list[tuple[dict, bool]]]


def one_game(settings: GameSettings, before: dict, moves: Mapping[str, str], turn: int) -> list[tuple[dict, bool]]:
    """A batch of one, stepped with the API's move strings."""
    state, ids = board_from_json(before, turn=turn, wrapped=settings.rules.wrapped, rng_seed=11)
    games = Games.from_state(settings, state)
    over = games.step_named(dict(moves), ids, post_update=False)
    return [(board_to_json(games.state, settings.width, settings.height, ids), over)]


def batch_of_three(settings: GameSettings, before: dict, moves: Mapping[str, str],
                   turn: int) -> list[tuple[dict, bool]]:
    """Three copies of the board with different random streams, stepped together with move codes."""
    parts = [board_from_json(before, turn=turn, wrapped=settings.rules.wrapped, rng_seed=seed) for seed in (1, 2, 3)]
    ids = parts[0][1]
    state = GameState(*(np.concatenate(arrays) for arrays in zip(*(s for s, _ in parts))))
    games = Games.from_state(settings, state)
    codes = np.array([[move_code(moves[i]) if i in moves else NO_MOVE for i in ids]] * 3, np.int8)
    over = games.step(codes, post_update=False)
    return [(board_to_json(games.state, settings.width, settings.height, ids, game=g), bool(over[g])) for g in range(3)]


STEPPERS: dict[str, Stepper] = {"one game, move strings": one_game, "batch of three, move codes": batch_of_three}


def assert_royale_hazards(hazards: list[dict], width: int, height: int, sides_lost: int) -> None:
    """Hazards are every cell outside a box that lost ``sides_lost`` sides, once each, listed x-major then y."""
    cells = [(p["x"], p["y"]) for p in hazards]
    assert cells == sorted(set(cells)), f"royale hazards repeat a cell or are out of order: {cells}"
    inside = sorted(set(np.ndindex(width, height)) - set(cells))
    if not inside:
        assert sides_lost >= min(width, height), f"the box vanished after only {sides_lost} shrinks"
        return
    xs, ys = [x for x, _ in inside], [y for _, y in inside]
    min_x, max_x, min_y, max_y = min(xs), max(xs), min(ys), max(ys)
    assert len(inside) == (max_x - min_x + 1) * (max_y - min_y + 1), f"the cells left are not a box: {inside}"
    assert min_x + (width - 1 - max_x) + min_y + (height - 1 - max_y) == sides_lost, (
        f"box x {min_x}..{max_x}, y {min_y}..{max_y} did not lose {sides_lost} sides")


def case_params() -> list:
    params = []
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=case.bug)] if case.bug else []
        params += [pytest.param(case, ruleset, id=f"{ruleset}: {case.name}", marks=marks) for ruleset in case.rulesets]
    return params


def test_case_names_are_unique_per_mode() -> None:
    seen = [(ruleset, case.name) for case in CASES for ruleset in case.rulesets]
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize("stepper", STEPPERS.values(), ids=STEPPERS.keys())
@pytest.mark.parametrize(("case", "ruleset"), case_params())
def test_a_turn_plays_out_as_pictured(case: Case, ruleset: str, stepper: Stepper) -> None:
    before = board(case.before, **case.given)
    settings = settings_for(before, ruleset, case.hazard_damage)
    for after, over in stepper(settings, before, case.moves, case.turn):
        assert over == case.game_over
        if case.game_over:
            assert after == before
            continue
        assert [s["id"] for s in after["snakes"]] == [s["id"] for s in before["snakes"]], "board order changed"
        if not settings.rules.constrictor:
            left = iter(before["food"])
            assert all(food in left for food in after["food"]), "uneaten food must keep its order"
        royale = ruleset == "royale"
        if not royale:
            assert after["hazards"] == before["hazards"], "only royale changes hazards in the pipeline"
        assert_board(after, case.after, eliminated=case.eliminated, health=case.health,
                     elimination_turn=case.turn + 1, check_hazards=not royale, **case.expect)
        if royale:
            assert_royale_hazards(after["hazards"], settings.width, settings.height, (case.turn + 1) // SHRINK_EVERY)


# ------------------------------------------------------------------------------------------- moves that are errors


@pytest.mark.parametrize("ruleset", ALL_MODES)
def test_a_live_snake_without_a_move_is_an_error_and_changes_nothing(ruleset: str) -> None:
    before = board(HEAD_TO_HEAD)
    settings = settings_for(before, ruleset)
    state, ids = board_from_json(before, wrapped=settings.rules.wrapped)
    games = Games.from_state(settings, state)
    with pytest.raises(ValueError, match="no move"):
        games.step_named({"a": "right"}, ids, post_update=False)
    with pytest.raises(ValueError, match="no move"):
        games.step(np.array([[move_code("right"), NO_MOVE]], np.int8), post_update=False)
    assert board_to_json(games.state, settings.width, settings.height, ids) == before


def test_a_move_for_a_snake_that_is_not_on_the_board_is_an_error() -> None:
    before = board(HEAD_TO_HEAD)
    state, ids = board_from_json(before)
    games = Games.from_state(settings_for(before, "standard"), state)
    with pytest.raises(ValueError, match="unknown snake ids"):
        games.step_named({"a": "right", "b": "left", "z": "up"}, ids, post_update=False)


# -------------------------------------------------------------------------------------------------- game over


def test_the_last_survivor_is_asked_for_one_more_move_and_the_game_ends_a_turn_after_the_elimination() -> None:
    before = board(HEAD_TO_HEAD, stacked={"b": 2})
    settings = settings_for(before, "standard")
    state, ids = board_from_json(before, turn=7)
    games = Games.from_state(settings, state)
    assert games.step_named({"a": "right", "b": "left"}, ids, post_update=False) is False
    games.finish_turn()
    last = board_to_json(games.state, settings.width, settings.height, ids)
    assert_board(last, B_WON_HEAD_TO_HEAD, eliminated={"a": ("head-collision", "b", 8)})
    assert games.finished().tolist() == [True]
    assert games.step_named({"b": "up"}, ids, post_update=False) is True
    assert board_to_json(games.state, settings.width, settings.height, ids) == last
    assert int(games.state.turn[0]) == 8


# ------------------------------------------------------------------------------------------------------ royale

ROYALE_START = """
    .......
    .......
    .......
    .A...B.
    .......
    .......
    .......
"""


def royale_hazards_after_step(turn: int, shrink_every: int, seed: int) -> list[dict]:
    """The hazards the royale ruleset's pipeline builds in the step from ``turn`` (no map post-update)."""
    before = board(ROYALE_START, stacked={"a": 3, "b": 3})
    settings = replace(settings_for(before, "royale"), shrink_every_n_turns=shrink_every)
    state, ids = board_from_json(before, turn=turn, rng_seed=seed)
    games = Games.from_state(settings, state)
    assert games.step_named({"a": "up", "b": "down"}, ids, post_update=False) is False
    return board_to_json(games.state, settings.width, settings.height, ids)["hazards"]


@pytest.mark.parametrize("turn", [0, 3, 4, 8, 9, 14, 19, 24, 34])
def test_royale_hazards_after_the_step_from_turn_t_cover_all_but_a_box_that_lost_t_plus_1_over_n_sides(
        turn: int) -> None:
    for seed in range(1, 9):
        assert_royale_hazards(royale_hazards_after_step(turn, 5, seed), 7, 7, (turn + 1) // 5)


def test_royale_shrinks_follow_one_side_sequence_per_game_so_each_box_lies_inside_the_last() -> None:
    for seed in (3, 4):
        outside = [{(p["x"], p["y"]) for p in royale_hazards_after_step(turn, 2, seed)} for turn in range(0, 16)]
        for earlier, later in zip(outside, outside[1:]):
            assert earlier <= later


def test_royale_shrinks_are_not_capped_and_can_cover_the_whole_board() -> None:
    # 21 shrinks of a 7x7 box: one axis lost at least 11 sides, so no box is left.
    hazards = royale_hazards_after_step(20, 1, seed=5)
    assert [(p["x"], p["y"]) for p in hazards] == [(x, y) for x in range(7) for y in range(7)]


ROYALE_ON_OTHER_MAPS = """
import sys
from battlesnake_gym.engine import Games, GameSettings, board_from_json, board_to_json
board = {"width": 7, "height": 7, "food": [], "hazards": [], "snakes": [
    {"id": "a", "health": 100, "body": [{"x": 1, "y": 3}] * 3, "eliminated": None},
    {"id": "b", "health": 100, "body": [{"x": 5, "y": 3}] * 3, "eliminated": None}]}
settings = GameSettings(width=7, height=7, ruleset="royale", map=sys.argv[1], shrink_every_n_turns=1,
                        food_spawn_chance=0, minimum_food=0)
state, ids = board_from_json(board, turn=0, rng_seed=5)
games = Games.from_state(settings, state)
games.step_named({"a": "up", "b": "down"}, ids, post_update=False)
hazards = board_to_json(games.state, 7, 7, ids)["hazards"]
assert len(hazards) == 7, f"one side lost should make 7 hazards, got {len(hazards)}: {hazards}"
"""


@pytest.mark.slow
@pytest.mark.parametrize("game_map", ["standard", "empty"])
def test_the_royale_ruleset_shrinks_on_any_map(game_map: str) -> None:
    # In a subprocess: a regression would write past the end of a numpy array and may crash the interpreter.
    root = __file__.rsplit("/tests/", 1)[0]
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(ROYALE_ON_OTHER_MAPS), game_map], cwd=root,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
