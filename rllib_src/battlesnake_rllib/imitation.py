"""Imitation warm-start: the policy learns a heuristic bot's moves (and the value of its games) before RL.

PPO from a random policy spends most of a short run learning what any heuristic bot already knows (do not turn into
a snake, do not walk into a dead end). ``pretrain`` takes that part off RL's hands: it plays games in which every
snake is the teacher bot (``flood`` by default; a share ``explore`` of the moves are random non-fatal ones, so the
data also covers what the teacher would do after a mistake), records what every snake saw, what the teacher chose
there and how the snake's game ended, and fits the module to it by supervised learning: cross-entropy of the masked
policy logits against the teacher's move, and squared error of the value head against the snake's discounted final
reward (``gamma`` ^ turns-to-go x (+1 won, -1 died, 0 cut at ``max_turns``)). RL then starts from there.

Everything runs in the driver on the module's own torch code; the weights go to the learner and the env runners
through RLlib's public ``set_weights`` / ``sync_weights``.

The warm start is the default (``imitate="auto"``: the territory bot, 500,000 samples: the learning benchmark's
winner), so it is sized to the run (``imitation_limits``): it records at most as many snake-turns as the run's RL
will see (``iterations`` x ``train_batch_size``) and spends at most ``TIME_SHARE`` of its minutes recording; a stop
request (SIGTERM) ends the recording at once, so the job still saves within its grace period.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from ray.rllib.core.columns import Columns

from battlesnake_gym.bots import make_bot
from battlesnake_gym.engine.state import ALIVE
from battlesnake_gym.rewards import EVENTS

from .sampler import SpacesOnlyEnv
from .settings import BatchSettings

WON = EVENTS.index("won")


@dataclass
class ImitationData:
    """Samples of the teacher's play."""

    obs: np.ndarray  # (N, *obs_shape) uint8
    mask: np.ndarray  # (N, 4) int8
    action: np.ndarray  # (N,) int64, the teacher's move
    value: np.ndarray  # (N,) float32, the discounted final reward of the snake's game


#: The share of a run's minutes the warm start may spend recording the teacher's games.
TIME_SHARE = 0.25


def imitation_limits(samples: int, minutes: float | None, iterations: int | None,
                     train_batch_size: int) -> tuple[int, float | None]:
    """``(samples, seconds)`` the warm start of a run may take: ``samples`` at most, no more snake-turns than the
    run's ``iterations`` of RL will sample (0 iterations: the imitation alone, uncapped), and ``TIME_SHARE`` of its
    ``minutes`` (None: no time limit)."""
    if iterations:
        samples = min(samples, iterations * train_batch_size)
    seconds = None if not minutes or minutes <= 0 else 60.0 * minutes * TIME_SHARE
    return samples, seconds


def teacher_games(settings: BatchSettings, samples: int, *, teacher: str = "flood", explore: float = 0.1,
                  keep: float = 0.25, gamma: float = 0.99, seed: int = 0, seconds: float | None = None,
                  stop=None) -> ImitationData:
    """At least ``samples`` samples of the run's games (``settings``), the teacher bot in every seat (see the module
    docstring), or what ended before ``seconds`` passed or ``stop()`` said so (possibly none).

    ``keep`` is the share of (snake, turn) samples stored: consecutive turns of one game look alike, so storing a
    quarter of them spreads the same memory over four times as many games. Only samples of lives that ended (died,
    won, or cut at ``max_turns``) are returned, since only they have a value target.
    """
    env = settings.make_env(seed=seed + 17)
    bot = make_bot(teacher, seed)
    rng = np.random.default_rng(seed)
    b_size, s_size = env.batch_size, env.num_snakes
    life = np.arange(b_size * s_size, dtype=np.int64).reshape(b_size, s_size)  # (B, S) the life each slot plays
    lives = b_size * s_size
    final = {}  # life id -> (outcome, turn it ended)
    sampled_per_life: dict[int, int] = {}
    chunks: list[tuple[np.ndarray, ...]] = []  # (obs, mask, action, life, turn) of each step's stored samples
    finished = 0
    deadline = None if seconds is None else time.time() + seconds
    while finished < samples and not (deadline is not None and time.time() > deadline) and not (stop and stop()):
        alive = env.games.alive()
        moves = bot(env.games).astype(np.int64)
        store = alive & (rng.random(alive.shape) < keep)
        if store.any():
            rows = np.nonzero(store)
            chunks.append((env.obs[store], env.action_mask[store].astype(np.int8), moves[store], life[store],
                           env.games.state.turn[rows[0]].astype(np.int64)))
            for lid in life[store]:
                sampled_per_life[int(lid)] = sampled_per_life.get(int(lid), 0) + 1
        # Some moves are random non-fatal ones: the data also shows the teacher's answer after a detour.
        wander = alive & (rng.random(alive.shape) < explore)
        for b, s in np.argwhere(wander):
            options = np.flatnonzero(env.action_mask[b, s])
            if options.size:
                moves[b, s] = rng.choice(options)
        result = env.step(np.maximum(moves, 0))
        for b, s in np.argwhere(result.terminated | result.truncated):
            won = result.events[b, s, WON] > 0
            outcome = 1.0 if won else (-1.0 if env.games.state.elim_cause[b, s] != ALIVE else 0.0)
            lid = int(life[b, s])
            final[lid] = (outcome, int(env.games.state.turn[b]))
            finished += sampled_per_life.pop(lid, 0)
        if result.game_done.any():
            done = result.game_done
            count = int(done.sum()) * s_size
            life[done] = np.arange(lives, lives + count, dtype=np.int64).reshape(-1, s_size)
            lives += count
            env.reset(done)
    if not chunks:
        shape = env.obs.shape[2:]
        return ImitationData(np.zeros((0, *shape), env.obs.dtype), np.zeros((0, 4), np.int8),
                             np.zeros(0, np.int64), np.zeros(0, np.float32))
    obs, mask, action, life_of, turn = (np.concatenate(parts) for parts in zip(*chunks))
    ended = np.array([int(lid) in final for lid in life_of], bool)
    outcome = np.array([final[int(lid)][0] for lid in life_of[ended]])
    end_turn = np.array([final[int(lid)][1] for lid in life_of[ended]])
    value = outcome * gamma ** np.maximum(end_turn - turn[ended] - 1, 0)
    return ImitationData(obs[ended], mask[ended], action[ended], value.astype(np.float32))


