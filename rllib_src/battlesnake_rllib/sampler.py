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

Two things the driver steers (``battlesnake_rllib.callbacks`` sends them to every runner, local and remote):

- the curriculum stage (``set_curriculum_stage``): board size and snakes per game. The request comes between two
  sample() calls, a clean episode boundary: every open life has gone out as a not-done chunk, which RLlib's learners
  bootstrap from its last observation exactly as they do a truncated episode, so the runner ends those lives there
  (logging them as truncated) and rebuilds its games on the new stage. No life spans two stages;
- the past-policy snapshots (``add_snapshot``, ``set_snapshots``): inference-only copies of the module that play the
  opponent seats of the games the ``"past"`` entry of the opponent pool gets. Like bot seats, those seats never
  become episodes: only the learning seat's experience goes to RLlib.

The opponent pool (its seating, bots and snapshots) is ``battlesnake_rllib.opponents.OpponentPool``; the private
parts of RLlib's runner this one relies on are behind ``battlesnake_rllib.rllib_private``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.env.utils.infinite_lookback_buffer import InfiniteLookbackBuffer

from battlesnake_gym.envs import BatchEnv

from . import rllib_private
from .opponents import OpponentPool
from .settings import BatchSettings

#: Most batch steps one sample() call takes (its buffers hold that many steps of every slot).
MAX_STEPS_PER_CALL = 64
#: The key of this runner's own part of its checkpoint state (curriculum stage and snapshots).
STATE_KEY = "battlesnake"


def observation_space(env_config: Mapping[str, Any]) -> gym.spaces.Dict:
    """The single-snake observation space of the batched games the env config's ``BatchSettings`` describe."""
    return snake_space(BatchSettings.of(env_config).make_env(batch_size=1))


def snake_space(env: BatchEnv) -> gym.spaces.Dict:
    box = env.encoder.space(env.settings, env.num_snakes)
    return gym.spaces.Dict({"observation": box, "action_mask": gym.spaces.Box(0, 1, (4,), np.int8)})


