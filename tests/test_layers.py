"""Layers import downward only: the game package never imports training or platform code."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_GAME = ("ray", "sagemaker", "torch", "rllib_src", "sagemaker_rl", "boto3", "battlesnake_rl")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_game_package_imports_neither_training_nor_platform_code() -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(_imports(path) & set(FORBIDDEN_IN_GAME))
        for path in (REPO / "battlesnake_gym").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
