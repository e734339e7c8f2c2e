"""``Games``: a batch of official-rules games, set up and stepped together by the compiled rule stages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .rng import seeds_from
from .rulesets import GameSettings, RulesError
from .starts import ERR_NO_ROOM_FOR_FOOD, ERR_NO_ROOM_FOR_SNAKE, ERR_TOO_MANY_SNAKES, setup_games
from .state import ALIVE, INVALID_MOVE, MOVE_NAMES, NO_MOVE, GameState, allocate, copy_state, with_capacity
from .turn import ERR_CAPACITY, ERR_MISSING_MOVE, OK, finish_turn, games_over, step_games

_SETUP_ERRORS = {
    ERR_TOO_MANY_SNAKES: "too many snakes for the start placement",
    ERR_NO_ROOM_FOR_SNAKE: "no free start cell left for a snake",
    ERR_NO_ROOM_FOR_FOOD: "no room for the starting food",
}
_MOVE_CODES = {name: code for code, name in enumerate(MOVE_NAMES)}


def _generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise RulesError(f"seed must be None, a non-negative integer or a numpy Generator, got {seed!r}")
    return np.random.default_rng(seed)


def move_code(move: str) -> int:
    """The action index of a move string; anything but exactly up/down/left/right is INVALID_MOVE."""
    return _MOVE_CODES.get(move, INVALID_MOVE) if isinstance(move, str) else INVALID_MOVE


class Games:
    """``batch_size`` games of one ruleset, map and settings, each with ``num_snakes`` snakes.

    State lives in ``self.state`` (a ``GameState`` of numpy arrays, see ``state.py``). ``step`` runs one official turn
    (pipeline, map post-update, ``turn += 1``) on every game at once; a single game is a batch of one.

    Randomness: every game has its own stream, seeded from ``seed`` (through ``numpy.random.default_rng``) or from
    explicit per-game seeds in ``reset``. A game's course depends only on its seed and its moves, never on the rest
    of the batch.

    Example::

        games = Games(GameSettings(ruleset="standard"), num_snakes=4, batch_size=1024, seed=0)
        over = games.step(np.zeros((1024, 4), np.int8))   # everyone moves up
    """

    def __init__(self, settings: GameSettings | None = None, num_snakes: int = 4, batch_size: int = 1,
                 seed: int | np.random.Generator | None = None, *, _state: GameState | None = None):
        self.settings = settings = settings if settings is not None else GameSettings()
        if not isinstance(settings, GameSettings):
            raise RulesError(f"settings must be a GameSettings, got {type(settings).__name__}")
        rules, game_map = settings.rules, settings.game_map
        self._params = settings.params()
        self._map_ids = game_map.post_update_ids
        self._turns, self._offsets, self._cells = game_map.schedule_arrays(settings)
        self._grows_every_turn = rules.always_grow
        self._place_food = game_map.setup_food and not rules.no_food
        self._generator = _generator(seed)
        if _state is not None:
            self.state = _state
            self._set_stages()
            return
        for name, value, lo in (("num_snakes", num_snakes, 1), ("batch_size", batch_size, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
                raise RulesError(f"{name} must be an integer >= {lo}, got {value!r}")
        most = settings.max_snakes()
        if num_snakes > most:
            raise RulesError(f"num_snakes={num_snakes} is more than the {most} start cells of a "
                             f"{settings.width}x{settings.height} board")
        cells = settings.width * settings.height
        self.state = allocate(int(batch_size), int(num_snakes), body_capacity=cells + 8,
                              food_capacity=cells + 4, hazard_capacity=max(1, settings.hazard_capacity()))
        self._set_stages()
        self.reset(seeds=seeds_from(self._generator, self.batch_size))

    def _set_stages(self) -> None:
        stages = self.settings.rules.stages_for(self.num_snakes)
        self.stages: tuple[str, ...] = stages
        self._stage_ids = self.settings.rules.stage_ids(self.num_snakes)
        self._game_over_id = self._stage_ids[:1].copy()

    @classmethod
    def from_state(cls, settings: GameSettings, state: GameState,
                   seed: int | np.random.Generator | None = None) -> Games:
        """Wrap existing boards (e.g. from ``api.board_from_json``); the games keep their rng states."""
        if not isinstance(state, GameState):
            raise RulesError(f"state must be a GameState, got {type(state).__name__}")
        needed_hazards = state.hazard_count.max(initial=0) + settings.hazard_capacity()
        cells = settings.width * settings.height
        state = with_capacity(state, body=int(state.length.max(initial=0)) + cells + 8,
                              food=int(state.food_count.max(initial=0)) + cells + 4, hazards=int(needed_hazards) + 1)
        return cls(settings, seed=seed, _state=state)

    # ------------------------------------------------------------------ properties

    @property
    def batch_size(self) -> int:
        return self.state.batch_size

    @property
    def num_snakes(self) -> int:
        return self.state.num_snakes

    @property
    def params(self) -> np.ndarray:
        """The settings as the int64 vector the compiled stages read (see ``state.P_*``)."""
        return self._params

    def alive(self) -> np.ndarray:
        """(B, S) bool: snakes still in the game."""
        return self.state.elim_cause == ALIVE

    def finished(self) -> np.ndarray:
        """(B,) bool: games whose next step would end them at the game-over stage (so: games that are over)."""
        out = np.empty(self.batch_size, np.bool_)
        games_over(self.state, self._game_over_id, out)
        return out

    def copy(self) -> Games:
        clone = Games.__new__(Games)
        clone.__dict__.update(self.__dict__)
        clone.state = copy_state(self.state)
        return clone

    # ------------------------------------------------------------------ set-up and stepping

    def _mask(self, mask) -> np.ndarray:
        if mask is None:
            return np.ones(self.batch_size, np.bool_)
        mask = np.asarray(mask)
        if mask.shape != (self.batch_size,) or mask.dtype != np.bool_:
            raise RulesError(f"mask must be a bool array of shape ({self.batch_size},), "
                             f"got {mask.dtype} {mask.shape}")
        return mask

    def reset(self, mask=None, seeds: Sequence[int] | np.ndarray | None = None) -> None:
        """New official starting boards for the games in ``mask`` (all by default).

        ``seeds`` (one per reset game) reseeds those games; without it a game continues its own stream, so a
        batch slot's sequence of games is fixed by its first seed (drawn from ``seed`` when the batch is made).
        """
        mask = self._mask(mask)
        if seeds is not None:
            seeds = np.asarray(seeds)
            if seeds.shape != (int(mask.sum()),) or seeds.dtype.kind not in "iu" or (seeds < 0).any():
                raise RulesError(f"seeds must be {int(mask.sum())} non-negative integers (one per reset game), "
                                 f"got {seeds!r}")
            self.state.rng[mask] = seeds.astype(np.uint64)
        errors = np.zeros(self.batch_size, np.int8)
        setup_games(self.state, self._params, mask, self._place_food, errors)
        bad = np.flatnonzero(errors)
        if bad.size:
            s = self.settings
            raise RulesError(f"cannot set up a {s.width}x{s.height} {s.ruleset} game with {self.num_snakes} snakes: "
                             f"{_SETUP_ERRORS[int(errors[bad[0]])]} (game {bad[0]})")

    def step(self, moves, mask=None, *, post_update: bool = True) -> np.ndarray:
        """Play one turn.

        Args:
            moves: (B, S) integer actions, 0 up, 1 down, 2 left, 3 right; 4 (INVALID_MOVE) stands for an invalid
                move string; -1 (NO_MOVE) is allowed only for snakes already eliminated.
            mask: (B,) bool, the games to step (all by default); the others are left untouched.
            post_update: False stops after the ruleset's pipeline (what the conformance traces call ``after``);
                then call ``finish_turn`` with the same mask to run the map's post-update and advance the turn.
        Returns:
            (B,) bool: games whose game-over stage ended them on this step (their board is unchanged).
        """
        moves = self._moves_array(moves)
        stepped = self._mask(mask)
        over = np.zeros(self.batch_size, np.bool_)
        while True:
            status = step_games(self.state, moves, self._params, self._stage_ids, self._map_ids, self._turns,
                                self._offsets, self._cells, stepped, over, self._grows_every_turn, post_update)
            if status == OK:
                return over
            if status == ERR_CAPACITY:
                st = self.state
                self.state = with_capacity(st, body=2 * st.body.shape[2], food=st.food.shape[1],
                                           hazards=st.hazards.shape[1])
                continue
            if status == ERR_MISSING_MOVE:
                b, s = np.argwhere((self.state.elim_cause == ALIVE) & (moves < 0) & stepped[:, None])[0]
                raise RulesError(f"snake {s} of game {b} is alive but has no move (got {moves[b, s]})")
            raise RuntimeError(f"step_games returned unknown status {status}")

    def finish_turn(self, mask=None) -> None:
        """The map's post-update (food spawning, hazards) and ``turn += 1``; see ``step(post_update=False)``."""
        finish_turn(self.state, self._params, self._map_ids, self._turns, self._offsets, self._cells,
                    self._mask(mask))

    def step_named(self, moves: Mapping[str, str], snake_ids: Sequence[str], *, post_update: bool = True) -> bool:
        """Step a single game with API move strings keyed by snake id (invalid strings follow the rules)."""
        if self.batch_size != 1:
            raise RulesError(f"step_named steps a single game; this batch holds {self.batch_size}")
        unknown = set(moves) - set(snake_ids)
        if unknown:
            raise RulesError(f"moves given for unknown snake ids: {sorted(unknown)}")
        if len(snake_ids) != self.num_snakes:
            raise RulesError(f"snake_ids names {len(snake_ids)} snakes, the game has {self.num_snakes}")
        alive = self.alive()[0]
        missing = [sid for s, sid in enumerate(snake_ids) if alive[s] and sid not in moves]
        if missing:
            raise RulesError(f"snake {missing[0]!r} is alive but has no move")
        codes = np.array([[move_code(moves[i]) if i in moves else NO_MOVE for i in snake_ids]], np.int8)
        return bool(self.step(codes, post_update=post_update)[0])

    def _moves_array(self, moves) -> np.ndarray:
        moves = np.asarray(moves)
        shape = (self.batch_size, self.num_snakes)
        if moves.shape != shape:
            raise RulesError(f"moves must have shape {shape} (games, snakes), got {moves.shape}")
        if moves.dtype.kind not in "iu":
            raise RulesError(f"moves must be integers (0 up, 1 down, 2 left, 3 right), got dtype {moves.dtype}")
        low, high = (moves.min(), moves.max()) if moves.size else (0, 0)
        if low < NO_MOVE or high > INVALID_MOVE:
            bad = moves[(moves < NO_MOVE) | (moves > INVALID_MOVE)][0]
            raise RulesError(f"move {bad} is not an action (0 up, 1 down, 2 left, 3 right, 4 invalid, -1 none)")
        return np.ascontiguousarray(moves, dtype=np.int8)
