"""The arena server's logic without the network: requests read by the engine, the safety layer, the players (bot and
exported policy), sessions, bad input (tables and hypothesis), and the SageMaker handler functions.

The exported policy is a tiny untrained ``BattlesnakeCNN`` written once per test session by ``exported_model`` (in a
subprocess, so the server under test runs in a process without Ray, as it does in the arena).
"""

from __future__ import annotations

import ast
import copy
import json
import subprocess
import sys
import tarfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from battlesnake_gym.engine import DOWN, LEFT, MOVE_NAMES, RIGHT, UP, Games, GameSettings, board_from_json
from battlesnake_gym.observations import EgocentricEncoder, action_mask, make_encoder
from battlesnake_policy import PolicySpec
from battlesnake_server.app import Appearance, SnakeApp, normalize_path
from battlesnake_server.players import ModelError, ModelPlayer, load_model
from battlesnake_server.request import MAX_TIMEOUT_MS, RequestError, parse_move
from battlesnake_server.safety import RISKY, SAFE, SURE_DEATH, SafetyLayer, assess_moves, rollout_values
from battlesnake_server.sagemaker_inference import (
    InvocationError,
    input_fn,
    model_fn,
    output_fn,
    package_model,
    predict_fn,
)
from battlesnake_server.search import NetworkSearch

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "api-samples"
NO_SEARCH = SafetyLayer(search_ms=0)
TINY_CONFIG = {"algorithm": "PPO", "encoder": "egocentric", "view": 0, "width": 11, "height": 11, "num_snakes": 4,
               "ruleset": "standard", "map": "standard", "conv_filters": [4], "hidden": 16}

_EXPORT = textwrap.dedent("""
    import sys
    import gymnasium as gym
    import torch
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from battlesnake_gym.envs import BattlesnakeParallelEnv
    from battlesnake_rllib.export import export_module
    from battlesnake_rllib.model import BattlesnakeCNN

    torch.manual_seed(0)
    env = BattlesnakeParallelEnv(num_snakes=4)
    agent = env.possible_agents[0]
    module = RLModuleSpec(module_class=BattlesnakeCNN, observation_space=env.observation_space(agent),
                          action_space=env.action_space(agent),
                          model_config={"conv_filters": [[4, 3, 2]], "hidden": [16]}).build()
    export_module(module, sys.argv[1])
""")
_MODEL_DIR: list[Path] = []


def exported_model(root: Path) -> Path:
    """A folder with ``policy.pt``, ``policy.onnx`` and ``config.json`` of a tiny untrained policy (made once)."""
    if not _MODEL_DIR:
        folder = root / "tiny-model"
        result = subprocess.run([sys.executable, "-c", _EXPORT, str(folder)], capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        (folder / "config.json").write_text(json.dumps(TINY_CONFIG))
        _MODEL_DIR.append(folder)
    return _MODEL_DIR[0]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return exported_model(tmp_path_factory.getbasetemp())


# ---------------------------------------------------------------- helpers


def move_body(board: dict, you: str = "a", *, ruleset: str = "standard", game_map: str = "standard",
              turn: int = 5, timeout: int = 500, game_id: str = "game-1", settings: dict | None = None) -> dict:
    """A /move body around a JSON board (trace or API format)."""
    live = [{k: v for k, v in s.items() if k != "eliminated"} for s in board["snakes"]
            if not s.get("eliminated")]
    return {"game": {"id": game_id, "ruleset": {"name": ruleset, "version": "cli",
                                                "settings": settings if settings is not None else
                                                GameSettings().to_api()},
                     "map": game_map, "timeout": timeout, "source": ""},
            "turn": turn, "board": {**board, "snakes": live}, "you": {"id": you}}


def patient(body: dict) -> dict:
    """``body`` with the longest ``game.timeout`` the server takes: for tests of what the player does, which must not
    depend on how fast this machine is (the deadline tests are below)."""
    return {**body, "game": {**body["game"], "timeout": MAX_TIMEOUT_MS}}


def picture_games(picture: str, *, ruleset: str = "standard", damage: int = 14, **facts) -> Games:
    """A batch of one game holding the board an ASCII picture shows (see tests/ascii_boards.py)."""
    from ascii_boards import board

    wrapped = ruleset.startswith("wrapped")
    json_board = board(picture, wrapped=wrapped, **facts)
    state, _ = board_from_json(json_board, wrapped=wrapped)
    settings = GameSettings(width=json_board["width"], height=json_board["height"], ruleset=ruleset,
                            hazard_damage_per_turn=damage)
    return Games.from_state(settings, state)


def one_hot(move: int, strength: float = 0.9) -> np.ndarray:
    prefs = np.full(4, (1 - strength) / 3)
    prefs[move] = strength
    return prefs


def recorded_frames(name: str) -> list[dict]:
    lines = [json.loads(line) for line in (SAMPLES / name).read_text().splitlines()]
    if "path" in lines[0]:
        return [e["body"] for e in lines if e["path"] == "/move"]
    return [line for line in lines[1:] if "board" in line]


def assert_not_avoidably_fatal(body: dict, move: str) -> None:
    """``move`` is one of the four names and, when the snake has a non-fatal move, one of those."""
    assert move in MOVE_NAMES
    req = parse_move(body)
    mask = action_mask(req.games)[0, req.you]
    if mask.any():
        assert mask[MOVE_NAMES.index(move)], f"turn {req.turn}: {move} is fatal, mask {mask.tolist()}"


# ---------------------------------------------------------------- the layers


def test_the_server_package_imports_neither_ray_nor_the_sagemaker_sdk() -> None:
    forbidden = {"ray", "sagemaker", "boto3", "rllib_src", "sagemaker_rl"}
    for path in (REPO / "battlesnake_server").rglob("*.py"):
        tree = ast.parse(path.read_text())
        modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and n.level == 0}
        assert not {m.split(".")[0] for m in modules} & forbidden, f"{path.name} imports {sorted(modules)}"
        training = {m for m in modules if m.startswith("battlesnake_rllib")}
        assert training <= {"battlesnake_rllib.export"}, f"{path.name} reaches Ray-bound training code: {training}"


