"""Layers import downward only: the game package never imports training or platform code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_GAME = ("ray", "sagemaker", "torch", "rllib_src", "sagemaker_rl", "boto3", "battlesnake_rl")
# The platform layer is generic: it knows nothing of the game, the training package, the server or the CLI.
FORBIDDEN_IN_PLATFORM = ("battlesnake_gym", "battlesnake_policy", "battlesnake_rllib", "battlesnake_server",
                         "battlesnake_rl")
# The policy format sits between the game and its users: torch (and onnxruntime), never Ray or what uses it.
FORBIDDEN_IN_POLICY = ("ray", "sagemaker", "sagemaker_rl", "boto3", "battlesnake_rllib", "battlesnake_server",
                       "battlesnake_rl")
# Training reaches SageMaker only through sagemaker_rl, and knows nothing of the server or the CLI.
FORBIDDEN_IN_TRAINING = ("sagemaker", "boto3", "battlesnake_server", "battlesnake_rl")
# The arena server loads exported policies without Ray (through battlesnake_policy, never the training package) and
# never talks to SageMaker itself.
FORBIDDEN_IN_SERVER = ("ray", "sagemaker", "sagemaker_rl", "boto3", "battlesnake_rllib", "battlesnake_rl")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _offenders(folder: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {str(path.relative_to(REPO)): sorted(_imports(path) & set(forbidden))
             for path in (REPO / folder).rglob("*.py")}
    return {k: v for k, v in found.items() if v}


def test_the_game_package_imports_neither_training_nor_platform_code() -> None:
    assert _offenders("battlesnake_gym", FORBIDDEN_IN_GAME) == {}


def test_training_reaches_sagemaker_only_through_the_platform_layer() -> None:
    assert _offenders("rllib_src", FORBIDDEN_IN_TRAINING) == {}


def test_the_platform_layer_imports_nothing_of_the_game_training_or_server() -> None:
    assert _offenders("rllib_common/sagemaker_rl", FORBIDDEN_IN_PLATFORM) == {}


def test_the_policy_format_imports_neither_ray_nor_training_nor_the_server() -> None:
    assert _offenders("battlesnake_policy", FORBIDDEN_IN_POLICY) == {}


def test_the_arena_server_imports_neither_ray_nor_the_sagemaker_sdk() -> None:
    assert _offenders("battlesnake_server", FORBIDDEN_IN_SERVER) == {}


def _sources() -> list[Path]:
    skip = {".venv", ".git", "runs", "build", "node_modules"}
    return [p for p in REPO.rglob("*.py") if not skip & set(p.relative_to(REPO).parts)]


def test_free_ports_moto_servers_and_the_training_modes_are_each_defined_in_one_place() -> None:
    """The platform's lowest modules serve every user (the platform, the Docker scripts, the tests); the launcher and
    the local runner plan the modes with one planner."""
    patterns = {"free port": re.compile(r"\.bind\(\([^()]*,\s*0\)\)"),
                "moto server": re.compile(r"ThreadedMotoServer\("), "modes": re.compile(r"^MODES = \(", re.M)}
    found = {str(p.relative_to(REPO)): [what for what, pattern in patterns.items()
                                        if pattern.search(p.read_text(errors="replace"))]
             for p in _sources()}
    assert {k: v for k, v in found.items() if v} == {"rllib_common/sagemaker_rl/net.py": ["free port"],
                                                     "rllib_common/sagemaker_rl/standins.py": ["moto server"],
                                                     "rllib_common/sagemaker_rl/modes.py": ["modes"]}
