"""Single-agent Gymnasium environments: one learning snake (slot 0) against bots.

``BattlesnakeEnv`` is one game (``gymnasium.make("battlesnake_gym/Battlesnake-v0")``); ``BattlesnakeVectorEnv`` is a
native vector env over the batched engine, stepping ``num_envs`` games in one call and equal, game by game, to
``BattlesnakeEnv`` seeded alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from ..bots import make_bot
from ..engine import GameSettings, RulesError, board_to_json
from ..observations import ObservationEncoder
from ..render import render_text
from ..rewards import EVENTS, RewardConfig
from ..seating import Seating, opponent_names
from .core import BatchEnv, game_seeds, settings_from

LEARNER = 0  # the learning snake's slot; opponents fill the others


class _Opponents:
    """The bots of snakes 1.. of every game (``Seating.against``); each bot decides for all games at once."""

    def __init__(self, names: Sequence[str], seed: int | None):
        self.names = list(names)
        self._seating: Seating | None = None
        self.bots = {name: make_bot(name, seed) for name in dict.fromkeys(self.names)}

    def moves(self, games, learner_actions: np.ndarray) -> np.ndarray:
        if self._seating is None or self._seating.num_games != games.batch_size:
            self._seating = Seating.against("learner", self.names, len(self.names) + 1, games.batch_size)
        moves = np.empty((games.batch_size, games.num_snakes), np.int64)
        moves[self._seating.seats("learner")] = learner_actions  # snake LEARNER of every game
        self._seating.bot_moves(games, self.bots, moves)
        return np.where(moves < 0, 0, moves)


class BattlesnakeEnv(gym.Env):
    """One learning snake against bots on an official-rules board.

    ## Description
    The learner is snake 0 of a ``num_snakes`` game under the official rules of ``ruleset`` and ``map``; the other
    snakes are bots (``opponents``: a bot name for all, or one name per opponent; see ``battlesnake_gym.bots``).

    ## Action Space
    ``Discrete(4)``: 0 up, 1 down, 2 left, 3 right ((0, 0) is the bottom-left cell, up is y + 1).

    ## Observation Space
    ``Box(0, 255, encoder.shape(...), uint8)``: the encoder's view for snake 0 (default ``egocentric``). The moves
    that are not certainly fatal are in ``info["action_mask"]`` (``(4,) int8``) and ``action_masks()``. Default
    shape (11x11, ``egocentric``): ``(10, 21, 21)``.

    ## Rewards
    Weighted named events (``battlesnake_gym.rewards``); the ``default`` preset: +1 win, -1 death, +0.02 per food.

    ## Starting State
    The official start for the board size and snake count, the learner in slot 0.

    ## Episode End
    Terminated when the learner is eliminated or the game ends (it is the last snake, or, alone, never). Truncated
    when the board's turn reaches ``max_turns``.

    ## Arguments
    ``width``, ``height``, ``num_snakes``, ``ruleset``, ``map``, ``game_settings`` (other ``GameSettings`` fields),
    ``opponents``, ``encoder``, ``rewards``, ``max_turns`` (default 1000), ``render_mode`` ("ansi" or "rgb_array"),
    ``bot_seed`` (the bots' seed; their moves depend on it and on each game alone).

    ## Version History
    * v0: initial release.

    Example::

        env = gymnasium.make("battlesnake_gym/Battlesnake-v0", num_snakes=2, opponents="safe")
        obs, info = env.reset(seed=0)
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 8}

    def __init__(self, width: int = 11, height: int = 11, num_snakes: int = 4, ruleset: str = "standard",
                 map: str = "standard", game_settings: Mapping | None = None, opponents: str | Sequence[str] = "safe",
                 encoder: str | ObservationEncoder = "egocentric", rewards: str | Mapping | RewardConfig | None = None,
                 max_turns: int | None = 1000, render_mode: str | None = None, bot_seed: int = 0):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise RulesError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.render_mode = render_mode
        self.settings: GameSettings = settings_from(game_settings, width=width, height=height, ruleset=ruleset,
                                                    map=map)
        self._opponent_names = opponent_names(opponents, num_snakes)
        self._core = BatchEnv(self.settings, num_snakes=num_snakes, batch_size=1, encoder=encoder, rewards=rewards,
                              max_turns=max_turns)
        self._opponents = _Opponents(self._opponent_names, bot_seed)
        self.observation_space = self._core.encoder.space(self.settings, num_snakes)
        self.action_space = spaces.Discrete(4)
        self._done = True

    def action_masks(self) -> np.ndarray:
        """(4,) bool: moves that are not certainly fatal for the learner."""
        return self._core.action_mask[0, LEARNER].astype(bool)

    def _info(self, events: np.ndarray | None = None) -> dict:
        info = {"action_mask": self._core.action_mask[0, LEARNER].astype(np.int8),
                "turn": int(self._core.games.state.turn[0])}
        if events is not None:
            info["events"] = {name: int(events[i]) for i, name in enumerate(EVENTS) if events[i]}
        return info

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._core.reset(seeds=game_seeds(seed, 1))
        else:
            self._core.reset()
        self._done = False
        return self._core.obs[0, LEARNER].copy(), self._info()

    def step(self, action):
        if self._done:
            raise RulesError("the episode is over: call reset() before step()")
        if not self.action_space.contains(action):
            raise RulesError(f"action {action!r} is not in Discrete(4) (0 up, 1 down, 2 left, 3 right)")
        games = self._core.games
        moves = self._opponents.moves(games, np.array([int(action)]))
        result = self._core.step(moves)
        terminated = bool(result.terminated[0, LEARNER])
        truncated = bool(result.truncated[0, LEARNER])
        self._done = terminated or truncated
        return (self._core.obs[0, LEARNER].copy(), float(result.rewards[0, LEARNER]), terminated, truncated,
                self._info(result.events[0, LEARNER]))

    def render(self):
        if self.render_mode is None:
            return None
        board = board_to_json(self._core.games.state, self.settings.width, self.settings.height)
        if self.render_mode == "ansi":
            return render_text(board)
        from ..render import render_rgb

        return render_rgb(board)


