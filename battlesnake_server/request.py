"""Battlesnake API v1 request bodies read into the engine's types, with every problem a ``RequestError`` (HTTP 400).

The server never trusts a body: size limits come first (``Limits``), then the JSON, then each field, and the board
goes through the engine's own ``board_from_json`` (so the server judges boards exactly as the rules do). Only then is
anything allocated in proportion to the board.

Coordinates follow the API: (0, 0) is the bottom-left cell, ``up`` is y + 1.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from battlesnake_gym.engine import MAPS, RULESETS, BoardError, Games, GameSettings, RulesError, board_from_json
from battlesnake_gym.engine.rulesets import MAX_BOARD, MIN_BOARD

#: Longest error message sent back: a message quotes the offending value, which may be huge.
MAX_ERROR_CHARS = 400
#: Longest game or snake id kept (ids key the per-game sessions), and longest name, shout, squad, latency, ruleset,
#: map or source string read.
MAX_ID_CHARS = 256
MAX_NAME_CHARS = 256
#: Longest ``game.timeout`` taken, in milliseconds (a move is computed within it: a bound on what one request holds).
MAX_TIMEOUT_MS = 60_000
#: Hazard entries a board may hold per cell (hazards stack on some maps; none stacks anywhere near this high).
MAX_HAZARDS_PER_CELL = 32
#: Segments a body may hold beyond the board's cells: three stacked at the start, one more per meal and turn of
#: constrictor growth stay stacked on the tail, so a real body never comes close.
BODY_SLACK = 8


class RequestError(ValueError):
    """A request the server refuses; ``status`` is the HTTP status to answer with (400 unless said otherwise)."""

    def __init__(self, message: str, status: int = 400):
        if len(message) > MAX_ERROR_CHARS:
            message = message[: MAX_ERROR_CHARS - 3] + "..."
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    """Bounds on what one request may make the server hold; checked before the board is built."""

    max_body_bytes: int = 2 * 1024 * 1024  # a 128 x 128 board full of segments and hazards fits in ~1 MiB
    max_snakes: int = 64  # the engine starts at most 16 snakes on any board


@dataclass(frozen=True)
class GameInfo:
    """What a ``/start``, ``/move`` or ``/end`` body says about the game and the snake being asked."""

    game_id: str
    you_id: str
    timeout_ms: int  # the reply must reach the engine within this, network included
    ruleset: str  # the ruleset name as sent
    map: str  # the map name as sent ("" when absent)
    settings_json: Mapping[str, Any]  # ruleset.settings as sent
    notes: tuple[str, ...] = ()  # how an unknown ruleset or map was read (logged once per game)


@dataclass
class MoveRequest:
    """A ``/move`` body as the engine sees it: a batch-of-one ``Games`` and the asking snake's slot."""

    info: GameInfo
    turn: int
    games: Games  # batch of one; snake slots in board order (live snakes only)
    snake_ids: list[str]  # (S,) the ids of the slots
    you: int  # the asking snake's slot
    notes: tuple[str, ...] = ()  # how unknown names or unsupported settings were read (logged once per game)
    settings: GameSettings = field(init=False)

    def __post_init__(self) -> None:
        self.settings = self.games.settings


def decode_json(raw: bytes) -> dict:
    """The JSON object in a request body (UTF-8)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RequestError(f"the body is not UTF-8 text: {e}") from None
    try:
        body = json.loads(text)
    except RecursionError:
        raise RequestError("the body's JSON is nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, and ints longer than Python's digit limit
        raise RequestError(f"the body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise RequestError(f"the body must be a JSON object, got {type(body).__name__}")
    return body


def _field(parent: Mapping, key: str, path: str) -> Any:
    if key not in parent:
        raise RequestError(f"{path} is missing the field {key!r}")
    return parent[key]


def _object(parent: Mapping, key: str, path: str) -> Mapping:
    value = _field(parent, key, path)
    if not isinstance(value, Mapping):
        raise RequestError(f"{path}.{key} must be an object, got {short(value)}")
    return value


def _id(parent: Mapping, key: str, path: str) -> str:
    value = _field(parent, key, path)
    if not isinstance(value, str) or not value:
        raise RequestError(f"{path}.{key} must be a non-empty string, got {short(value)}")
    if len(value) > MAX_ID_CHARS:
        raise RequestError(f"{path}.{key} is longer than {MAX_ID_CHARS} characters ({len(value)})")
    return value


def short(value: Any, chars: int = 60) -> str:
    """``repr(value)`` cut to ``chars`` characters: error messages quote values that may be huge (a 400-digit
    integer, a long string) and must still name the field."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**chars:
        return f"an integer of {len(str(abs(value)))} digits"
    text = repr(value)
    return text if len(text) <= chars else text[: chars - 3] + "..."


