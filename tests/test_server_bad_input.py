"""Bad ``/move`` input to the arena server: tables of broken fields and bodies, each a 400 naming the problem, and
hypothesis fuzzing that never gets a crash.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_helpers import DELETE, FUZZ_PATHS, NO_SEARCH, json_values, set_field, valid_body

from battlesnake_gym.engine import MOVE_NAMES
from battlesnake_server.app import SnakeApp, normalize_path
from battlesnake_server.request import parse_move

# ---------------------------------------------------------------- bad input


_MANY_SNAKES = [{"id": f"s{i}", "health": 50, "body": [{"x": 0, "y": 0}]} for i in range(10_000)]


@pytest.mark.parametrize(("path", "value", "fragment"), [
    ("game", DELETE, "missing the field 'game'"),
    ("game", [], "game must be an object"),
    ("game.id", DELETE, "missing the field 'id'"),
    ("game.id", 7, "game.id must be a non-empty string"),
    ("game.id", "x" * 300, "longer than 256"),
    ("game.timeout", DELETE, "missing the field 'timeout'"),
    ("game.timeout", 0, "game.timeout must be a positive integer"),
    ("game.timeout", "500", "game.timeout must be a positive integer"),
    ("game.timeout", 10**400, "game.timeout must be at most 60000, got an integer of 401 digits"),
    ("game.timeout", 2**63, "game.timeout must be at most 60000"),
    ("game.source", "s" * 300, "game.source is longer than 256"),
    ("game.ruleset.name", "r" * 300, "game.ruleset.name is longer than 256"),
    ("game.map", "m" * 300, "game.map is longer than 256"),
    ("game.ruleset.name", None, "game.ruleset.name"),
    ("game.ruleset.settings", "fast", "settings must be an object"),
    ("game.ruleset.settings.foodSpawnChance", "lots", "food_spawn_chance"),
    ("game.map", 3, "game.map must be a string"),
    ("turn", DELETE, "missing the field 'turn'"),
    ("turn", -1, "turn must be in"),
    ("turn", 2.5, "turn must be an integer"),
    ("turn", 10**400, "turn must be in"),
    ("board", DELETE, "missing the field 'board'"),
    ("board.width", 1000, "board.width must be in"),
    ("board.height", "11", "board.height must be an integer"),
    ("board.snakes", [], "board.snakes is empty"),
    ("board.snakes", {}, "board.snakes must be a list"),
    ("board.snakes", _MANY_SNAKES, "10000 snakes"),
    ("board.snakes.0", {"id": "z", "health": 50, "body": [{"x": 11, "y": 0}]}, "body[0] = (11, 0) is off the 11x11"),
    ("board.snakes.0.body.1", {"x": -1, "y": 0}, "body[1]"),
    ("board.snakes.0.body", [{"x": 1, "y": 1}] * 200, "200 segments"),
    ("board.snakes.0.health", 101, "health must be in [0, 100]"),
    ("board.snakes.0.id", None, "id must be a non-empty string"),
    ("board.snakes.1.id", "i" * 10**6, "board.snakes[1].id is longer than 256 characters (1000000)"),
    ("board.snakes.1.name", "n" * 300, "board.snakes[1].name is longer than 256"),
    ("board.snakes.1.shout", "s" * 300, "board.snakes[1].shout is longer than 256"),
    ("board.snakes.1.latency", "9" * 300, "board.snakes[1].latency is longer than 256"),
    ("board.snakes.0.health", 10**400, "board.snakes[0].health"),
    ("board.snakes.0.body.0.x", -(10**400), "board.snakes[0]"),
    ("board.food", [{"x": 1, "y": 1}] * 122, "board.food holds 122 points; a 11x11 board holds at most 121"),
    ("board.hazards", [{"x": 1, "y": 1}] * 5000, "board.hazards holds 5000 points"),
    ("you.id", "y" * 300, "you.id is longer than 256"),
    ("you.name", "n" * 300, "you.name is longer than 256"),
    ("board.food", "none", "board.food must be a list"),
    ("board.food", [{"x": 1}], "missing 'y'"),
    ("board.hazards", [{"x": 99, "y": 0}], "off the 11x11 board"),
    ("you", DELETE, "missing the field 'you'"),
    ("you.id", "someone-else", "not one of the snakes on the board"),
])
def test_a_bad_move_request_gets_a_400_naming_the_problem(shared: Path, path: str, value: Any, fragment: str) -> None:
    app = SnakeApp(safety=NO_SEARCH)
    status, reply = app.handle("POST", "/move", json.dumps(set_field(valid_body(), path, value)).encode())
    assert status == 400 and fragment in reply["error"], reply
    assert len(reply["error"]) <= 400
    status, reply = app.handle("POST", "/move", json.dumps(valid_body()).encode())
    assert status == 200 and reply["move"] in MOVE_NAMES  # the next game is served as before


@pytest.mark.parametrize(("raw", "fragment"), [
    (b"", "not valid JSON"),
    (b"{\"game\": ", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b"{\"turn\": " + b"9" * 5000 + b"}", "not valid JSON"),
])
def test_bodies_that_are_not_json_objects_get_a_400(raw: bytes, fragment: str) -> None:
    status, reply = SnakeApp().handle("POST", "/move", raw)
    assert status == 400 and fragment in reply["error"]


def test_unknown_paths_and_methods_get_404_and_405() -> None:
    app = SnakeApp()
    assert app.handle("GET", "/nothing")[0] == 404
    assert app.handle("GET", "/move")[0] == 405
    assert app.handle("POST", "/")[0] == 405
    assert normalize_path("//move/?x=1") == "/move" and normalize_path("") == "/"


def test_an_unknown_ruleset_and_map_are_played_as_standard(shared: Path) -> None:
    body = set_field(set_field(valid_body(), "game.ruleset.name", "squad"), "game.map", "hz_islands_bridges")
    req = parse_move(body)
    assert (req.settings.ruleset, req.settings.map) == ("standard", "standard") and len(req.notes) == 2
    status, reply = SnakeApp(safety=NO_SEARCH).handle("POST", "/move", json.dumps(body).encode())
    assert status == 200 and reply["move"] in MOVE_NAMES


def test_settings_the_engine_does_not_take_are_played_with_its_defaults(shared: Path) -> None:
    req = parse_move(set_field(valid_body(), "game.ruleset.settings.foodSpawnChance", 150))
    assert req.settings.food_spawn_chance == 0 and "played with its defaults" in req.notes[0]


_FUZZ_APP = SnakeApp(safety=NO_SEARCH)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(FUZZ_PATHS), json_values() | st.just(DELETE)), min_size=1, max_size=3))
def test_fuzzed_move_bodies_get_a_legal_move_or_a_400_never_a_crash(shared, edits: list) -> None:
    body = valid_body()
    for path, value in edits:
        try:
            set_field(body, path, value)
        except (KeyError, IndexError, TypeError, ValueError):
            continue  # the path no longer exists after an earlier edit
    status, reply = _FUZZ_APP.handle("POST", "/move", json.dumps(body).encode())
    assert (status, set(reply)) in ((200, {"move"}), (400, {"error"})), reply
    if status == 200:
        assert reply["move"] in MOVE_NAMES
    assert _FUZZ_APP.counters["errors"] == 0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_fuzzed_raw_bytes_get_a_400_never_a_crash(raw: bytes) -> None:
    status, reply = _FUZZ_APP.handle("POST", "/move", raw)
    assert status == 400 and "error" in reply