class BattlesnakeVectorEnv(VectorEnv):
    """``num_envs`` games of ``BattlesnakeEnv`` stepped by the batched engine in one call.

    Sub-env i reset with ``seed + i`` plays exactly the game ``BattlesnakeEnv`` plays after ``reset(seed=seed + i)``.
    Autoreset is gymnasium's next-step mode: the step after an episode ends resets that game (its action is
    ignored, its reward is 0). Info holds ``action_mask`` (num_envs, 4) int8.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 16, width: int = 11, height: int = 11, num_snakes: int = 4,
                 ruleset: str = "standard", map: str = "standard", game_settings: Mapping | None = None,
                 opponents: str | Sequence[str] = "safe", encoder: str | ObservationEncoder = "egocentric",
                 rewards: str | Mapping | RewardConfig | None = None, max_turns: int | None = 1000,
                 bot_seed: int = 0):
        self.settings = settings_from(game_settings, width=width, height=height, ruleset=ruleset, map=map)
        self._opponent_names = opponent_names(opponents, num_snakes)
        self._core = BatchEnv(self.settings, num_snakes=num_snakes, batch_size=num_envs, encoder=encoder,
                              rewards=rewards, max_turns=max_turns)
        self.num_envs = self._core.batch_size
        self._opponents = _Opponents(self._opponent_names, bot_seed)
        self.single_observation_space = self._core.encoder.space(self.settings, num_snakes)
        self.single_action_space = spaces.Discrete(4)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self._needs_reset = np.zeros(self.num_envs, np.bool_)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            seeds = np.concatenate([game_seeds(seed + i, 1) for i in range(self.num_envs)])
            self._core.reset(seeds=seeds)
        else:
            self._core.reset()
        self._needs_reset[:] = False
        return self._core.obs[:, LEARNER].copy(), {"action_mask": self._core.action_mask[:, LEARNER].astype(np.int8)}

    def step(self, actions):
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or not self.action_space.contains(actions.astype(np.int64)):
            raise RulesError(f"actions must be {self.num_envs} moves in [0, 4), got {actions!r}")
        games = self._core.games
        resetting = self._needs_reset.copy()
        rewards = np.zeros(self.num_envs, np.float32)
        terminated = np.zeros(self.num_envs, np.bool_)
        truncated = np.zeros(self.num_envs, np.bool_)
        stepping = ~resetting
        if stepping.any():
            moves = self._opponents.moves(games, actions.astype(np.int64))
            result = self._core.step(moves, mask=stepping)
            rewards = np.where(stepping, result.rewards[:, LEARNER], 0.0).astype(np.float32)
            terminated = result.terminated[:, LEARNER] & stepping
            truncated = result.truncated[:, LEARNER] & stepping
        if resetting.any():
            self._core.reset(resetting)
        self._needs_reset = terminated | truncated
        info = {"action_mask": self._core.action_mask[:, LEARNER].astype(np.int8)}
        return self._core.obs[:, LEARNER].copy(), rewards, terminated, truncated, info
