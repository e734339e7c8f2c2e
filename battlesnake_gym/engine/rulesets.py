"""Rulesets (ordered stage lists), maps (setup and post-update behaviour) and validated game settings."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from .map_stages import MAP_STAGE_IDS, STAGE_SPAWN_FOOD_STANDARD, STAGE_SPAWN_HAZARDS_SCHEDULED
from .rule_stages import (
    STAGE_ELIMINATION_STANDARD,
    STAGE_FEED_SNAKES_STANDARD,
    STAGE_GAME_OVER_SOLO_SNAKE,
    STAGE_GAME_OVER_STANDARD,
    STAGE_HAZARD_DAMAGE_STANDARD,
    STAGE_IDS,
    STAGE_MODIFY_SNAKES_ALWAYS_GROW,
    STAGE_MOVEMENT_STANDARD,
    STAGE_MOVEMENT_WRAP_BOUNDARIES,
    STAGE_SPAWN_FOOD_NO_FOOD,
    STAGE_SPAWN_HAZARDS_SHRINK_MAP,
    STAGE_STARVATION_STANDARD,
)
from .state import (
    NUM_PARAMS,
    P_FOOD_SPAWN_CHANCE,
    P_HAZARD_DAMAGE,
    P_HEIGHT,
    P_MINIMUM_FOOD,
    P_SHRINK_EVERY,
    P_WIDTH,
)


class RulesError(ValueError):
    """Bad settings, boards or moves: the message names the field and the value."""


@dataclass(frozen=True)
class Ruleset:
    """A game mode: the official pipeline of named stages, run in order on a copy of the board.

    What a mode does differently is read from its stages, never set beside them: ``wrapped``, ``no_food``,
    ``always_grow``, ``constrictor`` and ``shrinks_map`` say which of the stages that change the standard game it
    holds.
    """

    name: str
    stages: tuple[str, ...]

    def __post_init__(self) -> None:
        unknown = [s for s in self.stages if s not in STAGE_IDS]
        if unknown:
            raise RulesError(f"ruleset {self.name!r}: unknown stages {unknown}; known: {sorted(STAGE_IDS)}")

    @property
    def wrapped(self) -> bool:
        """Heads that leave the board re-enter on the opposite edge (``movement.wrap_boundaries``)."""
        return STAGE_MOVEMENT_WRAP_BOUNDARIES in self.stages

    @property
    def no_food(self) -> bool:
        """All food is removed every turn, so none is placed at setup either (``spawn_food.no_food``)."""
        return STAGE_SPAWN_FOOD_NO_FOOD in self.stages

    @property
    def always_grow(self) -> bool:
        """Every snake grows every turn (``modify_snakes.always_grow``)."""
        return STAGE_MODIFY_SNAKES_ALWAYS_GROW in self.stages

    @property
    def constrictor(self) -> bool:
        """A constrictor mode: both of the official constrictor stages (no food, every snake grows every turn)."""
        return self.no_food and self.always_grow

    @property
    def shrinks_map(self) -> bool:
        """Hazards close in from the board's sides (``spawn_hazards.shrink_map``)."""
        return STAGE_SPAWN_HAZARDS_SHRINK_MAP in self.stages

    def stages_for(self, num_snakes: int) -> tuple[str, ...]:
        """The stages for a game of ``num_snakes``: like the official CLI, a one-snake game of any mode ends only
        when its snake is gone (the solo game-over stage)."""
        if num_snakes < 2:
            return _swap(self.stages, STAGE_GAME_OVER_STANDARD, STAGE_GAME_OVER_SOLO_SNAKE)
        return self.stages

    def stage_ids(self, num_snakes: int) -> np.ndarray:
        return np.array([STAGE_IDS[s] for s in self.stages_for(num_snakes)], np.int64)


