"""The arena server's logic without the network, what is not in a file of its own: the layers it may import, the
recorded official requests, sessions and appearance, and the game defaults. The safety layer, bad input, the
players and deadlines, and the SageMaker handler functions have their own files (test_server_*.py); the helpers
they share, with the tiny exported policy, are in ``server_helpers``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from server_helpers import NO_SEARCH, REPO, assert_not_avoidably_fatal, patient, recorded_frames, set_field, valid_body

from battlesnake_policy import PolicySpec
from battlesnake_server.app import Appearance, SnakeApp
from battlesnake_server.players import load_model
from battlesnake_server.request import RequestError

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
        import battlesnake_server.serve
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


# ---------------------------------------------------------------- sessions and appearance


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _bodies(game_id: str) -> dict:
    body = valid_body()
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
    body = set_field(_bodies("g-long"), "board.snakes.2.id", "x" * 100_000)
    status, reply = app.handle("POST", "/start", json.dumps(body).encode())
    assert status == 400 and "board.snakes[2].id is longer than 256" in reply["error"]
    assert len(app.sessions) == 0


def test_get_root_tells_the_engine_the_configured_appearance() -> None:
    app = SnakeApp(appearance=Appearance(author="me", color="#ff8800", head="beluga", tail="bolt"))
    assert app.handle("GET", "/") == (200, {"apiversion": "1", "author": "me", "color": "#ff8800", "head": "beluga",
                                            "tail": "bolt", "version": "battlesnake-rl 0.1.0"})
    with pytest.raises(ValueError, match="color"):
        Appearance(color="orange")


# ---------------------------------------------------------------- requests and settings


def test_a_request_error_is_a_value_error_with_an_http_status() -> None:
    error = RequestError("x" * 1000, status=413)
    assert isinstance(error, ValueError) and error.status == 413 and len(str(error)) == 400


def test_the_servers_game_defaults_are_the_training_runs_own() -> None:
    # One definition: TrainArgs takes its game fields' defaults from the policy format's PolicySpec.
    from battlesnake_rllib.config import TrainArgs

    spec = PolicySpec()
    assert spec == TrainArgs().policy_spec()
    assert spec.to_dict() == {key: getattr(TrainArgs(), key) for key in spec.to_dict()}
