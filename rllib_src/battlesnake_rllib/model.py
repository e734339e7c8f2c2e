"""Small CNN RLModules for the Battlesnake observations (RLlib 2.60 new API stack, torch).

``BattlesnakeCNN`` is an actor-critic for PPO, APPO and IMPALA; ``BattlesnakeCNNQ`` a Q-network for DQN. Both read
the environment's observation ``Dict({"observation": Box(0, high, (C, H, W), uint8), "action_mask": Box(0, 1, (4,),
int8)})`` (a plain ``Box`` works too: nothing is masked), cast the uint8 planes to float inside (so runners can ship
compact uint8 batches), and give the actions the mask forbids the score ``MASKED_LOGIT`` (-1e9), except in rows whose
mask forbids every action, which are left unmasked.

Build one with ``RLModuleSpec(module_class=BattlesnakeCNN, model_config={...})``. ``model_config`` keys (unknown keys
are ignored, since RLlib adds its own, e.g. PPO's ``vf_share_layers``):

- ``conv_filters`` = ``[[12, 3, 2], [24, 3, 2]]``: conv layers ``[out_channels, kernel, stride]``, padding
  ``kernel // 2``, each followed by a ReLU.
- ``hidden`` = ``128``: width of the fully connected ReLU layer after the flatten (a list gives several layers).
- ``obs_scale`` = ``"high"``: divide each channel by its ``high`` in the observation space (channels whose high is
  0 stay as they are); a number multiplies every plane (e.g. ``1 / 255``); a list gives one factor per channel.
- ``channels_last`` = ``False``: observations are ``(H, W, C)`` (the legacy encoders) instead of ``(C, H, W)``.
- ``forward_chunk`` = ``512``: forwards without autograd run the batch in chunks of this many rows, which keeps
  the activations in cache (about 2x faster on CPU for 4096 x (10, 21, 21)); 0 turns chunking off.
- ``share_trunk`` = ``True`` (``BattlesnakeCNN``): the value head reads the policy's trunk; False builds a second
  trunk for the value, which doubles the training cost.
- ``dueling`` = ``True`` (``BattlesnakeCNNQ``): ``Q = V + A - mean(A)``.
- ``double_q`` = ``True`` (``BattlesnakeCNNQ``): also output the online net's next-state Q; keep it equal to
  ``DQNConfig.training(double_q=...)``, which is what the learner reads.
- ``epsilon`` = ``[(0, 1.0), (10000, 0.05)]`` (``BattlesnakeCNNQ``): epsilon-greedy probability, a float or a
  piecewise-linear schedule ``[(env_step, value), ...]``.

The default network costs 0.34M multiply-adds per (10, 21, 21) observation and 0.09M per (10, 11, 11). One
``forward_exploration`` of 4096 observations on one CPU thread took 37 ms and 14 ms on the 2-vCPU development
machine (``[[16, 3, 2], [32, 3, 2]]``: 46 ms and 16 ms); ``python -m battlesnake_rllib.model`` measures it here.

The torch network the modules are built from (trunk, heads, config validation) is in ``network``, which needs no
Ray.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.algorithms.dqn.default_dqn_rl_module import QF_NEXT_PREDS, QF_PREDS, QF_TARGET_NEXT_PREDS
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.utils import make_target_network
from ray.rllib.core.rl_module.apis import (
    TARGET_NETWORK_ACTION_DIST_INPUTS,
    InferenceOnlyAPI,
    QNetAPI,
    TargetNetworkAPI,
    ValueFunctionAPI,
)
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.utils.annotations import override
from ray.rllib.utils.schedules.scheduler import Scheduler
from torch import nn

from battlesnake_policy import MASKED_LOGIT, mask_logits

from .network import (
    MASK_KEY,
    OBS_KEY,
    ActorCriticHeads,
    CnnConfig,
    CnnTrunk,
    QHead,
    QValueHeads,
    channel_scale,
    split_observation_space,
)

__all__ = ["MASKED_LOGIT", "BattlesnakeCNN", "BattlesnakeCNNQ", "CnnConfig", "CnnTrunk", "mask_logits"]


class _BattlesnakeModuleBase(TorchRLModule):
    """Shared set-up: config, spaces, trunk construction, observation unpacking and chunked trunk forwards."""

    def _setup_common(self) -> None:
        self.cnn_config = CnnConfig.from_model_config(self.model_config)
        if not isinstance(self.action_space, gym.spaces.Discrete):
            raise ValueError(f"{type(self).__name__} needs a Discrete action space, got {self.action_space}")
        board, self.has_action_mask = split_observation_space(self.observation_space)
        self.obs_shape: tuple[int, ...] = tuple(int(d) for d in board.shape)
        self.num_actions = int(self.action_space.n)
        self._scale = channel_scale(board, self.cnn_config)

    def _new_trunk(self) -> CnnTrunk:
        return CnnTrunk(self.obs_shape, self._scale, self.cnn_config)

    def _unpack(self, obs: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(board planes (B, *obs_shape), action mask (B, A) or None) from a batch's observation entry."""
        if isinstance(obs, Mapping):
            return obs[OBS_KEY], obs.get(MASK_KEY)
        return obs, None

    def _features(self, trunk: nn.Module, planes: torch.Tensor) -> torch.Tensor:
        """(*lead, *obs_shape) -> (*lead, F); without autograd the rows run in cache-sized chunks."""
        lead = planes.shape[: planes.dim() - len(self.obs_shape)]
        x = planes.reshape(-1, *self.obs_shape)
        chunk = self.cnn_config.forward_chunk
        if chunk and x.shape[0] > chunk and not torch.is_grad_enabled():
            features = torch.cat([trunk(part) for part in x.split(chunk)])
        else:
            features = trunk(x)
        return features.reshape(*lead, features.shape[-1])

    def multiply_adds(self) -> int:
        """Multiply-adds per observation for one greedy forward (trunk and head)."""
        return self.trunk.multiply_adds + self.trunk.out_features * self.num_actions