_STANDARD = (
    STAGE_GAME_OVER_STANDARD,
    STAGE_MOVEMENT_STANDARD,
    STAGE_STARVATION_STANDARD,
    STAGE_HAZARD_DAMAGE_STANDARD,
    STAGE_FEED_SNAKES_STANDARD,
    STAGE_ELIMINATION_STANDARD,
)
_CONSTRICTOR_TAIL = (STAGE_SPAWN_FOOD_NO_FOOD, STAGE_MODIFY_SNAKES_ALWAYS_GROW)


def _swap(stages: tuple[str, ...], old: str, new: str) -> tuple[str, ...]:
    return tuple(new if s == old else s for s in stages)


_WRAPPED = _swap(_STANDARD, STAGE_MOVEMENT_STANDARD, STAGE_MOVEMENT_WRAP_BOUNDARIES)
RULESETS: dict[str, Ruleset] = {
    r.name: r
    for r in (
        Ruleset("standard", _STANDARD),
        Ruleset("solo", _swap(_STANDARD, STAGE_GAME_OVER_STANDARD, STAGE_GAME_OVER_SOLO_SNAKE)),
        Ruleset("royale", _STANDARD + (STAGE_SPAWN_HAZARDS_SHRINK_MAP,)),
        Ruleset("constrictor", _STANDARD + _CONSTRICTOR_TAIL),
        Ruleset("wrapped", _WRAPPED),
        Ruleset("wrapped_constrictor", _WRAPPED + _CONSTRICTOR_TAIL),
    )
}

#: A hazard schedule: for a board size and settings, the cells appended after the step from each turn.
HazardSchedule = Callable[[int, int, "GameSettings"], Mapping[int, list[tuple[int, int]]]]