class SpacesOnlyEnv(gym.Env):
    """Carries the single-snake spaces for RLlib; the batched runner plays the games itself."""

    def __init__(self, env_config: Mapping[str, Any]):
        self.observation_space = observation_space(env_config)
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

    It plays the ``BatchSettings`` of its config (``BatchSettings.of(config)``): the run's game, or with a
    curriculum the stage the driver sets with ``set_curriculum_stage`` (it starts on the first). Every stage gives
    the same observation shape (a fixed egocentric ``view``): ``TrainArgs.validate`` checks that.

    Episodes carry ``custom_data["slot"]`` (game, seat) and, with a curriculum, ``custom_data["stage"]``.
    """

    def __init__(self, *, config, **kwargs):
        # What the driver steers is set up here, not in make_env: a local runner beside remote ones has no games,
        # yet it keeps the stage and the snapshots, which RLlib checkpoints with its state.
        self.settings = BatchSettings.of(config)
        self._stages = self.settings.curriculum
        self._stage = 0  # the curriculum stage the games are on (0 without a curriculum)
        self.pool = OpponentPool(self.settings)  # the seats that are not the learner's, and the past snapshots
        self.batch: BatchEnv | None = None
        super().__init__(config=config, **kwargs)

    def make_env(self) -> None:
        settings = self.settings
        seed = settings.seed
        if seed is not None:  # every runner its own games
            seed = int(seed) * 1000 + int(self.worker_index or 0)
        self._games_seed = seed
        self.pool.start(seed)
        self.steps_per_sample = settings.steps_per_sample
        torch.set_num_threads(settings.torch_threads)
        self._build_games()
        self.env = _SpacesVectorEnv(snake_space(self.batch), gym.spaces.Discrete(4))
        self.num_envs = 1

    def _build_games(self) -> None:
        """(Re)build the batched games of the current stage and every per-slot array; nothing is open after it."""
        seed = self._games_seed
        self.batch = self.settings.make_env(self._stage, seed=None if seed is None else seed + 7919 * self._stage)
        self._reset_games = True
        b, s = self.batch.batch_size, self.batch.num_snakes
        self._life_id = np.full((b, s), "", dtype=object)  # (B, S) episode id of each slot's current life
        self._life_t = np.zeros((b, s), np.int64)  # steps of the life before this call's chunk
        self._life_return = np.zeros((b, s), np.float64)
        self._life_start = np.zeros((b, s), np.float64)  # wall time the life began
        self._active = np.zeros((b, s), np.bool_)  # the slot's snake is alive and its life open
        self.pool.seat(b, s)

    # ------------------------------------------------------------------ driver-steered state

    @property
    def curriculum_stage(self) -> int:
        """The curriculum stage this runner's games are on (0 without a curriculum)."""
        return self._stage

    def set_curriculum_stage(self, stage: int) -> int:
        """Play curriculum ``stage`` from the next sample() call on (see the module docstring); returns it."""
        if not self._stages:
            raise ValueError("this runner has no curriculum (its BatchSettings' curriculum is empty)")
        if isinstance(stage, bool) or not isinstance(stage, (int, np.integer)) or not 0 <= stage < len(self._stages):
            raise ValueError(f"curriculum stage must be an index in [0, {len(self._stages)}), got {stage!r}")
        if int(stage) != self._stage:
            self._stage = int(stage)
            if self.batch is not None:
                for b, s in np.argwhere(self._active):  # their experience is out already: only the metrics are left
                    self._log_life(b, s, 0)
                self._build_games()
        return self._stage

    def add_snapshot(self, snapshot_id: int, state: dict[str, Any]) -> list[int]:
        """Keep a past version of the policy (``module.get_state()`` weights) for the ``"past"`` opponent seats.

        The oldest snapshot makes room when all ``past_policies`` slots are taken; seats playing it switch to the new
        one. Returns the ids kept, oldest first.
        """
        return self.pool.add_snapshot(snapshot_id, state)

    def set_snapshots(self, snapshots: list[tuple[int, dict[str, Any]]]) -> list[int]:
        """Replace every snapshot with ``[(id, weights), ...]`` (oldest first), e.g. after a restore."""
        return self.pool.set_snapshots(snapshots)

    def snapshot_ids(self) -> list[int]:
        """The ids of the snapshots kept, oldest first."""
        return self.pool.snapshot_ids()

    def snapshot_states(self) -> list[tuple[int, dict[str, Any]]]:
        """``[(id, weights), ...]`` oldest first, as ``set_snapshots`` takes them."""
        return self.pool.snapshot_states()

    def get_state(self, components=None, *, not_components=None, **kwargs) -> dict[str, Any]:
        state = super().get_state(components, not_components=not_components, **kwargs)
        if rllib_private.wants_component(self, STATE_KEY, components, not_components):
            state[STATE_KEY] = {"curriculum_stage": self._stage, "snapshots": self.snapshot_states()}
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        own = state.get(STATE_KEY)
        if own:
            if self._stages:
                self.set_curriculum_stage(own["curriculum_stage"])
            if self.pool.capacity:
                self.set_snapshots(own["snapshots"])

    # ------------------------------------------------------------------ sampling

    def _start_lives(self, games_mask: np.ndarray) -> None:
        alive = self.batch.games.alive() & games_mask[:, None] & self.pool.learner_seat
        for b, s in np.argwhere(alive):
            self._life_id[b, s] = uuid.uuid4().hex
        self._life_t[alive] = 0
        self._life_return[alive] = 0.0
        self._life_start[alive] = time.time()
        self._active |= alive
        self.pool.start_games(games_mask)  # each "past" seat of a new game draws the snapshot it plays

    def sample(self, *, num_timesteps: int | None = None, num_episodes: int | None = None, explore: bool | None = None,
               random_actions: bool = False, force_reset: bool = False) -> list[SingleAgentEpisode]:
        """Snake-steps (``num_timesteps``; by default ``steps_per_sample`` batch steps) or finished lives."""
        if self.batch is None:
            raise RuntimeError("this env runner has no games: it is the local runner beside remote ones "
                               "(create_env_on_local_worker is off), which RLlib does not sample from")
        explore = self.config.explore if explore is None else explore
        reset = force_reset or self._reset_games
        self._reset_games = False
        with self.metrics.log_time("sample"):
            if num_episodes is None:
                return self._sample_batched(num_timesteps, explore, random_actions, reset)
            done: list[SingleAgentEpisode] = []
            while len(done) < num_episodes:  # whole lives only; partial chunks are dropped
                chunk = self._sample_batched(None, explore, random_actions, reset)
                done += [e for e in chunk if e.is_done]
                reset = False
            return done

    def _policy(self, obs: np.ndarray, mask: np.ndarray, explore: bool, random_actions: bool, module=None):
        """Actions, their log-probs and the distribution inputs for N snakes (one forward pass of ``module``,
        by default the learning policy's)."""
        module = self.module if module is None else module
        n = obs.shape[0]
        if random_actions:
            actions = np.random.default_rng().integers(0, 4, n)
            logits = np.zeros((n, 4), np.float32)
            return actions, np.full(n, -np.log(4.0), np.float32), logits
        batch = {Columns.OBS: {"observation": torch.from_numpy(obs), "action_mask": torch.from_numpy(mask)}}
        with torch.no_grad():
            if explore:  # epsilon schedules (DQN) read the global env steps, estimated as RLlib's runner does
                runners = self.config.num_env_runners or 1
                out = module.forward_exploration(batch, t=(self.num_env_steps_sampled_lifetime // runners) * runners)
            else:
                out = module.forward_inference(batch)
            if Columns.ACTIONS in out:  # value-based modules (DQN) pick their actions themselves
                actions = out[Columns.ACTIONS]
                return (actions.numpy().astype(np.int64), np.zeros(n, np.float32),
                        np.zeros((n, 4), np.float32))
            logits = out[Columns.ACTION_DIST_INPUTS]
            if explore:
                dist = module.get_exploration_action_dist_cls().from_logits(logits)
                actions = dist.sample()
            else:
                dist = module.get_inference_action_dist_cls().from_logits(logits)
                actions = dist.to_deterministic().sample()
            logp = dist.logp(actions)
        return actions.numpy().astype(np.int64), logp.numpy().astype(np.float32), logits.numpy().astype(np.float32)

    def _past_act(self, explore: bool):
        """The pool's forward pass for its ``"past"`` seats: ``module``'s actions for N snakes (inference only)."""
        return lambda obs, mask, module: self._policy(obs, mask, explore, False, module)[0]

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
            self.pool.bot_moves(env.games, actions)
            if self.pool.plays_past:
                with self.metrics.log_time("past_policy_inference"):
                    self.pool.past_moves(env.games, obs_buf[k], mask_buf[k], actions, self._past_act(explore),
                                         self.module)
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
            over = result.game_done | (self.pool.pool_game & ~self._active.any(axis=1))
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
        rllib_private.count_sampled(self, ts, len(done_episodes))
        self.metrics.log_value("games_finished", games_finished, reduce="sum")
        if self._stages:
            self.metrics.log_value("curriculum_stage", self._stage, reduce="max")
        if self.pool.capacity:
            self.metrics.log_value("past_snapshots", len(self.snapshot_ids()), reduce="max")
        return done_episodes + ongoing

    def _episode(self, b, s, t0, t1, obs_buf, mask_buf, act_buf, logp_buf, dist_buf, rew_buf, terminated,
                 truncated) -> SingleAgentEpisode:
        """Game b, slot s, batch steps t0..t1 as an episode (chunk); ``custom_data["slot"]`` says (b, s) and
        ``custom_data["stage"]`` the curriculum stage it was played on."""
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
        if self._stages:
            episode.custom_data["stage"] = self._stage
        return episode

    def _log_life(self, b: int, s: int, chunk_len: int) -> None:
        length = int(self._life_t[b, s] + chunk_len)
        rllib_private.log_episode(self, length, float(self._life_return[b, s]), time.time() - self._life_start[b, s])

    def get_metrics(self):
        # Lives are logged as they end (their chunks are never kept), so nothing is left for the parent to add up.
        rllib_private.forget_episodes_for_metrics(self)
        return self.metrics.reduce()
