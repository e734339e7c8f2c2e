"""PettingZoo parallel environment: every snake of one official-rules game is an agent."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from ..engine import GameSettings, RulesError, board_to_json
from ..observations import ObservationEncoder
from ..render import render_text
from ..rewards import EVENTS, RewardConfig
from .core import BatchEnv, game_seeds, settings_from


class BattlesnakeParallelEnv(ParallelEnv):
    """Battlesnake for PettingZoo: one official-rules game, each snake an agent.

    ## Description
    Snakes move at once on a ``width`` x ``height`` board under the official rules of ``ruleset`` and ``map`` (the
    engine of ``battlesnake_gym.engine``). The last snake alive wins (a one-snake game lasts while the snake lives).

    ## Action Space
    ``Discrete(4)`` per agent: 0 up, 1 down, 2 left, 3 right ((0, 0) is the bottom-left cell, up is y + 1).

    ## Observation Space
    With ``action_mask=True`` (default) a ``Dict``:

    | key | space | meaning |
    |---|---|---|
    | observation | ``Box(0, 255, encoder.shape(...), uint8)`` | the encoder's view (default ``egocentric``) |
    | action_mask | ``Box(0, 1, (4,), int8)`` | 1 where a move is not certainly fatal |

    With ``action_mask=False`` the observation alone. Default shapes (11x11, ``egocentric``): observation
    ``(10, 21, 21)``, action_mask ``(4,)``.

    ## Rewards
    Weighted named events (``battlesnake_gym.rewards``): the ``default`` preset gives +1 for winning, -1 for dying and
    +0.02 per food; pass ``rewards=`` a preset name, a mapping of event -> weight, or a ``RewardConfig``.

    ## Starting State
    The official start for the board size and snake count (fixed cells, quadrants or random even cells; official
    starting food).

    ## Episode End
    An agent terminates on the step it is eliminated (it gets that step's observation and reward) or when the game
    ends with it alive (at most one snake left; none in one-snake games). All agents are truncated when the board's
    turn reaches ``max_turns``. Dead agents never return; ``agents`` only shrinks.

    ## Arguments
    ``width``, ``height``, ``num_snakes``, ``ruleset``, ``map``, ``game_settings`` (a mapping of other
    ``GameSettings`` fields: ``food_spawn_chance``, ``minimum_food``, ``hazard_damage_per_turn``,
    ``shrink_every_n_turns``), ``encoder``, ``rewards``, ``max_turns`` (default 1000), ``action_mask``,
    ``render_mode`` ("ansi" or "rgb_array"), ``seed``.

    ## Version History
    * v0: initial release.

    Example::

        env = BattlesnakeParallelEnv(num_snakes=4, seed=0)
        obs, infos = env.reset(seed=0)
        while env.agents:
            obs, rewards, terms, truncs, infos = env.step({a: env.action_space(a).sample() for a in env.agents})
    """

    metadata = {"name": "battlesnake_v0", "render_modes": ["ansi", "rgb_array"], "is_parallelizable": True}

    def __init__(self, width: int = 11, height: int = 11, num_snakes: int = 4, ruleset: str = "standard",
                 map: str = "standard", game_settings: Mapping | None = None,
                 encoder: str | ObservationEncoder = "egocentric", rewards: str | Mapping | RewardConfig | None = None,
                 max_turns: int | None = 1000, action_mask: bool = True, render_mode: str | None = None,
                 seed: int | None = None):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise RulesError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.settings: GameSettings = settings_from(game_settings, width=width, height=height, ruleset=ruleset,
                                                    map=map)
        self.render_mode = render_mode
        self.use_action_mask = bool(action_mask)
        self._core = BatchEnv(self.settings, num_snakes=num_snakes, batch_size=1, encoder=encoder, rewards=rewards,
                              max_turns=max_turns, seed=seed)
        self.possible_agents = [f"snake_{i}" for i in range(num_snakes)]
        self.agents: list[str] = []
        self._index = {agent: i for i, agent in enumerate(self.possible_agents)}
        box = self._core.encoder.space(self.settings, num_snakes)
        if self.use_action_mask:
            space = spaces.Dict({"observation": box, "action_mask": spaces.Box(0, 1, (4,), np.int8)})
        else:
            space = box
        self.observation_spaces = {agent: space for agent in self.possible_agents}
        self.action_spaces = {agent: spaces.Discrete(4) for agent in self.possible_agents}

    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[agent]

    def _observation(self, slot: int):
        obs = self._core.obs[0, slot].copy()
        if not self.use_action_mask:
            return obs
        return {"observation": obs, "action_mask": self._core.action_mask[0, slot].astype(np.int8)}

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            seeds = game_seeds(seed, 1)
            for space in (*self.observation_spaces.values(), *self.action_spaces.values()):
                space.seed(int(seed))
            self._core.reset(seeds=seeds)
        else:
            self._core.reset()
        self.agents = list(self.possible_agents)
        return {a: self._observation(self._index[a]) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions: Mapping[str, int]):
        if not self.agents:
            raise RulesError("the game is over: call reset() before step()")
        unknown = [a for a in actions if a not in self._index]
        if unknown:
            raise RulesError(f"actions for unknown agents {unknown}; agents are {self.possible_agents}")
        gone = [a for a in actions if a not in self.agents]
        if gone:
            raise RulesError(f"actions for agents no longer in the game: {gone}")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise RulesError(f"no action for live agents {missing}")
        moves = np.full((1, len(self.possible_agents)), -1, np.int64)
        for agent, action in actions.items():
            if not self.action_spaces[agent].contains(action):
                raise RulesError(f"action {action!r} of {agent} is not in Discrete(4) (0 up, 1 down, 2 left, 3 right)")
            moves[0, self._index[agent]] = int(action)
        result = self._core.step(np.where(moves < 0, 0, moves))
        playing = self.agents
        obs = {a: self._observation(self._index[a]) for a in playing}
        rewards = {a: float(result.rewards[0, self._index[a]]) for a in playing}
        terms = {a: bool(result.terminated[0, self._index[a]]) for a in playing}
        truncs = {a: bool(result.truncated[0, self._index[a]]) for a in playing}
        infos = {a: self._info(result, self._index[a]) for a in playing}
        self.agents = [a for a in playing if not (terms[a] or truncs[a])]
        return obs, rewards, terms, truncs, infos

    def _info(self, result, slot: int) -> dict:
        events = result.events[0, slot]
        info = {"events": {name: int(events[i]) for i, name in enumerate(EVENTS) if events[i]}}
        info["turn"] = int(self._core.games.state.turn[0])
        return info

    def board(self) -> dict:
        """The current board as a JSON board (trace format, agents as snake ids)."""
        return board_to_json(self._core.games.state, self.settings.width, self.settings.height, self.possible_agents)

    def render(self):
        if self.render_mode is None:
            return None
        if self.render_mode == "ansi":
            return render_text(self.board())
        from ..render import render_rgb

        return render_rgb(self.board())

    def close(self) -> None:
        pass