def fit(module, data: ImitationData, *, epochs: int = 2, minibatch: int = 512, lr: float = 1e-3,
        value_weight: float = 0.5, seed: int = 0) -> dict[str, float]:
    """Supervised epochs of ``module`` (a ``BattlesnakeCNN``) on ``data``; returns the final loss and accuracy."""
    generator = torch.Generator().manual_seed(seed)
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    n = len(data.action)
    obs, mask = torch.from_numpy(data.obs), torch.from_numpy(data.mask)
    action, value = torch.from_numpy(data.action), torch.from_numpy(data.value)
    module.train()
    stats = {}
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        correct, total, loss_sum = 0, 0, 0.0
        for start in range(0, n, minibatch):
            rows = order[start:start + minibatch]
            batch = {Columns.OBS: {"observation": obs[rows], "action_mask": mask[rows]}}
            out = module.forward_train(batch)
            logits = out[Columns.ACTION_DIST_INPUTS]
            values = module.compute_values(batch, embeddings=out.get(Columns.EMBEDDINGS))
            loss = F.cross_entropy(logits, action[rows]) + value_weight * F.mse_loss(values, value[rows])
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            correct += int((logits.argmax(-1) == action[rows]).sum())
            total += len(rows)
            loss_sum += float(loss.detach()) * len(rows)
        stats = {"imitation_loss": loss_sum / total, "imitation_accuracy": correct / total}
    module.eval()
    return stats


def pretrain(algo, settings: BatchSettings, samples: int, *, teacher: str = "flood", epochs: int = 2,
             gamma: float = 0.99, seed: int = 0, seconds: float | None = None, stop=None) -> dict[str, float]:
    """Fit the algorithm's module to the teacher's play (``teacher_games``: ``samples``, within ``seconds``, until
    ``stop()``) and send the weights to its learner and env runners; with no sample recorded, nothing changes."""
    from ray.rllib.core import DEFAULT_MODULE_ID

    started = time.time()
    data = teacher_games(settings, samples, teacher=teacher, gamma=gamma, seed=seed, seconds=seconds, stop=stop)
    generated = time.time()
    if len(data.action) == 0:
        return {"imitation_samples": 0, "imitation_data_s": generated - started, "imitation_fit_s": 0.0}
    module = algo.config.get_rl_module_spec(env=SpacesOnlyEnv(settings.env_config()), inference_only=False).build()
    module.set_state(algo.learner_group.get_weights()[DEFAULT_MODULE_ID])
    stats = fit(module, data, epochs=epochs, seed=seed)
    algo.learner_group.set_weights({DEFAULT_MODULE_ID: module.get_state()})
    algo.env_runner_group.sync_weights(from_worker_or_learner_group=algo.learner_group, inference_only=True)
    return {**stats, "imitation_samples": len(data.action), "imitation_data_s": generated - started,
            "imitation_fit_s": time.time() - generated}