class BattlesnakeCNN(_BattlesnakeModuleBase, ValueFunctionAPI, TargetNetworkAPI, InferenceOnlyAPI):
    """Actor-critic CNN for PPO, APPO and IMPALA with action masking.

    Forward outputs: ``Columns.ACTION_DIST_INPUTS`` (B, A) float32 masked logits (a Categorical over them never
    samples a forbidden action); ``_forward_train`` adds ``Columns.EMBEDDINGS`` (B, F), the value head's input.
    ``compute_values`` gives (B,) float32. ``forward_target`` (APPO's old policy) gives masked logits under
    ``TARGET_NETWORK_ACTION_DIST_INPUTS``. Inference-only copies (on env runners) drop the value parts.
    """

    @override(RLModule)
    def setup(self) -> None:
        self._setup_common()
        self.trunk = self._new_trunk()
        self.pi = nn.Linear(self.trunk.out_features, self.num_actions)
        self.vf_trunk = None if self.cnn_config.share_trunk else self._new_trunk()
        self.vf = nn.Linear(self.trunk.out_features, 1)
        nn.init.orthogonal_(self.pi.weight, gain=0.01)
        nn.init.zeros_(self.pi.bias)
        nn.init.orthogonal_(self.vf.weight, gain=1.0)
        nn.init.zeros_(self.vf.bias)

    def _policy(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """(masked logits (B, A), policy-trunk features (B, F))."""
        planes, mask = self._unpack(batch[Columns.OBS])
        features = self._features(self.trunk, planes)
        return mask_logits(self.pi(features), mask), features

    @override(RLModule)
    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        logits, _ = self._policy(batch)
        return {Columns.ACTION_DIST_INPUTS: logits}

    @override(RLModule)
    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        logits, features = self._policy(batch)
        if self.vf_trunk is not None:
            features = self._features(self.vf_trunk, self._unpack(batch[Columns.OBS])[0])
        return {Columns.ACTION_DIST_INPUTS: logits, Columns.EMBEDDINGS: features}

    @override(ValueFunctionAPI)
    def compute_values(self, batch: dict[str, Any], embeddings: Any | None = None) -> torch.Tensor:
        if embeddings is None:
            planes, _ = self._unpack(batch[Columns.OBS])
            embeddings = self._features(self.vf_trunk if self.vf_trunk is not None else self.trunk, planes)
        return self.vf(embeddings).squeeze(-1)

    @override(TargetNetworkAPI)
    def make_target_networks(self) -> None:
        self._old_trunk = make_target_network(self.trunk)
        self._old_pi = make_target_network(self.pi)

    @override(TargetNetworkAPI)
    def get_target_network_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.trunk, self._old_trunk), (self.pi, self._old_pi)]

    @override(TargetNetworkAPI)
    def forward_target(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        planes, mask = self._unpack(batch[Columns.OBS])
        logits = self._old_pi(self._features(self._old_trunk, planes))
        return {TARGET_NETWORK_ACTION_DIST_INPUTS: mask_logits(logits, mask)}

    @override(InferenceOnlyAPI)
    def get_non_inference_attributes(self) -> list[str]:
        return ["vf", "vf_trunk", "_old_trunk", "_old_pi"]

    def export_heads(self) -> tuple[nn.Module, bool]:
        """A detached copy of the policy and value: ``(N, *obs_shape) uint8 -> ((N, A) unmasked logits, (N,)
        value)``; False: the value is the critic's."""
        heads = ActorCriticHeads(self.trunk, self.pi, self.vf, self.vf_trunk)
        return copy.deepcopy(heads).eval().requires_grad_(False), False


class BattlesnakeCNNQ(_BattlesnakeModuleBase, QNetAPI, TargetNetworkAPI, InferenceOnlyAPI):
    """Q-network CNN for RLlib's DQN (expected-value Q, ``num_atoms=1``), with action masking.

    Forbidden actions get the Q-value ``MASKED_LOGIT``, so greedy choices, the target's max and double-Q's argmax
    skip them; epsilon-greedy exploration draws its random actions among the allowed ones. ``_forward_train`` gives
    ``qf_preds`` (B, A), ``qf_next_preds`` (B, A, only with ``double_q``) and ``qf_target_next_preds`` (B, A).
    Set ``double_q`` the same here and in ``DQNConfig.training(double_q=...)``: the learner reads its own flag.
    Distributional Q (``num_atoms > 1``) and noisy nets are not supported.
    """

    @override(RLModule)
    def setup(self) -> None:
        self._setup_common()
        atoms = self.model_config.get("num_atoms") if isinstance(self.model_config, Mapping) else None
        if atoms not in (None, 1):
            raise ValueError(f"BattlesnakeCNNQ learns expected Q-values only: num_atoms must be 1, got {atoms!r}")
        self.trunk = self._new_trunk()
        self.q_head = QHead(self.trunk.out_features, self.num_actions, self.cnn_config.dueling)
        eps = self.cnn_config.epsilon
        self.epsilon_schedule = Scheduler(fixed_value_or_schedule=eps if isinstance(eps, float) else list(eps),
                                          framework="torch")

    def _q(self, trunk: nn.Module, head: nn.Module, obs: Any) -> torch.Tensor:
        """(B, A) masked Q-values of ``obs`` (a batch's observation entry) under the given networks."""
        planes, mask = self._unpack(obs)
        return mask_logits(head(self._features(trunk, planes)), mask)

    @override(QNetAPI)
    def compute_q_values(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {QF_PREDS: self._q(self.trunk, self.q_head, batch[Columns.OBS])}

    @override(RLModule)
    def _forward_inference(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        with torch.no_grad():
            q = self._q(self.trunk, self.q_head, batch[Columns.OBS])
        return {Columns.ACTIONS: q.argmax(dim=-1)}

    @override(RLModule)
    def _forward_exploration(self, batch: dict[str, Any], t: int | None = None, **kwargs: Any) -> dict[str, Any]:
        with torch.no_grad():
            planes, mask = self._unpack(batch[Columns.OBS])
            q = mask_logits(self.q_head(self._features(self.trunk, planes)), mask)
            greedy = q.argmax(dim=-1)  # (B,)
            epsilon = self.epsilon_schedule.update(t) if t is not None else float(
                self.epsilon_schedule.get_current_value())
            allowed = torch.ones_like(q) if mask is None else (mask > 0).to(q.dtype)
            allowed = torch.where(allowed.sum(dim=-1, keepdim=True) > 0, allowed, torch.ones_like(allowed))
            random = torch.multinomial(allowed.reshape(-1, self.num_actions), 1).reshape(greedy.shape)
            explore = torch.rand(greedy.shape, device=q.device) < epsilon
        return {Columns.ACTIONS: torch.where(explore, random, greedy)}

    @override(RLModule)
    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if self.inference_only:
            raise RuntimeError("forward_train needs the learner copy of the module (inference_only=False)")
        obs, next_obs = batch[Columns.OBS], batch[Columns.NEXT_OBS]
        out: dict[str, Any] = {}
        if self.cnn_config.double_q:
            both = _concat_obs(obs, next_obs)
            out[QF_PREDS], out[QF_NEXT_PREDS] = torch.chunk(self._q(self.trunk, self.q_head, both), 2, dim=0)
        else:
            out[QF_PREDS] = self._q(self.trunk, self.q_head, obs)
        out[QF_TARGET_NEXT_PREDS] = self.forward_target({Columns.OBS: next_obs})[QF_PREDS]
        return out

    @override(TargetNetworkAPI)
    def make_target_networks(self) -> None:
        self._target_trunk = make_target_network(self.trunk)
        self._target_q_head = make_target_network(self.q_head)

    @override(TargetNetworkAPI)
    def get_target_network_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.trunk, self._target_trunk), (self.q_head, self._target_q_head)]

    @override(TargetNetworkAPI)
    def forward_target(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        with torch.no_grad():
            return {QF_PREDS: self._q(self._target_trunk, self._target_q_head, batch[Columns.OBS])}

    @override(InferenceOnlyAPI)
    def get_non_inference_attributes(self) -> list[str]:
        return ["_target_trunk", "_target_q_head"]

    def export_heads(self) -> tuple[nn.Module, bool]:
        """A detached copy of the Q-network: ``(N, *obs_shape) uint8 -> ((N, A) unmasked Q-values, (N,) zeros)``;
        True: the exported value is the best allowed Q-value."""
        heads = QValueHeads(self.trunk, self.q_head)
        return copy.deepcopy(heads).eval().requires_grad_(False), True


def _concat_obs(a: Any, b: Any) -> Any:
    """Row-wise concatenation of two observation entries (tensors, or dicts of tensors)."""
    if isinstance(a, Mapping):
        return {k: torch.cat([a[k], b[k]], dim=0) for k in a}
    return torch.cat([a, b], dim=0)


def benchmark_forward(obs_shape: tuple[int, int, int], batch: int = 4096, repeats: int = 7,
                      model_config: Mapping[str, Any] | None = None, threads: int = 1) -> dict[str, float]:
    """Milliseconds of one ``forward_exploration`` of ``batch`` random uint8 observations on CPU.

    Returns the best and median wall-clock times and the best CPU time of the calling thread (steadier than wall
    time on a machine shared with other work), and the module's multiply-adds per observation in millions.
    """
    space = gym.spaces.Dict({OBS_KEY: gym.spaces.Box(0, 255, obs_shape, np.uint8),
                             MASK_KEY: gym.spaces.Box(0, 1, (4,), np.int8)})
    module = BattlesnakeCNN(observation_space=space, action_space=gym.spaces.Discrete(4), inference_only=True,
                            model_config=dict(model_config or {}))
    rng = np.random.default_rng(0)
    obs = {OBS_KEY: torch.from_numpy(rng.integers(0, 256, (batch, *obs_shape), dtype=np.uint8)),
           MASK_KEY: torch.from_numpy(rng.integers(0, 2, (batch, 4), dtype=np.int8))}
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    wall, cpu = [], []
    try:
        for i in range(repeats + 2):
            start_wall, start_cpu = time.perf_counter(), time.thread_time()
            module.forward_exploration({Columns.OBS: obs})
            if i >= 2:  # the first calls warm up the allocator and oneDNN's kernel cache
                wall.append(time.perf_counter() - start_wall)
                cpu.append(time.thread_time() - start_cpu)
    finally:
        torch.set_num_threads(previous)
    wall.sort()
    return {"best_ms": wall[0] * 1e3, "median_ms": wall[len(wall) // 2] * 1e3, "cpu_best_ms": min(cpu) * 1e3,
            "mmacs_per_obs": module.multiply_adds() / 1e6}


if __name__ == "__main__":
    for shape in ((10, 21, 21), (10, 11, 11)):
        for chunk in (512, 0):
            r = benchmark_forward(shape, model_config={"forward_chunk": chunk})
            print(f"obs {shape} x 4096, 1 thread, forward_chunk={chunk}: wall best {r['best_ms']:.1f} ms, "
                  f"median {r['median_ms']:.1f} ms, cpu best {r['cpu_best_ms']:.1f} ms "
                  f"({r['mmacs_per_obs']:.2f}M multiply-adds per obs)")