def _positive_int(parent: Mapping, key: str, path: str, most: int) -> int:
    value = _field(parent, key, path)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RequestError(f"{path}.{key} must be a positive integer, got {short(value)}")
    if value > most:
        raise RequestError(f"{path}.{key} must be at most {most}, got {short(value)}")
    return value


def _short_string(parent: Mapping, key: str, path: str, required: bool = False) -> str | None:
    """A string field of at most ``MAX_NAME_CHARS`` characters (None when absent or null and not ``required``)."""
    value = parent.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        kind = "a non-empty string" if required else "a string"
        raise RequestError(f"{path}.{key} must be {kind}, got {short(value)}")
    if len(value) > MAX_NAME_CHARS:
        raise RequestError(f"{path}.{key} is longer than {MAX_NAME_CHARS} characters ({len(value)})")
    return value


def _check_snake_strings(snake: Any, path: str) -> None:
    """The snake entry's id and the strings the API adds to it (name, shout, squad, latency) are bounded."""
    if not isinstance(snake, Mapping):
        return  # board_from_json names the problem
    sid = snake.get("id")
    if isinstance(sid, str) and len(sid) > MAX_ID_CHARS:
        raise RequestError(f"{path}.id is longer than {MAX_ID_CHARS} characters ({len(sid)})")
    for key in ("name", "shout", "squad", "latency"):
        value = snake.get(key)
        if isinstance(value, str) and len(value) > MAX_NAME_CHARS:
            raise RequestError(f"{path}.{key} is longer than {MAX_NAME_CHARS} characters ({len(value)})")


def parse_game(body: Mapping) -> GameInfo:
    """The game part of any request body: ``game{id, ruleset{name, settings}, map, timeout}`` and ``you.id``.

    An unknown ruleset is played as ``standard`` and an unknown map as ``standard`` (its hazards still come in every
    board): answering with a sensible move beats refusing a game the engine has already started. ``notes`` says so.
    """
    game = _object(body, "game", "body")
    game_id = _id(game, "id", "game")
    ruleset = _object(game, "ruleset", "game")
    name = _short_string(ruleset, "name", "game.ruleset", required=True)
    settings = ruleset.get("settings", {})
    if not isinstance(settings, Mapping):
        raise RequestError(f"game.ruleset.settings must be an object, got {short(settings)}")
    game_map = _short_string(game, "map", "game") or ""
    source = game.get("source")
    if isinstance(source, str) and len(source) > MAX_NAME_CHARS:  # not read: bounded only
        raise RequestError(f"game.source is longer than {MAX_NAME_CHARS} characters ({len(source)})")
    timeout = _positive_int(game, "timeout", "game", MAX_TIMEOUT_MS)
    you = _object(body, "you", "body")
    _check_snake_strings(you, "you")
    notes = []
    if name not in RULESETS:
        notes.append(f"unknown ruleset {name[:40]!r}: played as 'standard'")
    if game_map and game_map not in MAPS:
        notes.append(f"unknown map {game_map[:40]!r}: played as 'standard' (the board's hazards are still seen)")
    return GameInfo(game_id=game_id, you_id=_id(you, "id", "you"), timeout_ms=timeout, ruleset=name, map=game_map,
                    settings_json=settings, notes=tuple(notes))


def parse_start(body: Mapping, limits: Limits = Limits()) -> tuple[GameInfo, list[str]]:
    """A ``/start`` body: the game part (``parse_game``) and the ids of the board's snakes in board order, as far as
    the board lists them (a board the server cannot read yet is the first ``/move``'s business)."""
    info = parse_game(body)
    board = body.get("board")
    snakes = board.get("snakes") if isinstance(board, Mapping) else None
    if not isinstance(snakes, list):
        return info, []
    if len(snakes) > limits.max_snakes:
        raise RequestError(f"board.snakes holds {len(snakes)} snakes; this server plays at most {limits.max_snakes}")
    for i, snake in enumerate(snakes):
        _check_snake_strings(snake, f"board.snakes[{i}]")
    return info, [s["id"] for s in snakes if isinstance(s, Mapping) and isinstance(s.get("id"), str)]


