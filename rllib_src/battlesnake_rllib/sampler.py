"""The fast sampler: an RLlib EnvRunner that plays many official-rules games at once.

``BatchedEnvRunner`` replaces ``SingleAgentEnvRunner``'s sampling loop and keeps the rest of its machinery (module
building, weight sync, checkpoint state, metrics reduction). Each call steps B games x S snakes of a
``battlesnake_gym.envs.BatchEnv``, runs ONE forward pass of the shared policy over every live snake per step, samples
actions the way RLlib's default module-to-env connector does, and hands each snake life (or the chunk of it sampled so
far) to RLlib as an independent ``SingleAgentEpisode`` of the one shared policy: self-play with PPO, APPO or IMPALA
without RLlib's multi-agent machinery.

Facts this relies on (measured here, see shared/FAST-SAMPLER.md): PPO stops sampling on the env steps the runner
reports in its metrics; a life cut at the end of a call goes out not-done and continues under the same episode id
next call; a max-turns cut is a truncation; episodes carry ``action_logp`` and ``action_dist_inputs``. RLlib's
env-to-module connectors are bypassed (no observation filters or frame stacking are applied here).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.env.utils.infinite_lookback_buffer import InfiniteLookbackBuffer

from battlesnake_gym.bots import make_bot
from battlesnake_gym.envs import BatchEnv, settings_from

#: Most batch steps one sample() call takes (its buffers hold that many steps of every slot).
MAX_STEPS_PER_CALL = 64
#: env_config keys the runner reads (anything else is refused).
BATCH_KEYS = ("game_settings", "num_snakes", "num_games", "encoder", "rewards", "max_turns", "steps_per_sample",
              "torch_threads", "seed", "opponents", "opponent_games")


def observation_space(env_config: dict[str, Any]) -> gym.spaces.Dict:
    """The single-snake observation space of the batched games ``env_config`` describes."""
    probe = make_batch_env(env_config, batch_size=1)
    return snake_space(probe)


def snake_space(env: BatchEnv) -> gym.spaces.Dict:
    box = env.encoder.space(env.settings, env.num_snakes)
    return gym.spaces.Dict({"observation": box, "action_mask": gym.spaces.Box(0, 1, (4,), np.int8)})


def make_batch_env(env_config: dict[str, Any], batch_size: int | None = None, seed: int | None = None) -> BatchEnv:
    cfg = dict(env_config)
    unknown = sorted(set(cfg) - set(BATCH_KEYS))
    if unknown:
        raise ValueError(f"unknown env_config keys {unknown}; known: {', '.join(BATCH_KEYS)}")
    return BatchEnv(settings_from(cfg.get("game_settings")), num_snakes=int(cfg.get("num_snakes", 4)),
                    batch_size=int(batch_size or cfg.get("num_games", 64)), encoder=cfg.get("encoder", "egocentric"),
                    rewards=cfg.get("rewards"), max_turns=cfg.get("max_turns", 500),
                    seed=seed if seed is not None else cfg.get("seed"))


class SpacesOnlyEnv(gym.Env):
    """Carries the single-snake spaces for RLlib; the batched runner plays the games itself."""

    def __init__(self, env_config: dict[str, Any] | None = None):
        self.observation_space = observation_space(dict(env_config or {}))
        self.action_space = gym.spaces.Discrete(4)

    def reset(self, *, seed=None, options=None):
        raise RuntimeError("SpacesOnlyEnv is not playable: BatchedEnvRunner steps the games (config.env_runners("
                           "env_runner_cls=BatchedEnvRunner))")

    def step(self, action):
        raise RuntimeError("SpacesOnlyEnv is not playable")


class _SpacesVectorEnv(gym.vector.VectorEnv):
    def __init__(self, single_obs: gym.Space, single_act: gym.Space):
        self.num_envs = 1
        self.single_observation_space, self.single_action_space = single_obs, single_act
        self.observation_space = gym.vector.utils.batch_space(single_obs, 1)
        self.action_space = gym.vector.utils.batch_space(single_act, 1)

    @property
    def unwrapped(self):
        return self


class BatchedEnvRunner(SingleAgentEnvRunner):
    """Samples B games x S snakes per step with one forward pass; see the module docstring.

    ``env_config`` keys: ``game_settings`` (GameSettings fields), ``num_snakes``, ``num_games`` (B),
    ``encoder``, ``rewards``, ``max_turns``, ``steps_per_sample`` (batch steps per ``sample()`` call when RLlib asks
    for no particular number), ``torch_threads`` (inference threads of this runner, default 1), ``seed``,
    ``opponents`` (bot names of the opponent pool) and ``opponent_games`` (the share of games in which those bots
    take every seat but slot 0; the other games are pure self-play).
    """

    def make_env(self) -> None:
        cfg = dict(self.config.env_config)
        seed = cfg.get("seed")
        if seed is not None:  # every runner its own games
            seed = int(seed) * 1000 + int(self.worker_index or 0)
        self.batch = make_batch_env(cfg, seed=seed)
        self.steps_per_sample = int(cfg.get("steps_per_sample", 16))
        torch.set_num_threads(int(cfg.get("torch_threads", 1)))
        self.env = _SpacesVectorEnv(snake_space(self.batch), gym.spaces.Discrete(4))
        self.num_envs = 1
        self._needs_initial_reset = True
        b, s = self.batch.batch_size, self.batch.num_snakes
        self._life_id = np.full((b, s), "", dtype=object)  # (B, S) episode id of each slot's current life
        self._life_t = np.zeros((b, s), np.int64)  # steps of the life before this call's chunk
        self._life_return = np.zeros((b, s), np.float64)
        self._life_start = np.zeros((b, s), np.float64)  # wall time the life began
        self._active = np.zeros((b, s), np.bool_)  # the slot's snake is alive and its life open
        # Opponent pool: in the first `opponent_games` share of the games, bots play every seat but slot 0.
        names = [n for n in cfg.get("opponents", []) if n]
        share = float(cfg.get("opponent_games", 0.0) if names else 0.0)
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"opponent_games must be a share in [0, 1], got {share!r}")
        self._bots = {name: make_bot(name, seed) for name in dict.fromkeys(names)}
        self._bot_slot = np.zeros((b, s), np.bool_)  # (B, S) seats played by bots, not the learning policy
        self._bot_name = np.full((b, s), "", dtype=object)
        for game in range(int(round(share * b))):
            self._bot_slot[game, 1:] = True
            self._bot_name[game, 1:] = names[game % len(names)]
        self._bot_game = self._bot_slot.any(axis=1)  # (B,) games against the pool: they end with the learner

    def _start_lives(self, games_mask: np.ndarray) -> None:
        alive = self.batch.games.alive() & games_mask[:, None] & ~self._bot_slot
        for b, s in np.argwhere(alive):
            self._life_id[b, s] = uuid.uuid4().hex
        self._life_t[alive] = 0
        self._life_return[alive] = 0.0
        self._life_start[alive] = time.time()
        self._active |= alive

    def sample(self, *, num_timesteps: int | None = None, num_episodes: int | None = None, explore: bool | None = None,
               random_actions: bool = False, force_reset: bool = False) -> list[SingleAgentEpisode]:
        """Snake-steps (``num_timesteps``; by default ``steps_per_sample`` batch steps) or finished lives."""
        explore = self.config.explore if explore is None else explore
        reset = force_reset or self._needs_initial_reset
        self._needs_initial_reset = False
        with self.metrics.log_time("sample"):
            if num_episodes is None:
                return self._sample_batched(num_timesteps, explore, random_actions, reset)
            done: list[SingleAgentEpisode] = []
            while len(done) < num_episodes:  # whole lives only; partial chunks are dropped
                chunk = self._sample_batched(None, explore, random_actions, reset)
                done += [e for e in chunk if e.is_done]
                reset = False
            return done

    def _policy(self, obs: np.ndarray, mask: np.ndarray, explore: bool, random_actions: bool):
        """Actions, their log-probs and the distribution inputs for N snakes (one forward pass)."""
        n = obs.shape[0]
        if random_actions:
            actions = np.random.default_rng().integers(0, 4, n)
            logits = np.zeros((n, 4), np.float32)
            return actions, np.full(n, -np.log(4.0), np.float32), logits
        batch = {Columns.OBS: {"observation": torch.from_numpy(obs), "action_mask": torch.from_numpy(mask)}}
        with torch.no_grad():
            out = self.module.forward_exploration(batch) if explore else self.module.forward_inference(batch)
            if Columns.ACTIONS in out:  # value-based modules (DQN) pick their actions themselves
                actions = out[Columns.ACTIONS]
                return (actions.numpy().astype(np.int64), np.zeros(n, np.float32),
                        np.zeros((n, 4), np.float32))
            logits = out[Columns.ACTION_DIST_INPUTS]
            if explore:
                dist = self.module.get_exploration_action_dist_cls().from_logits(logits)
                actions = dist.sample()
            else:
                dist = self.module.get_inference_action_dist_cls().from_logits(logits)
                actions = dist.to_deterministic().sample()
            logp = dist.logp(actions)
        return actions.numpy().astype(np.int64), logp.numpy().astype(np.float32), logits.numpy().astype(np.float32)

    def _sample_batched(self, num_timesteps, explore, random_actions, reset) -> list:
        env = self.batch
        b_size, s_size = env.batch_size, env.num_snakes
        if reset:
            env.reset()
            self._active[:] = False
            self._start_lives(np.ones(b_size, np.bool_))
        live_now = max(1, int(self._active.sum()))
        if num_timesteps is None:
            k_max = self.steps_per_sample
            num_timesteps = k_max * live_now
        else:  # enough batch steps if nobody died; PPO calls again when deaths leave it short
            k_max = max(1, -(-num_timesteps // live_now))
        # Buffers grow with the steps of one call: bound them; callers that want more sample again.
        k_max = min(k_max, max(self.steps_per_sample, MAX_STEPS_PER_CALL))
        obs_buf = np.empty((k_max + 1, b_size, s_size, *env.obs_shape), np.uint8)
        mask_buf = np.empty((k_max + 1, b_size, s_size, 4), np.int8)
        act_buf = np.zeros((k_max, b_size, s_size), np.int64)
        logp_buf = np.zeros((k_max, b_size, s_size), np.float32)
        dist_buf = np.zeros((k_max, b_size, s_size, 4), np.float32)
        rew_buf = np.zeros((k_max, b_size, s_size), np.float32)
        chunk_start = np.zeros((b_size, s_size), np.int64)  # buffer index where each open chunk starts
        obs_buf[0], mask_buf[0] = env.obs, env.action_mask
        done_episodes: list[SingleAgentEpisode] = []
        games_finished = 0
        ts = 0
        k = 0
        while k < k_max and ts < num_timesteps:
            live = self._active.copy()
            idx = np.nonzero(live)
            actions = np.zeros((b_size, s_size), np.int64)
            if len(idx[0]):
                with self.metrics.log_time("rlmodule_inference"):
                    a, lp, di = self._policy(obs_buf[k][idx], mask_buf[k][idx], explore, random_actions)
                actions[idx] = a
                act_buf[k][idx], logp_buf[k][idx], dist_buf[k][idx] = a, lp, di
            else:
                a = actions[idx]
            for name, bot in self._bots.items():
                seats = self._bot_name == name
                actions[seats] = bot(env.games)[seats]
            result = env.step(np.maximum(actions, 0))
            rew_buf[k] = result.rewards
            obs_buf[k + 1], mask_buf[k + 1] = result.obs, env.action_mask
            ts += len(a)
            k += 1
            self._life_return += np.where(live, result.rewards, 0.0)
            ended = live & (result.terminated | result.truncated)
            for b, s in np.argwhere(ended):
                done_episodes.append(self._episode(b, s, chunk_start[b, s], k, obs_buf, mask_buf, act_buf, logp_buf,
                                                   dist_buf, rew_buf, bool(result.terminated[b, s]),
                                                   bool(result.truncated[b, s])))
                self._log_life(b, s, k - chunk_start[b, s])
            self._active &= ~ended
            # A game against the pool is over for training once its learner is out: no need to watch the bots.
            over = result.game_done | (self._bot_game & ~self._active.any(axis=1))
            if over.any():
                games_finished += int(over.sum())
                env.reset(over)
                self._start_lives(over)
                chunk_start[over] = k
                obs_buf[k][over], mask_buf[k][over] = env.obs[over], env.action_mask[over]
        # The lives still open go out as not-done chunks and continue under the same ids next call.
        ongoing = []
        for b, s in np.argwhere(self._active):
            if chunk_start[b, s] < k:
                ongoing.append(self._episode(b, s, chunk_start[b, s], k, obs_buf, mask_buf, act_buf, logp_buf,
                                             dist_buf, rew_buf, False, False))
                self._life_t[b, s] += k - chunk_start[b, s]
        self._increase_sampled_metrics(ts, len(done_episodes))
        self.metrics.log_value("games_finished", games_finished, reduce="sum")
        return done_episodes + ongoing

    def _episode(self, b, s, t0, t1, obs_buf, mask_buf, act_buf, logp_buf, dist_buf, rew_buf, terminated,
                 truncated) -> SingleAgentEpisode:
        """Game b, slot s, batch steps t0..t1 as an episode (chunk); ``custom_data["slot"]`` says (b, s)."""
        n = t1 - t0
        obs = {"observation": np.ascontiguousarray(obs_buf[t0:t1 + 1, b, s]),
               "action_mask": np.ascontiguousarray(mask_buf[t0:t1 + 1, b, s])}
        episode = SingleAgentEpisode(
            id_=self._life_id[b, s],
            observations=InfiniteLookbackBuffer(obs),
            infos=InfiniteLookbackBuffer([{} for _ in range(n + 1)]),
            actions=InfiniteLookbackBuffer(act_buf[t0:t1, b, s].copy()),
            rewards=InfiniteLookbackBuffer(rew_buf[t0:t1, b, s].copy()),
            extra_model_outputs={
                Columns.ACTION_LOGP: InfiniteLookbackBuffer(logp_buf[t0:t1, b, s].copy()),
                Columns.ACTION_DIST_INPUTS: InfiniteLookbackBuffer(dist_buf[t0:t1, b, s].copy()),
            },
            terminated=terminated,
            truncated=truncated,
            t_started=int(self._life_t[b, s]),
            len_lookback_buffer=0,
            observation_space=self.env.single_observation_space,
            action_space=self.env.single_action_space,
        )
        episode.custom_data["slot"] = (int(b), int(s))
        return episode

    def _log_life(self, b: int, s: int, chunk_len: int) -> None:
        length = int(self._life_t[b, s] + chunk_len)
        self._log_episode_metrics(length, float(self._life_return[b, s]), time.time() - self._life_start[b, s])

    def get_metrics(self):
        # Lives are logged as they end (their chunks are never kept), so nothing is left for the parent to add up.
        self._done_episodes_for_metrics.clear()
        self._ongoing_episodes_for_metrics.clear()
        return self.metrics.reduce()