@dataclass(frozen=True)
class GameMap:
    """A map: whether it places food at setup, and its post-update stages (food spawning, hazards).

    ``hazard_schedule`` lets a map add hazards without compiled code: a function of (width, height, settings) that
    returns ``{turn: [(x, y), ...]}``; after the step from board turn ``t`` those cells are appended to the hazards
    (entries may repeat: stacked hazards). Register new maps with ``register_map``.
    """

    name: str
    setup_food: bool = True
    post_update: tuple[str, ...] = (STAGE_SPAWN_FOOD_STANDARD,)
    hazard_schedule: HazardSchedule | None = None
    description: str = ""

    def schedule_arrays(self, settings: GameSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The hazard schedule as arrays: turns (T,) sorted, offsets (T+1,) and cells (K, 2), all int64; the cells
        appended after the step from board turn ``turns[i]`` are ``cells[offsets[i]:offsets[i + 1]]``."""
        table = {} if self.hazard_schedule is None else self.hazard_schedule(settings.width, settings.height, settings)
        turns = sorted(table)
        offsets = np.zeros(len(turns) + 1, np.int64)
        cells: list[tuple[int, int]] = []
        for i, t in enumerate(turns):
            for x, y in table[t]:
                if not (0 <= x < settings.width and 0 <= y < settings.height):
                    raise RulesError(f"map {self.name!r}: scheduled hazard ({x}, {y}) is off the "
                                     f"{settings.width}x{settings.height} board")
                cells.append((x, y))
            offsets[i + 1] = len(cells)
        return np.array(turns, np.int64), offsets, np.array(cells, np.int64).reshape(-1, 2)

    @property
    def spawns_food(self) -> bool:
        """Food spawns after every turn (``spawn_food.standard``)."""
        return STAGE_SPAWN_FOOD_STANDARD in self.post_update

    @property
    def shrinks_map(self) -> bool:
        """Hazards close in from the board's sides (``spawn_hazards.shrink_map``)."""
        return STAGE_SPAWN_HAZARDS_SHRINK_MAP in self.post_update

    @property
    def post_update_ids(self) -> np.ndarray:
        ids = list(self.post_update)
        if self.hazard_schedule is not None and STAGE_SPAWN_HAZARDS_SCHEDULED not in ids:
            ids.append(STAGE_SPAWN_HAZARDS_SCHEDULED)
        return np.array([MAP_STAGE_IDS[s] for s in ids], np.int64)

    def hazard_capacity(self, settings: GameSettings) -> int:
        """Most hazard entries this map can make (a royale rebuild fills the board; schedules append)."""
        cap = settings.width * settings.height if self.shrinks_map else 0
        if self.hazard_schedule is not None:
            cap += len(self.schedule_arrays(settings)[2])
        return cap


def sinkholes_schedule(width: int, height: int, settings: GameSettings) -> dict[int, list[tuple[int, int]]]:
    """Sinkholes: a hazard grows from the centre in rings; inner cells stack once per growth step."""
    every = settings.shrink_every_n_turns if settings.shrink_every_n_turns > 0 else 10
    max_rings = 3 if (width, height) == (7, 7) else 7 if (width, height) == (19, 19) else 5
    cx, cy = width // 2, height // 2
    table: dict[int, list[tuple[int, int]]] = {1: [(cx, cy)]}
    for r in range(1, max_rings):  # ring r grows after turn r * every + 1
        table[r * every + 1] = [
            (x, y)
            for x in range(cx - r, cx + r + 1)
            for y in range(cy - r, cy + r + 1)
            if abs(x - cx) != r or abs(y - cy) != r  # not one of the 4 corners
            if 0 <= x < width and 0 <= y < height
        ]
    return table


MAPS: dict[str, GameMap] = {}


def register_map(game_map: GameMap) -> GameMap:
    if game_map.name in MAPS:
        raise RulesError(f"map {game_map.name!r} is already registered")
    unknown = [s for s in game_map.post_update if s not in MAP_STAGE_IDS]
    if unknown:
        raise RulesError(f"map {game_map.name!r}: unknown post-update stages {unknown}; known: {sorted(MAP_STAGE_IDS)}")
    MAPS[game_map.name] = game_map
    return game_map


register_map(GameMap("standard", description="official food spawning, no hazards"))
register_map(GameMap("empty", setup_food=False, post_update=(), description="no food, no hazards"))
register_map(GameMap("royale", post_update=(STAGE_SPAWN_FOOD_STANDARD, STAGE_SPAWN_HAZARDS_SHRINK_MAP),
                     description="standard food; hazards close in from random sides every shrinkEveryNTurns"))
register_map(GameMap("sinkholes", hazard_schedule=sinkholes_schedule,
                     description="standard food; stacked hazard rings grow from the centre"))

MIN_BOARD, MAX_BOARD = 3, 128
MAX_SETTING = 2**31 - 1  # settings go into int32/int64 arithmetic


def _check_int(name: str, value, lo: int | None = None, hi: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise RulesError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if lo is not None and value < lo:
        raise RulesError(f"{name} must be >= {lo}, got {value}")
    if hi is not None and value > hi:
        raise RulesError(f"{name} must be <= {hi}, got {value}")


@dataclass(frozen=True)
class GameSettings:
    """Everything that defines a game besides its snakes. Defaults are what players meet in the arena (CLI).

    Names are pythonic here; ``from_api``/``to_api`` map them to the Battlesnake API's ruleset settings.
    """

    width: int = 11  # cells; x in [0, width)
    height: int = 11  # cells; y in [0, height)
    ruleset: str = "standard"
    map: str = "standard"
    food_spawn_chance: int = 15  # percent; a food spawns with probability (chance - 1)% when food >= minimum
    minimum_food: int = 1  # food count topped up to this after every turn
    hazard_damage_per_turn: int = 14  # API: hazardDamagePerTurn
    shrink_every_n_turns: int = 25  # API: royale.shrinkEveryNTurns

    def __post_init__(self) -> None:
        for name in ("ruleset", "map"):
            if not isinstance(getattr(self, name), str):
                raise RulesError(f"{name} must be a name (a string), got {getattr(self, name)!r}")
        if self.ruleset not in RULESETS:
            raise RulesError(f"unknown ruleset {self.ruleset!r}; known: {', '.join(RULESETS)}")
        if self.map not in MAPS:
            raise RulesError(f"unknown map {self.map!r}; known: {', '.join(MAPS)}")
        _check_int("width", self.width, MIN_BOARD, MAX_BOARD)
        _check_int("height", self.height, MIN_BOARD, MAX_BOARD)
        _check_int("food_spawn_chance", self.food_spawn_chance, 0, 100)
        _check_int("minimum_food", self.minimum_food, 0, self.width * self.height)
        _check_int("hazard_damage_per_turn", self.hazard_damage_per_turn, 0, MAX_SETTING)
        _check_int("shrink_every_n_turns", self.shrink_every_n_turns, 0, MAX_SETTING)
        if self.shrink_every_n_turns < 1 and (self.rules.shrinks_map or self.game_map.shrinks_map):
            raise RulesError(f"shrink_every_n_turns must be >= 1 for royale, got {self.shrink_every_n_turns}")

    @property
    def rules(self) -> Ruleset:
        return RULESETS[self.ruleset]

    @property
    def game_map(self) -> GameMap:
        return MAPS[self.map]

    def replace(self, **changes) -> GameSettings:
        return dataclasses.replace(self, **changes)

    def params(self) -> np.ndarray:
        p = np.zeros(NUM_PARAMS, np.int64)
        p[P_WIDTH], p[P_HEIGHT] = self.width, self.height
        p[P_FOOD_SPAWN_CHANCE], p[P_MINIMUM_FOOD] = self.food_spawn_chance, self.minimum_food
        p[P_HAZARD_DAMAGE], p[P_SHRINK_EVERY] = self.hazard_damage_per_turn, self.shrink_every_n_turns
        return p

    def to_api(self) -> dict:
        """The ruleset settings object of the Battlesnake API."""
        return {
            "foodSpawnChance": self.food_spawn_chance,
            "minimumFood": self.minimum_food,
            "hazardDamagePerTurn": self.hazard_damage_per_turn,
            "royale": {"shrinkEveryNTurns": self.shrink_every_n_turns},
        }

    @classmethod
    def from_api(cls, settings: Mapping, *, width: int, height: int, ruleset: str, map: str) -> GameSettings:
        """Settings from the API's ``ruleset.settings``. Absent values take the official engine's defaults."""
        if not isinstance(settings, Mapping):
            raise RulesError(f"ruleset settings must be an object, got {type(settings).__name__}")
        royale = settings.get("royale", {})
        if not isinstance(royale, Mapping):
            raise RulesError(f"settings.royale must be an object, got {royale!r}")
        # The official engine's defaults when a setting is absent (not the CLI's).
        return cls(
            width=width,
            height=height,
            ruleset=ruleset,
            map=map,
            food_spawn_chance=settings.get("foodSpawnChance", 0),
            minimum_food=settings.get("minimumFood", 0),
            hazard_damage_per_turn=settings.get("hazardDamagePerTurn", 0),
            shrink_every_n_turns=royale.get("shrinkEveryNTurns", 20),
        )

    def hazard_capacity(self) -> int:
        """Most hazard entries a game can hold: royale rebuilds (ruleset or map) fill the board, schedules append."""
        royale_rule = self.width * self.height if self.rules.shrinks_map else 0
        return royale_rule + self.game_map.hazard_capacity(self)

    def max_snakes(self) -> int:
        """How many snakes the official start placement supports on this board."""
        w, h = self.width, self.height
        cx, cy = (w - 1) // 2, (h - 1) // 2
        even_cells = sum(1 for x in range(w) for y in range(h) if (x + y) % 2 == 0 and (x, y) != (cx, cy))
        if w != h:
            return even_cells  # random placement
        if w >= 11:
            return 16  # fixed cells up to 8, quadrants up to 16
        if w >= 7:
            return max(8, even_cells)  # fixed cells up to 8, random beyond
        return min(8, even_cells)  # random, and never more than 8 on tiny boards
