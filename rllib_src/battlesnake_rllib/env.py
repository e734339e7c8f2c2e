"""RLlib adapter: a ``MultiAgentEnv`` thin over ``battlesnake_gym``'s PettingZoo environment."""

from __future__ import annotations

from typing import Any

from ray.rllib.env.multi_agent_env import MultiAgentEnv

from battlesnake_gym.envs import BattlesnakeParallelEnv


class BattlesnakeMultiAgentEnv(MultiAgentEnv):
    """Every snake an agent, as in ``BattlesnakeParallelEnv`` (same spaces, rewards and episode ends).

    ``config`` holds ``BattlesnakeParallelEnv``'s arguments (width, height, num_snakes, ruleset, map, game_settings,
    encoder, rewards, max_turns, action_mask); RLlib passes it as ``env_config``.
    """

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__()
        self.env = BattlesnakeParallelEnv(**dict(config or {}))
        self.possible_agents = list(self.env.possible_agents)
        self.agents = []
        self.observation_spaces = {a: self.env.observation_space(a) for a in self.possible_agents}
        self.action_spaces = {a: self.env.action_space(a) for a in self.possible_agents}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, infos = self.env.reset(seed=seed, options=options)
        self.agents = list(self.env.agents)
        return obs, infos

    def step(self, action_dict: dict[str, int]):
        obs, rewards, terms, truncs, infos = self.env.step(action_dict)
        self.agents = list(self.env.agents)
        over = not self.agents
        truncs["__all__"] = over and any(truncs.values())
        terms["__all__"] = over and not truncs["__all__"]
        return obs, rewards, terms, truncs, infos

    def render(self):
        return self.env.render()