def _all_integers(settings: Mapping) -> bool:
    """Are the settings the engine reads integers where given? (A wrong type is the client's problem; a value the
    engine does not take may be the arena's choice.)"""
    royale = settings.get("royale", {})
    if not isinstance(royale, Mapping):
        return False
    values = [settings.get(k) for k in ("foodSpawnChance", "minimumFood", "hazardDamagePerTurn")]
    values.append(royale.get("shrinkEveryNTurns"))
    return all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in values)


def game_settings(info: GameInfo, width: int, height: int) -> tuple[GameSettings, str]:
    """(the engine settings of a game, a note when some were replaced).

    Unknown ruleset and map names read as ``standard`` (see ``parse_game``). A setting of the wrong type is a
    ``RequestError``; an integer the engine does not accept (e.g. ``foodSpawnChance`` 150) makes the game play with
    the engine's defaults for every setting, and the note says so.
    """
    ruleset = info.ruleset if info.ruleset in RULESETS else "standard"
    game_map = info.map if info.map in MAPS else "standard"
    try:
        return GameSettings.from_api(info.settings_json, width=width, height=height, ruleset=ruleset,
                                     map=game_map), ""
    except RulesError as e:
        if not _all_integers(info.settings_json):
            raise RequestError(f"game.ruleset.settings: {e}") from None
        defaults = GameSettings.from_api({}, width=width, height=height, ruleset=ruleset, map=game_map)
        return defaults, f"ruleset settings the engine does not take ({e}): played with its defaults"


def _check_sizes(board: Mapping, limits: Limits) -> None:
    """Refuse boards whose snakes would make the engine allocate far more than the body's size suggests."""
    snakes = board.get("snakes")
    if not isinstance(snakes, list):
        return  # board_from_json names the problem
    if len(snakes) > limits.max_snakes:
        raise RequestError(f"board.snakes holds {len(snakes)} snakes; this server plays at most {limits.max_snakes}")
    for i, snake in enumerate(snakes):
        _check_snake_strings(snake, f"board.snakes[{i}]")
    width, height = board.get("width"), board.get("height")
    if not all(isinstance(v, int) and not isinstance(v, bool) and MIN_BOARD <= v <= MAX_BOARD
               for v in (width, height)):
        return  # board_from_json names the problem
    cells = width * height
    for key, most in (("food", cells), ("hazards", cells * MAX_HAZARDS_PER_CELL)):
        points = board.get(key)
        if isinstance(points, list) and len(points) > most:
            raise RequestError(f"board.{key} holds {len(points)} points; a {width}x{height} board holds at most "
                               f"{most}")
    most = cells + BODY_SLACK
    for i, snake in enumerate(snakes):
        body = snake.get("body") if isinstance(snake, Mapping) else None
        if isinstance(body, list) and len(body) > most:
            raise RequestError(f"board.snakes[{i}].body has {len(body)} segments; a {width}x{height} board holds "
                               f"at most {most}")


def parse_move(body: Mapping, limits: Limits = Limits()) -> MoveRequest:
    """A ``/move`` body as a batch-of-one ``Games``; the board must hold the asking snake (``you.id``)."""
    info = parse_game(body)
    _field(body, "turn", "body")
    board = _object(body, "board", "body")
    _check_sizes(board, limits)
    wrapped = RULESETS[info.ruleset].wrapped if info.ruleset in RULESETS else False
    # Each game gets its own stream, so tie-breaks differ between games but repeat for the same board.
    seed = zlib.crc32(info.game_id.encode("utf-8", "surrogatepass"))
    try:
        state, ids = board_from_json(board, turn=body["turn"], wrapped=wrapped, rng_seed=seed)
    except BoardError as e:
        raise RequestError(str(e)) from None
    settings, note = game_settings(info, int(board["width"]), int(board["height"]))
    if info.you_id not in ids:
        raise RequestError(f"you.id {info.you_id!r} is not one of the snakes on the board")
    games = Games.from_state(settings, state)
    return MoveRequest(info=info, turn=int(body["turn"]), games=games, snake_ids=ids, you=ids.index(info.you_id),
                       notes=info.notes + ((note,) if note else ()))
