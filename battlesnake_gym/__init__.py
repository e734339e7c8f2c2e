"""battlesnake_gym — the Battlesnake game: an official-rules batched engine, bots, rendering and conformance.

This package imports neither Ray nor SageMaker.
"""

from .engine import (
    BoardError,
    Games,
    GameSettings,
    RulesError,
    board_from_json,
    board_to_json,
)

__all__ = ["BoardError", "GameSettings", "Games", "RulesError", "board_from_json", "board_to_json"]
__version__ = "0.1.0"
