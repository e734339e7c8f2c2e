"""Environments over the batched engine: PettingZoo (all snakes), Gymnasium (one snake vs bots), and the batch core.

Importing this package registers ``battlesnake_gym/Battlesnake-v0`` with Gymnasium.
"""

import gymnasium

from .core import BatchEnv, BatchStep, game_seeds, settings_from
from .gym_env import BattlesnakeEnv, BattlesnakeVectorEnv
from .pettingzoo_env import BattlesnakeParallelEnv

ENV_ID = "battlesnake_gym/Battlesnake-v0"
if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="battlesnake_gym.envs.gym_env:BattlesnakeEnv",
                       vector_entry_point="battlesnake_gym.envs.gym_env:BattlesnakeVectorEnv")

__all__ = ["ENV_ID", "BatchEnv", "BatchStep", "BattlesnakeEnv", "BattlesnakeParallelEnv", "BattlesnakeVectorEnv",
           "game_seeds", "settings_from"]
