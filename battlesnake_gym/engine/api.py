"""Conversion between the engine's state and the Battlesnake API's JSON boards.

Two board shapes are read: the API's request board (``board`` of a ``/move`` request: live snakes only, with
``head``/``length``/``name``...) and the conformance traces' board (every snake, with ``eliminated``). Every problem
raises ``BoardError`` (a ``ValueError``) naming the field path and the value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .rulesets import MAX_BOARD, MIN_BOARD, GameSettings, RulesError
from .state import ALIVE, BY_NOBODY, CAUSE_CODES, CAUSE_NAMES, GameState, allocate

MAX_TURN = 2**31 - 2  # turns are int32 and the engine records turn + 1


class BoardError(RulesError):
    """A JSON board that does not describe a legal Battlesnake board."""


def _int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BoardError(f"{path} must be an integer, got {value!r}")
    return value


def _turn(value: Any, path: str) -> int:
    turn = _int(value, path)
    if not 0 <= turn < MAX_TURN:
        raise BoardError(f"{path} must be in [0, {MAX_TURN}), got {turn}")
    return turn


def _point(value: Any, path: str) -> tuple[int, int]:
    if not isinstance(value, Mapping):
        raise BoardError(f"{path} must be a point {{\"x\": int, \"y\": int}}, got {value!r}")
    for key in ("x", "y"):
        if key not in value:
            raise BoardError(f"{path} is missing {key!r}: {value!r}")
    return _int(value["x"], f"{path}.x"), _int(value["y"], f"{path}.y")


def _list(obj: Mapping, key: str, path: str) -> list:
    if key not in obj:
        raise BoardError(f"{path} is missing the field {key!r}")
    value = obj[key]
    if not isinstance(value, list):
        raise BoardError(f"{path}.{key} must be a list, got {value!r}")
    return value


def _on_board(p: tuple[int, int], width: int, height: int, path: str) -> None:
    if not (0 <= p[0] < width and 0 <= p[1] < height):
        raise BoardError(f"{path} = ({p[0]}, {p[1]}) is off the {width}x{height} board")


def _adjacent(a: tuple[int, int], b: tuple[int, int], width: int, height: int, wrapped: bool) -> bool:
    dx, dy = abs(a[0] - b[0]), abs(a[1] - b[1])
    if wrapped:
        dx, dy = min(dx, width - dx), min(dy, height - dy)
    return dx + dy <= 1


def board_from_json(board: Mapping, *, turn: int = 0, wrapped: bool = False,
                    rng_seed: int = 0) -> tuple[GameState, list[str]]:
    """A batch-of-one GameState and the snake ids, in board order, from a JSON board.

    Live snakes must lie on the board with contiguous bodies (consecutive segments equal or neighbours, across the
    edges when ``wrapped``). Eliminated snakes keep the body they died with, which may stick out of the board by
    one cell (a wall collision).
    """
    if not isinstance(board, Mapping):
        raise BoardError(f"board must be an object, got {type(board).__name__}")
    for key in ("width", "height"):
        if key not in board:
            raise BoardError(f"board is missing the field {key!r}")
    width, height = _int(board["width"], "board.width"), _int(board["height"], "board.height")
    for key, value in (("width", width), ("height", height)):
        if not MIN_BOARD <= value <= MAX_BOARD:
            raise BoardError(f"board.{key} must be in [{MIN_BOARD}, {MAX_BOARD}], got {value}")
    if not isinstance(wrapped, bool):
        raise BoardError(f"wrapped must be True or False, got {wrapped!r}")
    turn = _turn(turn, "turn")
    food = [_point(p, f"board.food[{i}]") for i, p in enumerate(_list(board, "food", "board"))]
    hazards = [_point(p, f"board.hazards[{i}]") for i, p in enumerate(_list(board, "hazards", "board"))]
    for i, p in enumerate(food):
        _on_board(p, width, height, f"board.food[{i}]")
    for i, p in enumerate(hazards):
        _on_board(p, width, height, f"board.hazards[{i}]")

    snakes = _list(board, "snakes", "board")
    if not snakes:
        raise BoardError("board.snakes is empty")
    ids: list[str] = []
    parsed = []
    for i, snake in enumerate(snakes):
        path = f"board.snakes[{i}]"
        if not isinstance(snake, Mapping):
            raise BoardError(f"{path} must be an object, got {snake!r}")
        sid = snake.get("id")
        if not isinstance(sid, str) or not sid:
            raise BoardError(f"{path}.id must be a non-empty string, got {sid!r}")
        if sid in ids:
            raise BoardError(f"{path}.id {sid!r} is used by two snakes")
        ids.append(sid)
        if "health" not in snake:
            raise BoardError(f"{path} is missing the field 'health'")
        health = _int(snake["health"], f"{path}.health")
        if not 0 <= health <= 100:
            raise BoardError(f"{path}.health must be in [0, 100], got {health}")
        body = [_point(p, f"{path}.body[{j}]") for j, p in enumerate(_list(snake, "body", path))]
        if not body:
            raise BoardError(f"{path}.body is empty")
        if "head" in snake and _point(snake["head"], f"{path}.head") != body[0]:
            raise BoardError(f"{path}.head {snake['head']!r} is not body[0] {body[0]}")
        if "length" in snake and _int(snake["length"], f"{path}.length") != len(body):
            raise BoardError(f"{path}.length {snake['length']!r} is not len(body) = {len(body)}")
        eliminated = snake.get("eliminated")
        if eliminated is not None:
            if not isinstance(eliminated, Mapping):
                raise BoardError(f"{path}.eliminated must be null or an object, got {eliminated!r}")
            cause = eliminated.get("cause")
            if not isinstance(cause, str) or cause not in CAUSE_CODES:
                raise BoardError(f"{path}.eliminated.cause {cause!r} is not one of {sorted(CAUSE_CODES)}")
            by = eliminated.get("by", "")
            if not isinstance(by, str):
                raise BoardError(f"{path}.eliminated.by must be a string, got {by!r}")
            eliminated = (CAUSE_CODES[cause], by, _turn(eliminated.get("turn"), f"{path}.eliminated.turn"))
        for j, p in enumerate(body):
            if eliminated is None:
                _on_board(p, width, height, f"{path}.body[{j}]")
            elif not (-1 <= p[0] <= width and -1 <= p[1] <= height):
                raise BoardError(f"{path}.body[{j}] = {p} is too far off the {width}x{height} board")
            if j and not _adjacent(body[j - 1], p, width, height, wrapped):
                raise BoardError(f"{path}.body is not contiguous: body[{j - 1}] = {body[j - 1]}, body[{j}] = {p}")
        parsed.append((health, body, eliminated))

    cells = width * height
    state = allocate(1, len(parsed), body_capacity=max(len(b) for _, b, _ in parsed) + cells + 8,
                     food_capacity=len(food) + cells + 4, hazard_capacity=len(hazards) + 1)
    state.turn[0] = turn
    for s, (health, body, eliminated) in enumerate(parsed):
        state.body[0, s, : len(body)] = body
        state.length[0, s] = len(body)
        state.health[0, s] = health
        if eliminated is not None:
            cause, by, eturn = eliminated
            if by and by not in ids:
                raise BoardError(f"board.snakes[{s}].eliminated.by {by!r} names no snake on this board")
            state.elim_cause[0, s] = cause
            state.elim_by[0, s] = ids.index(by) if by else BY_NOBODY
            state.elim_turn[0, s] = eturn
    if food:
        state.food[0, : len(food)] = food
    state.food_count[0] = len(food)
    if hazards:
        state.hazards[0, : len(hazards)] = hazards
    state.hazard_count[0] = len(hazards)
    state.rng[0] = np.uint64(rng_seed)
    state.royale_seed[0] = np.uint64(rng_seed)
    return state, ids


def _points(arr: np.ndarray) -> list[dict[str, int]]:
    return [{"x": int(x), "y": int(y)} for x, y in arr]


def board_to_json(state: GameState, width: int, height: int, snake_ids: Sequence[str] | None = None,
                  game: int = 0) -> dict:
    """Game ``game`` as a trace-format board: every snake, with ``eliminated``."""
    ids = list(snake_ids) if snake_ids is not None else [str(s) for s in range(state.num_snakes)]
    snakes = []
    for s in range(state.num_snakes):
        cause = int(state.elim_cause[game, s])
        eliminated = None
        if cause != ALIVE:
            by = int(state.elim_by[game, s])
            eliminated = {"cause": CAUSE_NAMES[cause], "by": ids[by] if by != BY_NOBODY else "",
                          "turn": int(state.elim_turn[game, s])}
        snakes.append({
            "id": ids[s],
            "health": int(state.health[game, s]),
            "body": _points(state.body[game, s, : state.length[game, s]]),
            "eliminated": eliminated,
        })
    return {
        "width": width,
        "height": height,
        "food": _points(state.food[game, : state.food_count[game]]),
        "hazards": _points(state.hazards[game, : state.hazard_count[game]]),
        "snakes": snakes,
    }


def api_board(state: GameState, settings: GameSettings, snake_ids: Sequence[str], game: int = 0,
              names: Sequence[str] | None = None) -> dict:
    """Game ``game`` as the API's request board: live snakes only, with head, length, latency, shout."""
    board = board_to_json(state, settings.width, settings.height, snake_ids, game)
    live = []
    for s, snake in enumerate(board["snakes"]):
        if snake["eliminated"] is not None:
            continue
        live.append({
            "id": snake["id"],
            "name": names[s] if names is not None else snake["id"],
            "health": snake["health"],
            "body": snake["body"],
            "head": snake["body"][0],
            "length": len(snake["body"]),
            "latency": "0",
            "shout": "",
            "squad": "",
            "customizations": {"color": "#888888", "head": "default", "tail": "default"},
        })
    board["snakes"] = live
    return board
