"""What the arena server's tests share (test_server*.py, test_search.py, test_ladder.py): request bodies, boards
from pictures, recorded official requests, stand-in policies, and a tiny untrained exported policy
(``exported_model``, written once per test session in a subprocess, so the server under test runs in a process
without Ray, as it does in the arena; the ``model_dir`` fixture of conftest.py gives its folder)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

from battlesnake_gym.engine import MOVE_NAMES, UP, Games, GameSettings, board_from_json
from battlesnake_gym.observations import action_mask
from battlesnake_server.request import MAX_TIMEOUT_MS, parse_move
from battlesnake_server.safety import SafetyLayer

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


def valid_body() -> dict:
    return copy.deepcopy(recorded_frames("cli-export-standard-4snakes.jsonl")[10])


def set_field(body: dict, path: str, value: Any) -> dict:
    *parents, last = path.split(".")
    node = body
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return body


DELETE = object()


def json_values() -> st.SearchStrategy:
    huge = st.sampled_from([2**31, 2**32, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**400, -(10**400), 60_001])
    scalars = (st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.integers() | huge | st.floats()
               | st.text(max_size=8) | st.text(min_size=257, max_size=2000))
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6),
                                                                                              inner, max_size=4),
                        max_leaves=12)


def field_paths(node: Any, prefix: str = "") -> list[str]:
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, child in items:
        path = f"{prefix}.{key}" if prefix else str(key)
        out.append(path)
        out += field_paths(child, path)
    return out


FUZZ_PATHS = field_paths(recorded_frames("cli-export-standard-4snakes.jsonl")[10]) if SAMPLES.is_dir() else ["turn"]


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