def test_serving_an_exported_model_loads_neither_ray_nor_the_sagemaker_sdk(model_dir: Path) -> None:
    script = textwrap.dedent(f"""
        import json, sys
        from battlesnake_server.app import SnakeApp
        from battlesnake_server.players import load_model
        import battlesnake_server.httpd, battlesnake_server.referee, battlesnake_server.sagemaker_inference
        app = SnakeApp(load_model({str(model_dir)!r}))
        app.warm_up()
        print(json.dumps(sorted(m for m in ("ray", "sagemaker", "boto3") if m in sys.modules)))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[-1]) == []


# ---------------------------------------------------------------- recorded official requests


@pytest.mark.parametrize("name", ["cli-export-standard-4snakes.jsonl", "cli-export-standard-duel.jsonl",
                                  "cli-export-royale-shrink5.jsonl", "cli-export-wrapped-solo.jsonl",
                                  "cli-export-constrictor-empty-3snakes.jsonl", "requests-constrictor.jsonl"])
def test_every_recorded_cli_request_is_answered_with_a_move_that_is_not_avoidably_fatal(shared, name: str) -> None:
    app = SnakeApp(safety=NO_SEARCH)
    asked = 0
    for frame in recorded_frames(name):
        for snake in frame["board"]["snakes"]:
            body = {**frame, "you": snake}
            status, reply = app.handle("POST", "/move", json.dumps(body).encode())
            assert status == 200, reply
            assert_not_avoidably_fatal(body, reply["move"])
            asked += 1
    assert asked >= 15


def test_the_exported_model_answers_recorded_requests_on_every_ruleset(shared, model_dir: Path) -> None:
    app = SnakeApp(load_model(model_dir), safety=NO_SEARCH)
    for name in ("cli-export-standard-4snakes.jsonl", "cli-export-royale-shrink5.jsonl",
                 "cli-export-wrapped-solo.jsonl", "cli-export-constrictor-empty-3snakes.jsonl"):
        for frame in recorded_frames(name)[::4]:
            body = patient({**frame, "you": frame["board"]["snakes"][0]}) if frame["board"]["snakes"] else None
            if body is None:
                continue
            status, reply = app.handle("POST", "/move", json.dumps(body).encode())
            assert status == 200, reply
            assert_not_avoidably_fatal(body, reply["move"])
    assert app.counters["moves"] > 20 and app.counters["bot_moves"] == 0 and app.counters["errors"] == 0


# ---------------------------------------------------------------- the safety layer


def test_the_layer_refuses_a_policy_move_into_the_wall() -> None:
    games = picture_games("""
        . . . .
        A a a .
        . . . .
    """)
    decision = SafetyLayer().choose(games, 0, one_hot(LEFT, 0.99))
    assert decision.rank[LEFT] == SURE_DEATH and decision.move in (UP, DOWN) and decision.reason == "safety"


def test_the_raw_policy_setting_plays_the_favourite_even_into_the_wall() -> None:
    games = picture_games("""
        . . . .
        A a a .
        . . . .
    """)
    assert SafetyLayer(enabled=False).choose(games, 0, one_hot(LEFT)).move == LEFT


def test_the_layer_avoids_a_head_to_head_with_a_longer_snake_when_a_safe_move_exists() -> None:
    games = picture_games("""
        . . . . .
        . . B b b
        . A . . b
        . a . . .
        . a . . .
    """)
    decision = SafetyLayer().choose(games, 0, one_hot(RIGHT))
    assert decision.rank[RIGHT] == RISKY and decision.rank[UP] == RISKY and decision.rank[LEFT] == SAFE
    assert decision.move == LEFT


def test_a_head_to_head_with_a_shorter_snake_is_not_a_risk() -> None:
    games = picture_games("""
        . . . . .
        . . B b .
        . A . . .
        . a . . .
        . a . . .
    """)
    assert SafetyLayer().choose(games, 0, one_hot(RIGHT)).move == RIGHT


def test_a_starving_snake_takes_the_food_and_nothing_else() -> None:
    games = picture_games("""
        . . . .
        . A * .
        . a . .
        . a . .
    """, health={"a": 1})
    decision = SafetyLayer().choose(games, 0, one_hot(UP))
    assert [decision.rank[d] for d in (UP, LEFT, RIGHT)] == [SURE_DEATH, SURE_DEATH, SAFE] and decision.move == RIGHT


def test_hazard_damage_that_would_end_the_snake_counts_as_sure_death_unless_food_cancels_it() -> None:
    games = picture_games("""
        . 2 . .
        ~ A *~ .
        . a . .
        . a . .
    """, health={"a": 20})
    rank = np.zeros(4, np.int64)
    space = np.zeros(4, np.int64)
    assess_moves(games.state, games.params, False, 0, 0, rank, space)
    assert rank[UP] == SURE_DEATH  # 20 - 1 - 2 * 14 <= 0
    assert rank[LEFT] == SAFE  # 20 - 1 - 14 = 5 left
    assert rank[RIGHT] == SAFE  # food on the hazard: no damage


def test_the_tail_of_a_snake_that_may_eat_this_turn_is_risky() -> None:
    games = picture_games("""
        . . . * .
        A b b B .
        a . . . .
        a . . . .
    """)
    rank = np.zeros(4, np.int64)
    space = np.zeros(4, np.int64)
    assess_moves(games.state, games.params, False, 0, 0, rank, space)
    assert rank[RIGHT] == RISKY  # b's tail stays if b eats the food next to its head


def test_a_pocket_smaller_than_the_snake_is_refused_even_against_a_strong_preference() -> None:
    # Left leads into a three-cell pocket walled by b's body, which stays longer than the pocket lasts; up is open.
    games = picture_games("""
        . . . . . . .
        b b b . . . .
        b . . . . . .
        b b B . . . .
        . . . A a a a
    """)
    decision = SafetyLayer().choose(games, 0, one_hot(LEFT, 0.95))
    assert decision.space[LEFT] == 3 and decision.space[UP] > 4
    assert decision.move == UP


def test_a_near_tie_in_the_policy_goes_to_the_move_with_more_room() -> None:
    # Left enters a closed 3x3 pocket (roomy enough for the 8-long snake), right the larger rest of the board.
    games = picture_games("""
        . . . . . . . . .
        c c c c c c c c c
        c c C a a a a a .
        . . . a . . . . .
        . . . a . . . . .
        . . . A . . . . .
    """, bodies={"c": [(2, 3), (1, 3), (0, 3)] + [(x, 4) for x in range(9)]})
    rank = np.zeros(4, np.int64)
    space = np.zeros(4, np.int64)
    assess_moves(games.state, games.params, False, 0, 0, rank, space)
    assert rank[LEFT] == rank[RIGHT] == SAFE and space[LEFT] == 9 and space[RIGHT] > 9
    near_tie = np.array([0.0, 0.0, 0.55, 0.45])  # left slightly preferred
    assert SafetyLayer(near_tie=0.15).choose(games, 0, near_tie).move == RIGHT
    assert SafetyLayer(near_tie=0.05).choose(games, 0, near_tie).move == LEFT


HAZARD_CORRIDOR = """
    . . . . . . .
    . . . . . . .
    . . . . . . .
    ~ ~ ~ ~ . . .
    . . . . A a a
"""


def test_rollouts_score_a_dead_end_walled_by_lethal_hazards_below_the_open_board() -> None:
    games = picture_games(HAZARD_CORRIDOR, damage=100)
    values, rollouts = rollout_values(games, 0, [UP, LEFT], deadline=float("inf"), depth=8, max_rollouts=16)
    assert rollouts == 16 and np.isnan(values[DOWN]) and np.isnan(values[RIGHT])
    assert values[UP] == 1.0 and values[LEFT] <= 0.75


def test_the_search_turns_the_snake_away_from_a_dead_end_the_one_step_checks_cannot_see() -> None:
    games = picture_games(HAZARD_CORRIDOR, damage=100)
    plain = SafetyLayer().choose(games, 0, one_hot(LEFT))
    assert plain.move == LEFT and plain.rank[LEFT] == SAFE  # roomy by the flood fill, which ignores hazards
    searched = SafetyLayer(search_ms=1000, max_rollouts=16).choose(games, 0, one_hot(LEFT))
    assert searched.move == UP and searched.reason == "search" and searched.rollouts == 16


def test_the_search_copies_a_huge_board_only_within_its_memory_bound() -> None:
    from battlesnake_server import safety

    games = Games(GameSettings(width=128, height=128), num_snakes=16, seed=0)
    per_copy = sum(a[:1].nbytes for a in games.state) * 2
    values, rollouts = rollout_values(games, 0, [UP, DOWN], deadline=float("inf"), depth=1, max_rollouts=8)
    assert rollouts == 8 and per_copy * 8 > safety.MAX_ROLLOUT_BYTES  # rounds were made smaller, not skipped
    huge = Games(GameSettings(width=128, height=128), num_snakes=16, seed=0)
    huge.state = huge.state._replace(body=np.zeros((1, 16, safety.MAX_ROLLOUT_BYTES // 64, 2), np.int16))
    assert rollout_values(huge, 0, [UP, DOWN], deadline=float("inf"))[1] == 0


def test_the_search_stops_at_the_deadline() -> None:
    games = picture_games(HAZARD_CORRIDOR, damage=100)
    import time

    values, rollouts = rollout_values(games, 0, [UP, LEFT], deadline=time.perf_counter() - 1.0)
    assert rollouts == 0 and np.isnan(values).all()


def test_when_every_move_is_fatal_the_policy_favourite_is_played() -> None:
    games = picture_games("""
        A b b
        a b B
        a b b
    """, bodies={"b": [(2, 1), (2, 2), (1, 2), (1, 1), (1, 0), (2, 0)]})
    decision = SafetyLayer().choose(games, 0, one_hot(RIGHT))
    assert decision.reason == "doomed" and decision.move == RIGHT


@pytest.mark.parametrize("kwargs", [{"near_tie": 1.5}, {"search_ms": -1}, {"search_depth": 0}, {"max_rollouts": 0}])
def test_bad_safety_settings_are_refused_by_name(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs)).split("_")[0]):
        SafetyLayer(**kwargs)


# ---------------------------------------------------------------- bad input


def _valid_body() -> dict:
    return copy.deepcopy(recorded_frames("cli-export-standard-4snakes.jsonl")[10])


def _set(body: dict, path: str, value: Any) -> dict:
    *parents, last = path.split(".")
    node = body
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is _DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return body


_DELETE = object()
_MANY_SNAKES = [{"id": f"s{i}", "health": 50, "body": [{"x": 0, "y": 0}]} for i in range(10_000)]


@pytest.mark.parametrize(("path", "value", "fragment"), [
    ("game", _DELETE, "missing the field 'game'"),
    ("game", [], "game must be an object"),
    ("game.id", _DELETE, "missing the field 'id'"),
    ("game.id", 7, "game.id must be a non-empty string"),
    ("game.id", "x" * 300, "longer than 256"),
    ("game.timeout", _DELETE, "missing the field 'timeout'"),
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
    ("turn", _DELETE, "missing the field 'turn'"),
    ("turn", -1, "turn must be in"),
    ("turn", 2.5, "turn must be an integer"),
    ("turn", 10**400, "turn must be in"),
    ("board", _DELETE, "missing the field 'board'"),
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
    ("you", _DELETE, "missing the field 'you'"),
    ("you.id", "someone-else", "not one of the snakes on the board"),
])
def test_a_bad_move_request_gets_a_400_naming_the_problem(shared: Path, path: str, value: Any, fragment: str) -> None:
    app = SnakeApp(safety=NO_SEARCH)
    status, reply = app.handle("POST", "/move", json.dumps(_set(_valid_body(), path, value)).encode())
    assert status == 400 and fragment in reply["error"], reply
    assert len(reply["error"]) <= 400
    status, reply = app.handle("POST", "/move", json.dumps(_valid_body()).encode())
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
    body = _set(_set(_valid_body(), "game.ruleset.name", "squad"), "game.map", "hz_islands_bridges")
    req = parse_move(body)
    assert (req.settings.ruleset, req.settings.map) == ("standard", "standard") and len(req.notes) == 2
    status, reply = SnakeApp(safety=NO_SEARCH).handle("POST", "/move", json.dumps(body).encode())
    assert status == 200 and reply["move"] in MOVE_NAMES


def test_settings_the_engine_does_not_take_are_played_with_its_defaults(shared: Path) -> None:
    req = parse_move(_set(_valid_body(), "game.ruleset.settings.foodSpawnChance", 150))
    assert req.settings.food_spawn_chance == 0 and "played with its defaults" in req.notes[0]


def _json_values() -> st.SearchStrategy:
    huge = st.sampled_from([2**31, 2**32, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**400, -(10**400), 60_001])
    scalars = (st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.integers() | huge | st.floats()
               | st.text(max_size=8) | st.text(min_size=257, max_size=2000))
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6),
                                                                                              inner, max_size=4),
                        max_leaves=12)


def _paths(node: Any, prefix: str = "") -> list[str]:
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, child in items:
        path = f"{prefix}.{key}" if prefix else str(key)
        out.append(path)
        out += _paths(child, path)
    return out


_FUZZ_APP = SnakeApp(safety=NO_SEARCH)
_FUZZ_PATHS = _paths(recorded_frames("cli-export-standard-4snakes.jsonl")[10]) if SAMPLES.is_dir() else ["turn"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_FUZZ_PATHS), _json_values() | st.just(_DELETE)), min_size=1, max_size=3))
def test_fuzzed_move_bodies_get_a_legal_move_or_a_400_never_a_crash(shared, edits: list) -> None:
    body = _valid_body()
    for path, value in edits:
        try:
            _set(body, path, value)
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


# ---------------------------------------------------------------- sessions and appearance


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _bodies(game_id: str) -> dict:
    body = _valid_body()
    body["game"]["id"] = game_id
    return body


def test_a_session_lives_from_start_to_end(shared: Path) -> None:
    app = SnakeApp(safety=NO_SEARCH)
    body = _bodies("g1")
    key = ("g1", body["you"]["id"])
    assert app.handle("POST", "/start", json.dumps(body).encode()) == (200, {})
    assert key in app.sessions
    app.handle("POST", "/move", json.dumps(body).encode())
    assert app.sessions.get(key).moves == 1
    assert app.handle("POST", "/end", json.dumps(body).encode()) == (200, {})
    assert key not in app.sessions and len(app.sessions) == 0


def test_idle_sessions_are_forgotten_and_the_store_never_grows_past_its_bound(shared: Path) -> None:
    clock = FakeClock()
    app = SnakeApp(safety=NO_SEARCH, max_sessions=3, idle_timeout_s=60, clock=clock)
    for n in range(5):
        app.handle("POST", "/move", json.dumps(_bodies(f"g{n}")).encode())  # a move without a start opens a game
        assert len(app.sessions) <= 3
    assert [game for game, _ in app.sessions.keys()] == ["g2", "g3", "g4"]
    clock.now += 61
    app.handle("POST", "/start", json.dumps(_bodies("late")).encode())
    assert [game for game, _ in app.sessions.keys()] == ["late"]


def test_a_start_with_an_overlong_snake_id_is_refused_and_opens_no_session(shared: Path) -> None:
    app = SnakeApp(safety=NO_SEARCH)
    body = _set(_bodies("g-long"), "board.snakes.2.id", "x" * 100_000)
    status, reply = app.handle("POST", "/start", json.dumps(body).encode())
    assert status == 400 and "board.snakes[2].id is longer than 256" in reply["error"]
    assert len(app.sessions) == 0


def test_get_root_tells_the_engine_the_configured_appearance() -> None:
    app = SnakeApp(appearance=Appearance(author="me", color="#ff8800", head="beluga", tail="bolt"))
    assert app.handle("GET", "/") == (200, {"apiversion": "1", "author": "me", "color": "#ff8800", "head": "beluga",
                                            "tail": "bolt", "version": "battlesnake-rl 0.1.0"})
    with pytest.raises(ValueError, match="color"):
        Appearance(color="orange")


# ---------------------------------------------------------------- players: the exported model


class FixedPolicy:
    """A stand-in for a loaded policy with a chosen observation shape: prefers one move, records what it saw."""

    def __init__(self, obs_shape: tuple[int, ...], favourite: int = UP):
        self.obs_shape, self.favourite, self.seen = obs_shape, favourite, []
        self.path = "fixed"

    def logits(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self.seen.append(obs.copy())
        logits = np.zeros((len(obs), 4), np.float32)
        logits[:, self.favourite] = 5.0
        return logits


def test_the_model_finds_its_config_beside_it_or_in_the_run_folder(model_dir: Path, tmp_path: Path) -> None:
    assert load_model(model_dir).source == str(model_dir / "config.json")
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "model" / "policy.pt").write_bytes((model_dir / "policy.pt").read_bytes())
    (run / "config.json").write_text(json.dumps(TINY_CONFIG))
    player = load_model(run)  # the run folder: model/policy.pt and config.json
    assert player.source == str(run / "config.json") and player.obs_shape == (10, 21, 21)


def test_without_a_config_an_egocentric_window_is_read_from_the_shape(model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "policy.onnx").write_bytes((model_dir / "policy.onnx").read_bytes())
    player = load_model(tmp_path / "policy.onnx")
    assert player.spec.view == 21 and player.window == 21 and player.policy.format == "onnx"


def test_a_config_that_does_not_match_the_model_is_refused_naming_both_shapes(model_dir: Path,
                                                                              tmp_path: Path) -> None:
    (tmp_path / "wrong.json").write_text(json.dumps({**TINY_CONFIG, "view": 11}))
    with pytest.raises(ModelError, match=r"\(10, 21, 21\).*\(10, 11, 11\)"):
        load_model(model_dir / "policy.pt", tmp_path / "wrong.json")
    (tmp_path / "bad.json").write_text(json.dumps({**TINY_CONFIG, "encoder": "pixels"}))
    with pytest.raises(ModelError, match="pixels"):
        load_model(model_dir / "policy.pt", tmp_path / "bad.json")
    with pytest.raises(ModelError, match="no model"):
        load_model(tmp_path / "missing")


def test_the_model_sees_the_trained_encoder_on_its_board_and_a_centred_window_elsewhere() -> None:
    player = ModelPlayer(FixedPolicy((10, 21, 21)), TINY_CONFIG)
    assert player.plan(GameSettings(), 4).note == "trained"
    for size in (7, 19, 25):
        plan = player.plan(GameSettings(width=size, height=size), 16 if size == 25 else 4)
        assert plan.note == "window" and plan.encoder.shape(GameSettings(width=size, height=size), 4) == (10, 21, 21)


def test_a_model_whose_encoder_cannot_follow_the_board_leaves_the_game_to_the_bot(shared: Path) -> None:
    legacy = {**TINY_CONFIG, "encoder": "bordered-51s"}
    player = ModelPlayer(FixedPolicy((13, 13, 5)), legacy)
    assert player.plan(GameSettings(), 4).note == "trained"
    plan = player.plan(GameSettings(width=19, height=19), 4)
    assert plan.encoder is None and "(13, 13, 5)" in plan.note
    app = SnakeApp(player, safety=NO_SEARCH)
    frame = recorded_frames("cli-export-standard-4snakes.jsonl")[5]
    big = patient(copy.deepcopy(frame))
    big["board"].update(width=19, height=19)
    status, reply = app.handle("POST", "/move", json.dumps(big).encode())
    assert status == 200 and app.counters["bot_moves"] == 1 and not player.policy.seen


def test_a_legacy_model_keeps_its_snake_slots_after_snakes_die(shared: Path) -> None:
    policy = FixedPolicy((13, 13, 5))
    app = SnakeApp(ModelPlayer(policy, {**TINY_CONFIG, "encoder": "bordered-51s"}), safety=NO_SEARCH)
    frames = recorded_frames("cli-export-standard-4snakes.jsonl")
    you = frames[0]["board"]["snakes"][0]
    app.handle("POST", "/start", json.dumps({**frames[0], "you": you}).encode())
    late = frames[-2]  # three snakes left
    assert len(late["board"]["snakes"]) == 3
    status, _ = app.handle("POST", "/move", json.dumps(patient({**late, "you": you})).encode())
    assert status == 200 and app.counters["bot_moves"] == 0 and policy.seen[-1].shape == (1, 13, 13, 5)


def test_the_model_player_feeds_the_policy_its_encoder_view_and_the_mask(shared: Path, model_dir: Path) -> None:
    player = load_model(model_dir)
    frame = recorded_frames("cli-export-standard-4snakes.jsonl")[12]
    req = parse_move({**frame, "you": frame["board"]["snakes"][1]})
    prefs = player.preferences(req.games, req.you, player.plan(req.settings, 4))
    obs = make_encoder("egocentric").encode(req.games)[0, req.you]
    logits = player.policy.logits(obs, action_mask(req.games)[0, req.you][None])[0]
    expected = np.exp(logits - logits.max())
    np.testing.assert_allclose(prefs, expected / expected.sum(), rtol=1e-5)
    assert isinstance(player.plan(req.settings, 4).encoder, EgocentricEncoder)


# ---------------------------------------------------------------- deadlines


class SleepyPolicy(FixedPolicy):
    """A policy whose forward pass (and value head, for a search) sleeps ``seconds``: far past any move deadline."""

    has_value = True

    def __init__(self, obs_shape: tuple[int, ...], seconds: float, *, sleepy_logits: bool = True):
        super().__init__(obs_shape)
        self.seconds, self.sleepy_logits = seconds, sleepy_logits

    def logits(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.sleepy_logits:
            time.sleep(self.seconds)
        return super().logits(obs, mask)

    def evaluate(self, obs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        time.sleep(self.seconds)
        return super().logits(obs, mask), np.zeros(len(obs))


def _timed_move(app: SnakeApp, body: dict) -> tuple[str, float]:
    """(the move, seconds from the request's arrival to the reply), once the kernels that read a board and pick the
    fallback are loaded (numba's cache), as the server's warm-up does before the first game."""
    req = parse_move(body)
    SafetyLayer().choose(req.games, req.you, np.full(4, 0.25))
    received = time.perf_counter()
    reply = app.move(body, received)
    return reply["move"], time.perf_counter() - received


def test_a_model_slower_than_the_deadline_is_abandoned_and_the_fallback_sent_in_time(shared: Path) -> None:
    app = SnakeApp(ModelPlayer(SleepyPolicy((10, 21, 21), 2.0), TINY_CONFIG), safety=NO_SEARCH)
    body = _set(_valid_body(), "game.timeout", 300)  # deadline: 300 - 100 ms margin after arrival
    move, seconds = _timed_move(app, body)
    assert seconds < 0.3 and app.counters["deadline_moves"] == 1 and app.counters["moves"] == 1
    assert_not_avoidably_fatal(body, move)  # the safety layer's own pick


def test_a_search_slower_than_the_deadline_leaves_the_move_to_the_safety_layer_in_time(shared: Path) -> None:
    policy = SleepyPolicy((10, 21, 21), 2.0, sleepy_logits=False)  # quick policy, every search level too slow
    app = SnakeApp(ModelPlayer(policy, TINY_CONFIG), safety=NO_SEARCH, search=NetworkSearch(policy), search_ms=250)
    body = _set(_valid_body(), "game.timeout", 300)
    move, seconds = _timed_move(app, body)
    assert seconds < 0.3 and app.counters["deadline_moves"] == 1 and app.counters["searched_moves"] == 0
    assert len(policy.seen) == 1  # the policy's preferences were in: the layer chose among them
    assert_not_avoidably_fatal(body, move)


def test_work_abandoned_at_the_deadline_does_not_pile_up(shared: Path) -> None:
    app = SnakeApp(ModelPlayer(SleepyPolicy((10, 21, 21), 0.5), TINY_CONFIG), safety=NO_SEARCH, workers=2)
    body = _set(_valid_body(), "game.timeout", 250)
    with ThreadPoolExecutor(12) as pool:  # twelve games at once against two workers, each busy for 0.5 s
        timings = list(pool.map(lambda _: _timed_move(app, body), range(12)))
    assert all(seconds < 0.25 for _, seconds in timings)
    assert app.counters["deadline_moves"] == 12
    deadline = time.monotonic() + 10
    while app._queued:  # the waiting moves are dropped as soon as a worker finds them past their deadline
        assert time.monotonic() < deadline, "abandoned moves were still queued"
        time.sleep(0.05)
    assert len(app.model.policy.seen) == 2  # only the two that found a free worker in time were thought about


def test_moves_beyond_the_queue_bound_get_the_fallback_without_waiting(shared: Path, monkeypatch) -> None:
    from battlesnake_server import app as app_module

    monkeypatch.setattr(app_module, "QUEUE_PER_WORKER", 2)
    app = SnakeApp(ModelPlayer(SleepyPolicy((10, 21, 21), 0.5), TINY_CONFIG), safety=NO_SEARCH, workers=2)
    body = _set(_valid_body(), "game.timeout", 250)
    with ThreadPoolExecutor(12) as pool:
        timings = sorted(seconds for _, seconds in pool.map(lambda _: _timed_move(app, body), range(12)))
    assert all(seconds < 0.25 for seconds in timings) and app._queued <= 4
    assert timings[7] < 0.1  # at least eight answered at once, without waiting for the deadline (150 ms)


def test_a_failing_model_is_logged_and_the_bot_proposes(shared: Path) -> None:
    class Broken(FixedPolicy):
        def logits(self, obs, mask):
            raise RuntimeError("the model is broken")

    app = SnakeApp(ModelPlayer(Broken((10, 21, 21)), TINY_CONFIG), safety=NO_SEARCH)
    status, reply = app.handle("POST", "/move", json.dumps(patient(_valid_body())).encode())
    assert status == 200 and reply["move"] in MOVE_NAMES
    assert app.counters["errors"] == 1 and app.counters["bot_moves"] == 1 and app.counters["deadline_moves"] == 0


# ---------------------------------------------------------------- the SageMaker handler functions


def test_the_sagemaker_handlers_turn_a_move_body_into_a_move(shared, model_dir: Path) -> None:
    app = model_fn(str(model_dir))
    frame = recorded_frames("cli-export-royale-shrink5.jsonl")[12]
    body = {**frame, "you": frame["board"]["snakes"][0]}
    data = input_fn(json.dumps(body), "application/json; charset=utf-8")
    text, content_type = output_fn(predict_fn(data, app), "*/*")
    assert content_type == "application/json"
    assert_not_avoidably_fatal(body, json.loads(text)["move"])


def test_the_sagemaker_handlers_refuse_bad_requests_with_a_status(shared: Path, model_dir: Path) -> None:
    app = model_fn(str(model_dir))
    with pytest.raises(InvocationError) as error:
        input_fn("{}", "text/csv")
    assert error.value.status_code == 415
    with pytest.raises(InvocationError) as error:
        input_fn(b"{not json", "application/json")
    assert error.value.status_code == 400 and "not valid JSON" in error.value.message
    with pytest.raises(InvocationError) as error:
        predict_fn(input_fn(json.dumps(_set(_valid_body(), "board.width", 10**6)), "application/json"), app)
    assert error.value.status_code == 400 and "board.width" in error.value.message


@pytest.mark.parametrize(("path", "value", "fragment"), [
    ("game.timeout", 10**400, "game.timeout must be at most 60000"),
    ("board.snakes.1.id", "i" * 10**5, "board.snakes[1].id is longer than 256"),
    ("you.name", "n" * 300, "you.name is longer than 256"),
    ("turn", 2**64, "turn must be in"),
    ("board.snakes.0.health", -(10**400), "board.snakes[0].health"),
])
def test_the_sagemaker_handlers_answer_out_of_bounds_input_with_a_400_naming_the_field(
        shared: Path, path: str, value: Any, fragment: str) -> None:
    data = input_fn(json.dumps(_set(_valid_body(), path, value)), "application/json")
    with pytest.raises(InvocationError) as error:
        predict_fn(data, _FUZZ_APP)
    assert error.value.status_code == 400 and fragment in error.value.message


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_FUZZ_PATHS), _json_values() | st.just(_DELETE)), min_size=1, max_size=3))
def test_fuzzed_bodies_through_the_sagemaker_handlers_get_a_move_or_a_400(shared, edits: list) -> None:
    body = _valid_body()
    for path, value in edits:
        try:
            _set(body, path, value)
        except (KeyError, IndexError, TypeError, ValueError):
            continue
    try:
        text, _ = output_fn(predict_fn(input_fn(json.dumps(body), "application/json"), _FUZZ_APP), "*/*")
    except InvocationError as e:
        assert e.status_code == 400
    else:
        assert json.loads(text)["move"] in MOVE_NAMES


def test_the_endpoint_falls_back_to_the_onnx_policy_when_the_torchscript_file_does_not_load(model_dir: Path,
                                                                                              tmp_path: Path) -> None:
    for name in ("policy.onnx", "config.json"):
        (tmp_path / name).write_bytes((model_dir / name).read_bytes())
    (tmp_path / "policy.pt").write_bytes(b"PK\x03\x04 not a torchscript archive")
    assert model_fn(str(tmp_path)).model.policy.format == "onnx"
    (tmp_path / "policy.onnx").write_bytes(b"garbage")
    with pytest.raises(ModelError, match="no policy"):
        model_fn(str(tmp_path))


def test_package_model_writes_the_policy_and_its_config_flat_in_a_tarball(model_dir: Path, tmp_path: Path) -> None:
    out = package_model(model_dir, tmp_path / "out" / "model.tar.gz")
    with tarfile.open(out) as tar:
        assert sorted(tar.getnames()) == ["config.json", "policy.onnx", "policy.pt"]
    with pytest.raises(ModelError):
        package_model(tmp_path / "nowhere", tmp_path / "x.tar.gz")


def test_a_request_error_is_a_value_error_with_an_http_status() -> None:
    error = RequestError("x" * 1000, status=413)
    assert isinstance(error, ValueError) and error.status == 413 and len(str(error)) == 400


def test_the_servers_game_defaults_are_the_training_runs_own() -> None:
    # One definition: TrainArgs takes its game fields' defaults from the policy format's PolicySpec.
    from battlesnake_rllib.config import TrainArgs

    spec = PolicySpec()
    assert spec == TrainArgs().policy_spec()
    assert spec.to_dict() == {key: getattr(TrainArgs(), key) for key in spec.to_dict()}
