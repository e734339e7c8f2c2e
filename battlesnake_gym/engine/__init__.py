"""The official-rules Battlesnake engine: named rule stages over a batch of games held in numpy arrays."""

from .api import BoardError, api_board, board_from_json, board_to_json
from .game import Games, move_code
from .rulesets import MAPS, RULESETS, GameMap, GameSettings, RulesError, Ruleset, register_map
from .state import (
    CAUSE_NAMES,
    DOWN,
    INVALID_MOVE,
    LEFT,
    MOVE_NAMES,
    NO_MOVE,
    RIGHT,
    UP,
    GameState,
)

__all__ = [
    "BoardError", "CAUSE_NAMES", "DOWN", "GameMap", "GameSettings", "GameState", "Games", "INVALID_MOVE", "LEFT",
    "MAPS", "MOVE_NAMES", "NO_MOVE", "RIGHT", "RULESETS", "Ruleset", "RulesError", "UP", "api_board",
    "board_from_json", "board_to_json", "move_code", "register_map",
]
