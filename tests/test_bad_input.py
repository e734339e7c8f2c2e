"""Bad settings, moves and JSON boards are refused with a ValueError (RulesError) that names the field and the value.

Never an IndexError, KeyError, TypeError or OverflowError from numpy or a dict lookup: each case asserts the error
class and fragments of its message. The last part reads the official traces' boards back and forth through the JSON
boundary.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from battlesnake_gym.engine import (
    RULESETS,
    BoardError,
    Games,
    GameSettings,
    RulesError,
    api_board,
    board_from_json,
    board_to_json,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
EDGE_CASES = SHARED / "traces" / "edge_cases.jsonl"


def names(*fragments: str) -> str:
    """A ``match`` pattern: every fragment appears in the message, in this order."""
    return ".*".join(re.escape(f) for f in fragments)


def test_rules_errors_are_value_errors_and_board_errors_are_rules_errors() -> None:
    assert issubclass(RulesError, ValueError)
    assert issubclass(BoardError, RulesError)


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        pytest.param({"ruleset": "speedy"}, ("ruleset", "'speedy'"), id="unknown ruleset"),
        pytest.param({"ruleset": "Standard"}, ("ruleset", "'Standard'"), id="ruleset names are case-sensitive"),
        pytest.param({"ruleset": None}, ("ruleset", "None"), id="ruleset None"),
        pytest.param({"map": "arcade"}, ("map", "'arcade'"), id="unknown map"),
        pytest.param({"width": 2}, ("width", ">= 3", "2"), id="width smaller than allowed"),
        pytest.param({"height": 0}, ("height", ">= 3", "0"), id="height zero"),
        pytest.param({"width": 11.5}, ("width", "integer", "11.5"), id="fractional width"),
        pytest.param({"width": "11"}, ("width", "integer", "'11'"), id="width as a string"),
        pytest.param({"width": True}, ("width", "integer", "True"), id="width as a bool"),
        pytest.param({"height": 11.0}, ("height", "integer", "11.0"), id="height as a float"),
        pytest.param({"width": 1000}, ("width", "1000"), id="width larger than allowed"),
        pytest.param({"minimum_food": -1}, ("minimum_food", "-1"), id="negative minimum food"),
        pytest.param({"minimum_food": 122}, ("minimum_food", "122"), id="more minimum food than cells"),
        pytest.param({"hazard_damage_per_turn": -5}, ("hazard_damage_per_turn", "-5"), id="negative hazard damage"),
        pytest.param({"food_spawn_chance": 101}, ("food_spawn_chance", "101"), id="food chance above 100"),
        pytest.param({"food_spawn_chance": -1}, ("food_spawn_chance", "-1"), id="negative food chance"),
        pytest.param({"food_spawn_chance": 1.5}, ("food_spawn_chance", "1.5"), id="fractional food chance"),
        pytest.param({"shrink_every_n_turns": -1}, ("shrink_every_n_turns", "-1"), id="negative shrink interval"),
        pytest.param({"ruleset": "royale", "shrink_every_n_turns": 0}, ("shrink_every_n_turns", "royale", "0"),
                     id="royale ruleset that never shrinks"),
        pytest.param({"map": "royale", "shrink_every_n_turns": 0}, ("shrink_every_n_turns", "royale", "0"),
                     id="royale map that never shrinks"),
    ],
)
def test_bad_settings_are_refused_naming_the_field_and_the_value(changes: dict[str, Any],
                                                                 fragments: tuple[str, ...]) -> None:
    with pytest.raises(RulesError, match=names(*fragments)):
        GameSettings(**changes)


@pytest.mark.parametrize("changes", [{"ruleset": ["standard"]}, {"map": {"name": "standard"}}], ids=["list", "dict"])
def test_an_unhashable_ruleset_or_map_is_refused_as_unknown(changes: dict[str, Any]) -> None:
    with pytest.raises(RulesError, match=names(next(iter(changes)))):
        GameSettings(**changes)


@pytest.mark.parametrize("field", ["hazard_damage_per_turn", "shrink_every_n_turns"])
def test_a_setting_too_large_for_the_engine_is_refused_naming_the_field(field: str) -> None:
    with pytest.raises(RulesError, match=names(field, str(2**63))):
        Games(GameSettings(**{field: 2**63}), num_snakes=2)


def test_api_settings_of_the_wrong_type_are_refused() -> None:
    api = {"width": 11, "height": 11, "ruleset": "standard", "map": "standard"}
    with pytest.raises(RulesError, match=names("settings", "list")):
        GameSettings.from_api([], **api)
    with pytest.raises(RulesError, match=names("royale", "5")):
        GameSettings.from_api({"royale": 5}, **api)
    with pytest.raises(RulesError, match=names("minimum_food", "'1'")):
        GameSettings.from_api({"minimumFood": "1"}, **api)


# ---------------------------------------------------------------- games


@pytest.mark.parametrize(
    ("width", "height", "num_snakes"),
    [(11, 11, 17), (5, 5, 9), (7, 7, 25), (19, 19, 17), (3, 3, 5)],
)
def test_more_snakes_than_start_cells_are_refused(width: int, height: int, num_snakes: int) -> None:
    game = GameSettings(width=width, height=height)
    assert num_snakes == game.max_snakes() + 1
    with pytest.raises(RulesError, match=names(f"num_snakes={num_snakes}", f"{width}x{height}")):
        Games(game, num_snakes=num_snakes)


@pytest.mark.parametrize(("width", "height"), [(11, 11), (5, 5), (7, 7), (19, 19), (3, 3), (7, 11), (9, 5)])
def test_as_many_snakes_as_start_cells_can_be_set_up(width: int, height: int) -> None:
    game = GameSettings(width=width, height=height)
    games = Games(game, num_snakes=game.max_snakes(), batch_size=8, seed=1)
    assert (games.alive()).all()


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        pytest.param({"batch_size": 0}, ("batch_size", "0"), id="no games"),
        pytest.param({"batch_size": -3}, ("batch_size", "-3"), id="negative batch"),
        pytest.param({"batch_size": 2.0}, ("batch_size", "2.0"), id="float batch"),
        pytest.param({"num_snakes": 0}, ("num_snakes", "0"), id="no snakes"),
        pytest.param({"num_snakes": "4"}, ("num_snakes", "'4'"), id="snake count as a string"),
        pytest.param({"settings": {"width": 11}}, ("settings", "dict"), id="settings as a dict"),
    ],
)
def test_bad_game_arguments_are_refused_naming_the_argument(kwargs: dict[str, Any],
                                                            fragments: tuple[str, ...]) -> None:
    with pytest.raises(RulesError, match=names(*fragments)):
        Games(**kwargs)


@pytest.mark.parametrize("seed", ["abc", 1.5, -1], ids=["string", "float", "negative"])
def test_a_bad_seed_is_refused_naming_the_seed(seed: Any) -> None:
    with pytest.raises(RulesError, match=names("seed", str(seed))):
        Games(GameSettings(), num_snakes=2, seed=seed)


@pytest.mark.parametrize(
    ("mask", "seeds", "fragments"),
    [
        pytest.param(None, [1], ("seeds", "2"), id="too few seeds"),
        pytest.param(None, [1, 2, 3], ("seeds", "2"), id="too many seeds"),
        pytest.param(None, [1, -2], ("seeds", "-2"), id="negative seed"),
        pytest.param(None, [1.5, 2.5], ("seeds", "1.5"), id="float seeds"),
        pytest.param([1, 0], None, ("mask", "bool", "int"), id="integer mask"),
        pytest.param([True], None, ("mask", "(2,)", "(1,)"), id="mask of the wrong length"),
    ],
)
def test_bad_reset_arguments_are_refused_naming_the_argument(mask: Any, seeds: Any,
                                                             fragments: tuple[str, ...]) -> None:
    games = Games(GameSettings(), num_snakes=2, batch_size=2, seed=0)
    with pytest.raises(RulesError, match=names(*fragments)):
        games.reset(mask=np.asarray(mask) if mask is not None else None, seeds=seeds)


@pytest.mark.parametrize(
    ("moves", "fragments"),
    [
        pytest.param(np.zeros(4, np.int8), ("moves", "shape", "(2, 4)", "(4,)"), id="one game's moves for two"),
        pytest.param(np.zeros((2, 3), np.int8), ("moves", "shape", "(2, 4)", "(2, 3)"), id="a snake short"),
        pytest.param(np.zeros((4, 2), np.int8), ("moves", "shape", "(2, 4)", "(4, 2)"), id="transposed"),
        pytest.param(None, ("moves", "shape", "()"), id="None"),
        pytest.param(np.zeros((2, 4)), ("moves", "integers", "float64"), id="float moves"),
        pytest.param(np.zeros((2, 4), np.bool_), ("moves", "integers", "bool"), id="bool moves"),
        pytest.param(np.full((2, 4), "up"), ("moves", "integers", "<U2"), id="move strings"),
        pytest.param(np.full((2, 4), 7), ("move 7", "not an action"), id="move 7"),
        pytest.param(np.full((2, 4), -2), ("move -2", "not an action"), id="move -2"),
        pytest.param(np.full((2, 4), 2**40), (f"move {2**40}", "not an action"), id="huge move"),
    ],
)
def test_bad_moves_are_refused_naming_the_moves_and_the_value(moves: Any, fragments: tuple[str, ...]) -> None:
    games = Games(GameSettings(), num_snakes=4, batch_size=2, seed=0)
    before = games.copy()
    with pytest.raises(RulesError, match=names(*fragments)):
        games.step(moves)
    for a, b in zip(games.state, before.state):
        np.testing.assert_array_equal(a, b)


def test_a_live_snake_without_a_move_is_refused_and_nothing_moves() -> None:
    games = Games(GameSettings(), num_snakes=4, batch_size=2, seed=0)
    before = games.copy()
    moves = np.zeros((2, 4), np.int8)
    moves[1, 2] = -1
    with pytest.raises(RulesError, match=names("snake 2", "game 1", "no move", "-1")):
        games.step(moves)
    for a, b in zip(games.state, before.state):
        np.testing.assert_array_equal(a, b)


def test_an_eliminated_snake_may_go_without_a_move() -> None:
    state, _ = board_from_json(board(snake("a", [(1, 1), (1, 0)]), snake("b", [(5, 5)]),
                                     snake("c", [(8, 8)], dead=True)))
    games = Games.from_state(GameSettings(), state)
    games.step(np.array([[0, 0, -1]], np.int8))
    assert games.alive().tolist() == [[True, True, False]]


def test_step_named_refuses_moves_for_unknown_snake_ids() -> None:
    games = Games(GameSettings(), num_snakes=2, seed=0)
    with pytest.raises(RulesError, match=names("unknown snake ids", "'zz'")):
        games.step_named({"a": "up", "zz": "up"}, ["a", "b"])


def test_step_named_refuses_a_batch_of_more_than_one_game() -> None:
    games = Games(GameSettings(), num_snakes=2, batch_size=3, seed=0)
    with pytest.raises(RulesError, match=names("single game", "3")):
        games.step_named({"a": "up", "b": "up"}, ["a", "b"])


def test_step_named_names_the_snake_id_that_has_no_move() -> None:
    games = Games(GameSettings(), num_snakes=2, seed=0)
    with pytest.raises(RulesError, match=names("'b'", "no move")):
        games.step_named({"a": "up"}, ["a", "b"])


# ---------------------------------------------------------------- JSON boards


def point(x: Any, y: Any) -> dict[str, Any]:
    return {"x": x, "y": y}


def snake(sid: str, cells: list[tuple[int, int]], health: int = 90, dead: bool = False) -> dict[str, Any]:
    eliminated = {"cause": "out-of-health", "by": "", "turn": 3} if dead else None
    return {"id": sid, "health": health, "body": [point(x, y) for x, y in cells], "eliminated": eliminated}


def board(*snakes: dict[str, Any], width: int = 11, height: int = 11, food: list | None = None) -> dict[str, Any]:
    return {"width": width, "height": height, "food": food if food is not None else [point(5, 5)], "hazards": [],
            "snakes": list(snakes)}


def good_board() -> dict[str, Any]:
    """A legal trace-format board of two live snakes and one eliminated snake."""
    killer = snake("killer", [(3, 3), (3, 2), (3, 1)])
    victim = snake("victim", [(3, 3), (4, 3), (5, 3)], dead=True)
    victim["eliminated"] = {"cause": "head-collision", "by": "killer", "turn": 7}
    return board(killer, snake("other", [(8, 8), (8, 7), (8, 7)]), victim)


def with_change(path: tuple[Any, ...], value: Any, delete: bool = False) -> dict[str, Any]:
    """``good_board()`` with the value at ``path`` replaced (or deleted)."""
    out = good_board()
    target = out
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return out


def test_the_good_board_is_accepted() -> None:
    state, ids = board_from_json(good_board())
    assert ids == ["killer", "other", "victim"]
    assert board_to_json(state, 11, 11, ids) == good_board()


@pytest.mark.parametrize(
    ("path", "fragments"),
    [
        pytest.param(("width",), ("board", "'width'"), id="width"),
        pytest.param(("height",), ("board", "'height'"), id="height"),
        pytest.param(("food",), ("board", "'food'"), id="food"),
        pytest.param(("hazards",), ("board", "'hazards'"), id="hazards"),
        pytest.param(("snakes",), ("board", "'snakes'"), id="snakes"),
        pytest.param(("snakes", 1, "health"), ("board.snakes[1]", "'health'"), id="health"),
        pytest.param(("snakes", 1, "body"), ("board.snakes[1]", "'body'"), id="body"),
        pytest.param(("snakes", 1, "id"), ("board.snakes[1].id", "None"), id="id"),
        pytest.param(("snakes", 0, "body", 2, "x"), ("board.snakes[0].body[2]", "'x'"), id="segment x"),
        pytest.param(("food", 0, "y"), ("board.food[0]", "'y'"), id="food y"),
        pytest.param(("snakes", 2, "eliminated", "turn"), ("board.snakes[2].eliminated.turn", "None"),
                     id="elimination turn"),
        pytest.param(("snakes", 2, "eliminated", "cause"), ("board.snakes[2].eliminated.cause", "None"),
                     id="elimination cause"),
    ],
)
def test_a_board_missing_a_field_is_refused_naming_the_field(path: tuple[Any, ...],
                                                             fragments: tuple[str, ...]) -> None:
    with pytest.raises(BoardError, match=names(*fragments)):
        board_from_json(with_change(path, None, delete=True))


@pytest.mark.parametrize(
    ("path", "value", "fragments"),
    [
        pytest.param(("width",), "11", ("board.width", "integer", "'11'"), id="width as a string"),
        pytest.param(("height",), 11.0, ("board.height", "integer", "11.0"), id="height as a float"),
        pytest.param(("food",), {"x": 1, "y": 1}, ("board.food", "list"), id="food not a list"),
        pytest.param(("hazards",), None, ("board.hazards", "list", "None"), id="hazards null"),
        pytest.param(("snakes",), {}, ("board.snakes", "list", "{}"), id="snakes not a list"),
        pytest.param(("snakes",), [], ("board.snakes", "empty"), id="no snakes"),
        pytest.param(("snakes", 1), "other", ("board.snakes[1]", "object", "'other'"), id="snake a string"),
        pytest.param(("snakes", 1, "id"), 7, ("board.snakes[1].id", "string", "7"), id="id a number"),
        pytest.param(("snakes", 1, "id"), "", ("board.snakes[1].id", "string", "''"), id="empty id"),
        pytest.param(("snakes", 1, "body"), {"x": 8, "y": 8}, ("board.snakes[1].body", "list"),
                     id="body not a list"),
        pytest.param(("snakes", 1, "body"), [], ("board.snakes[1].body", "empty"), id="empty body"),
        pytest.param(("snakes", 1, "body", 0), [8, 8], ("board.snakes[1].body[0]", "point", "[8, 8]"),
                     id="segment a list"),
        pytest.param(("snakes", 1, "body", 0, "x"), "8", ("board.snakes[1].body[0].x", "integer", "'8'"),
                     id="x as a string"),
        pytest.param(("snakes", 1, "body", 0, "y"), 8.0, ("board.snakes[1].body[0].y", "integer", "8.0"),
                     id="y as a float"),
        pytest.param(("snakes", 1, "body", 0, "x"), True, ("board.snakes[1].body[0].x", "integer", "True"),
                     id="x as a bool"),
        pytest.param(("food", 0, "x"), None, ("board.food[0].x", "integer", "None"), id="food x null"),
        pytest.param(("snakes", 1, "health"), "100", ("board.snakes[1].health", "integer", "'100'"),
                     id="health as a string"),
        pytest.param(("snakes", 1, "health"), 101, ("board.snakes[1].health", "101"), id="health 101"),
        pytest.param(("snakes", 1, "health"), -1, ("board.snakes[1].health", "-1"), id="negative health"),
        pytest.param(("snakes", 1, "length"), 2, ("board.snakes[1].length", "2", "3"), id="length disagrees"),
        pytest.param(("snakes", 1, "length"), "3", ("board.snakes[1].length", "integer", "'3'"),
                     id="length a string"),
        pytest.param(("snakes", 1, "head"), point(8, 7), ("board.snakes[1].head", "'x': 8, 'y': 7", "(8, 8)"),
                     id="head is not body[0]"),
        pytest.param(("snakes", 1, "head"), "8,8", ("board.snakes[1].head", "point", "'8,8'"), id="head a string"),
        pytest.param(("snakes", 1, "id"), "killer", ("board.snakes[1].id", "'killer'", "two snakes"),
                     id="duplicate ids"),
        pytest.param(("snakes", 2, "eliminated"), "yes", ("board.snakes[2].eliminated", "'yes'"),
                     id="eliminated a string"),
        pytest.param(("snakes", 2, "eliminated", "cause"), "bitten", ("board.snakes[2].eliminated.cause", "'bitten'"),
                     id="unknown cause"),
        pytest.param(("snakes", 2, "eliminated", "cause"), "", ("board.snakes[2].eliminated.cause", "''"),
                     id="empty cause"),
        pytest.param(("snakes", 2, "eliminated", "by"), "nobody", ("board.snakes[2].eliminated.by", "'nobody'"),
                     id="by naming no snake"),
        pytest.param(("snakes", 2, "eliminated", "by"), 0, ("board.snakes[2].eliminated.by", "string", "0"),
                     id="by a number"),
        pytest.param(("snakes", 2, "eliminated", "turn"), "7", ("board.snakes[2].eliminated.turn", "integer", "'7'"),
                     id="turn a string"),
    ],
)
def test_a_board_with_a_wrong_value_is_refused_naming_the_field_and_the_value(
        path: tuple[Any, ...], value: Any, fragments: tuple[str, ...]) -> None:
    with pytest.raises(BoardError, match=names(*fragments)):
        board_from_json(with_change(path, value))


@pytest.mark.parametrize("cause", [["hazard"], {"name": "hazard"}], ids=["list", "dict"])
def test_an_unhashable_elimination_cause_is_refused_naming_the_field(cause: Any) -> None:
    with pytest.raises(BoardError, match=names("board.snakes[2].eliminated.cause")):
        board_from_json(with_change(("snakes", 2, "eliminated", "cause"), cause))


@pytest.mark.parametrize("where", ["turn argument", "eliminated.turn"])
def test_a_turn_too_large_for_the_engine_is_refused_naming_the_field(where: str) -> None:
    with pytest.raises(BoardError, match=names("turn", str(2**31))):
        if where == "turn argument":
            board_from_json(good_board(), turn=2**31)
        else:
            board_from_json(with_change(("snakes", 2, "eliminated", "turn"), 2**31))


@pytest.mark.parametrize(
    ("turn", "fragments"),
    [(-1, ("turn", "-1")), ("3", ("turn", "integer", "'3'")), (True, ("turn", "integer", "True"))],
)
def test_a_bad_turn_is_refused(turn: Any, fragments: tuple[str, ...]) -> None:
    with pytest.raises(BoardError, match=names(*fragments)):
        board_from_json(good_board(), turn=turn)


@pytest.mark.parametrize(
    ("width", "fragments"),
    [(2, ("board.width", "[3, 128]", "2")), (129, ("board.width", "[3, 128]", "129")),
     (True, ("board.width", "integer", "True"))],
)
def test_a_board_of_an_unplayable_size_is_refused(width: Any, fragments: tuple[str, ...]) -> None:
    with pytest.raises(RulesError, match=names(*fragments)):
        board_from_json(board(snake("a", [(0, 0)]), width=width, food=[]))


def test_a_board_of_an_unplayable_size_raises_a_board_error_naming_the_path() -> None:
    with pytest.raises(BoardError, match=names("board.width", "2")):
        board_from_json(board(snake("a", [(0, 0)]), width=2, food=[]))


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        pytest.param({"food": [point(11, 0)]}, ("board.food[0]", "(11, 0)", "off", "11x11"), id="food at x=11"),
        pytest.param({"food": [point(5, 5), point(0, -1)]}, ("board.food[1]", "(0, -1)", "off"), id="food at y=-1"),
        pytest.param({"hazards": [point(3, 11)]}, ("board.hazards[0]", "(3, 11)", "off"), id="hazard at y=11"),
        pytest.param({"snakes": [snake("a", [(10, 10), (11, 10)])]}, ("board.snakes[0].body[1]", "(11, 10)", "off"),
                     id="live tail off the board"),
        pytest.param({"snakes": [snake("a", [(-1, 0), (0, 0)])]}, ("board.snakes[0].body[0]", "(-1, 0)", "off"),
                     id="live head off the board"),
        pytest.param({"snakes": [snake("a", [(-2, 0), (-1, 0)], dead=True)]}, ("board.snakes[0].body[0]", "too far"),
                     id="eliminated snake two cells off the board"),
    ],
)
def test_points_off_the_board_are_refused_naming_the_point(change: dict[str, Any],
                                                           fragments: tuple[str, ...]) -> None:
    with pytest.raises(BoardError, match=names(*fragments)):
        board_from_json(board(snake("z", [(5, 7)])) | change)


def test_an_eliminated_snake_may_stick_out_of_the_board_by_one_cell() -> None:
    state, _ = board_from_json(board(snake("a", [(5, 5)]), snake("b", [(-1, 3), (0, 3), (1, 3)], dead=True)))
    assert state.body[0, 1, 0].tolist() == [-1, 3]


@pytest.mark.parametrize(
    "cells",
    [
        pytest.param([(1, 1), (3, 1)], id="gap of two cells"),
        pytest.param([(1, 1), (2, 2)], id="diagonal step"),
        pytest.param([(4, 4), (4, 5), (4, 7)], id="gap in the middle"),
        pytest.param([(0, 5), (10, 5), (9, 5)], id="wrap-adjacent across x"),
        pytest.param([(5, 10), (5, 0), (5, 1)], id="wrap-adjacent across y"),
    ],
)
def test_a_body_that_is_not_contiguous_is_refused_naming_the_segments(cells: list[tuple[int, int]]) -> None:
    j = next(j for j in range(1, len(cells)) if abs(cells[j][0] - cells[j - 1][0]) + abs(cells[j][1] - cells[j - 1][1])
             > 1)
    with pytest.raises(BoardError, match=names("board.snakes[0].body", "contiguous", f"body[{j}] = {cells[j]}")):
        board_from_json(board(snake("a", cells)))


@pytest.mark.parametrize(
    "cells",
    [
        pytest.param([(0, 5), (10, 5), (9, 5)], id="across x"),
        pytest.param([(5, 10), (5, 0), (5, 1)], id="across y"),
        pytest.param([(10, 10), (0, 10), (0, 0)], id="across both edges"),
    ],
)
def test_a_body_that_crosses_an_edge_is_contiguous_on_a_wrapped_board(cells: list[tuple[int, int]]) -> None:
    state, _ = board_from_json(board(snake("a", cells)), wrapped=True)
    assert state.length[0, 0] == len(cells)


@pytest.mark.parametrize("wrapped", [False, True])
def test_a_body_that_skips_a_cell_is_refused_even_on_a_wrapped_board(wrapped: bool) -> None:
    with pytest.raises(BoardError, match=names("contiguous")):
        board_from_json(board(snake("a", [(0, 5), (9, 5)])), wrapped=wrapped)


def test_a_board_error_leaves_the_input_board_unchanged() -> None:
    bad = with_change(("snakes", 2, "eliminated", "by"), "nobody")
    kept = copy.deepcopy(bad)
    with pytest.raises(BoardError):
        board_from_json(bad)
    assert bad == kept


# ---------------------------------------------------------------- round trips


def read_cases(path: Path, count: int) -> list[dict[str, Any]]:
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared traces live beside the repository)")
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in itertools.islice(lines, count)]


def test_trace_boards_survive_a_json_round_trip() -> None:
    cases = read_cases(EDGE_CASES, 50)
    assert len(cases) == 50
    for case in cases:
        before = case["before"]
        state, ids = board_from_json(before, turn=case["turn"], wrapped=RULESETS[case["ruleset"]].wrapped)
        assert board_to_json(state, before["width"], before["height"], ids) == before, case["case"]
        assert int(state.turn[0]) == case["turn"]


def test_an_api_request_board_reads_back_as_the_same_live_snakes() -> None:
    game = GameSettings()
    games = Games(game, num_snakes=4, seed=3)
    games.step(np.array([[0, 1, 2, 3]], np.int8))
    ids = ["a", "b", "c", "d"]
    request = api_board(games.state, game, ids)
    state, read_ids = board_from_json(request)
    assert read_ids == [s["id"] for s in request["snakes"]]
    again = api_board(state, game, read_ids)
    assert again == request
