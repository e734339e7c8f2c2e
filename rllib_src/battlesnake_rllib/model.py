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
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
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

__all__ = ["MASKED_LOGIT", "BattlesnakeCNN", "BattlesnakeCNNQ", "CnnConfig", "CnnTrunk", "mask_logits"]

_OBS_KEY = "observation"
_MASK_KEY = "action_mask"


@dataclasses.dataclass(frozen=True)
class CnnConfig:
    """The ``model_config`` keys the Battlesnake modules read (see the module docstring), validated."""

    conv_filters: tuple[tuple[int, int, int], ...] = ((12, 3, 2), (24, 3, 2))
    """Conv layers as (out_channels, kernel, stride); padding kernel // 2."""
    hidden: tuple[int, ...] = (128,)
    """Fully connected ReLU layers after the flatten."""
    obs_scale: str | float | tuple[float, ...] = "high"
    """"high" (1 / the space's per-channel high), one factor, or one factor per channel."""
    channels_last: bool = False
    """Observations are (H, W, C) instead of (C, H, W)."""
    forward_chunk: int = 512
    """Rows per chunk in forwards without autograd (0: one chunk)."""
    share_trunk: bool = True
    """Actor-critic: the value head reads the policy's trunk."""
    dueling: bool = True
    """Q-network: dueling heads."""
    double_q: bool = True
    """Q-network: output the online net's next-state Q-values for double Q-learning."""
    epsilon: float | tuple[tuple[int, float], ...] = ((0, 1.0), (10000, 0.05))
    """Q-network: epsilon-greedy probability, fixed or a piecewise-linear schedule over env steps."""

    @classmethod
    def from_model_config(cls, model_config: Mapping[str, Any] | Any | None) -> CnnConfig:
        """Reads the known keys of an RLlib ``model_config`` (a dict or a dataclass such as DefaultModelConfig).

        Other keys are ignored: RLlib puts its own there (PPO adds ``vf_share_layers``, which ``share_trunk``
        replaces here; DQN adds ``double_q``, ``dueling``, ``epsilon`` and ``num_atoms``, which are read).
        """
        if model_config is None:
            model_config = {}
        elif dataclasses.is_dataclass(model_config) and not isinstance(model_config, type):
            model_config = dataclasses.asdict(model_config)
        if not isinstance(model_config, Mapping):
            raise ValueError(f"model_config must be a dict, got {type(model_config).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        # None means "not set" (DefaultModelConfig's conv_filters is None, for one).
        return cls(**{k: v for k, v in model_config.items() if k in names and v is not None})

    def __post_init__(self) -> None:
        convs = []
        for spec in self.conv_filters:
            if (not isinstance(spec, Sequence) or len(spec) != 3 or not all(_is_int(v) and v > 0 for v in spec)):
                raise ValueError(f"conv_filters entries must be [out_channels, kernel, stride] positive ints, "
                                 f"got {spec!r}")
            convs.append(tuple(int(v) for v in spec))
        object.__setattr__(self, "conv_filters", tuple(convs))
        hidden = (self.hidden,) if _is_int(self.hidden) else self.hidden
        if not isinstance(hidden, Sequence) or not all(_is_int(h) and h > 0 for h in hidden):
            raise ValueError(f"hidden must be a positive int or a list of them, got {self.hidden!r}")
        object.__setattr__(self, "hidden", tuple(int(h) for h in hidden))
        if not self.conv_filters and not self.hidden:
            raise ValueError("conv_filters and hidden cannot both be empty")
        scale = self.obs_scale
        if isinstance(scale, str):
            if scale != "high":
                raise ValueError(f"obs_scale must be 'high', a number or a list of numbers, got {scale!r}")
        elif isinstance(scale, (int, float)) and not isinstance(scale, bool):
            if not math.isfinite(scale) or scale <= 0:
                raise ValueError(f"obs_scale must be positive and finite, got {scale!r}")
            object.__setattr__(self, "obs_scale", float(scale))
        elif isinstance(scale, Sequence) and all(isinstance(s, (int, float)) and math.isfinite(s) for s in scale):
            object.__setattr__(self, "obs_scale", tuple(float(s) for s in scale))
        else:
            raise ValueError(f"obs_scale must be 'high', a number or a list of numbers, got {scale!r}")
        for name in ("channels_last", "share_trunk", "dueling", "double_q"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if not _is_int(self.forward_chunk) or self.forward_chunk < 0:
            raise ValueError(f"forward_chunk must be an int >= 0, got {self.forward_chunk!r}")
        eps = self.epsilon
        if isinstance(eps, (int, float)) and not isinstance(eps, bool):
            if not 0.0 <= eps <= 1.0:
                raise ValueError(f"epsilon must lie in [0, 1], got {eps!r}")
            object.__setattr__(self, "epsilon", float(eps))
        else:
            try:
                steps = tuple((int(t), float(v)) for t, v in eps)
            except (TypeError, ValueError):
                raise ValueError(f"epsilon must be a number or [(timestep, value), ...], got {eps!r}") from None
            if not steps or steps[0][0] != 0 or any(not 0.0 <= v <= 1.0 for _, v in steps):
                raise ValueError(f"an epsilon schedule starts at timestep 0 with values in [0, 1], got {eps!r}")
            object.__setattr__(self, "epsilon", steps)


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def split_observation_space(space: gym.Space) -> tuple[gym.spaces.Box, bool]:
    """(the board-plane Box, whether an action mask comes with it) for a Dict or plain Box observation space."""
    if isinstance(space, gym.spaces.Dict):
        if _OBS_KEY not in space.spaces:
            raise ValueError(f"a Dict observation space needs an {_OBS_KEY!r} entry, got keys {list(space.spaces)}")
        board, has_mask = space[_OBS_KEY], _MASK_KEY in space.spaces
    else:
        board, has_mask = space, False
    if not isinstance(board, gym.spaces.Box) or len(board.shape) != 3:
        raise ValueError(f"the observation must be a 3-D Box of board planes, got {board}")
    return board, has_mask


def channel_scale(board: gym.spaces.Box, config: CnnConfig) -> np.ndarray:
    """(C,) float32: the factor each channel is multiplied by before the first conv."""
    channels = board.shape[-1] if config.channels_last else board.shape[0]
    if config.obs_scale == "high":
        planes = np.moveaxis(board.high, -1, 0) if config.channels_last else board.high
        high = np.asarray(planes, np.float64).reshape(channels, -1).max(axis=1)
        if not np.all(np.isfinite(high)):
            raise ValueError("obs_scale='high' needs a finite observation high: pass obs_scale=<number> instead")
        return np.where(high > 0, 1.0 / np.maximum(high, 1e-12), 1.0).astype(np.float32)
    if isinstance(config.obs_scale, float):
        return np.full(channels, config.obs_scale, np.float32)
    if len(config.obs_scale) != channels:
        raise ValueError(f"obs_scale has {len(config.obs_scale)} factors for {channels} channels")
    return np.asarray(config.obs_scale, np.float32)


class CnnTrunk(nn.Module):
    """``(N, C, H, W)`` (or ``(N, H, W, C)``) raw observations, any dtype -> ``(N, out_features)`` float32 features.

    The per-channel input scale is folded into the first conv's weights, which saves a pass over the (large) float
    copy of the input.
    """

    def __init__(self, obs_shape: Sequence[int], scale: np.ndarray, config: CnnConfig):
        super().__init__()
        self.channels_last = config.channels_last
        c, h, w = (obs_shape[2], obs_shape[0], obs_shape[1]) if config.channels_last else tuple(obs_shape)
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32).view(1, c, 1, 1), persistent=False)
        self.convs = nn.ModuleList()
        self.multiply_adds = 0  # per observation
        for out_channels, kernel, stride in config.conv_filters:
            self.convs.append(nn.Conv2d(c, out_channels, kernel, stride, padding=kernel // 2))
            h, w = (h + 2 * (kernel // 2) - kernel) // stride + 1, (w + 2 * (kernel // 2) - kernel) // stride + 1
            self.multiply_adds += h * w * out_channels * c * kernel * kernel
            c = out_channels
        self.flat_features = c * h * w
        self.fcs = nn.ModuleList()
        width = self.flat_features
        for units in config.hidden:
            self.fcs.append(nn.Linear(width, units))
            self.multiply_adds += width * units
            width = units
        self.out_features = width
        for layer in [*self.convs, *self.fcs]:
            nn.init.orthogonal_(layer.weight, gain=math.sqrt(2.0))
            nn.init.zeros_(layer.bias)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs.to(torch.float32)  # (N, C, H, W) float32, unscaled
        if self.channels_last:
            x = x.permute(0, 3, 1, 2)
        if len(self.convs) == 0:
            x = x * self.scale
        for i, conv in enumerate(self.convs):
            weight = conv.weight * self.scale if i == 0 else conv.weight  # (out, C, k, k) * (1, C, 1, 1)
            x = F.relu(F.conv2d(x, weight, conv.bias, conv.stride, conv.padding))
        x = x.flatten(1)  # (N, flat_features)
        for fc in self.fcs:
            x = F.relu(fc(x))
        return x


class QHead(nn.Module):
    """``(N, F)`` features -> ``(N, A)`` Q-values; dueling: ``V + A - mean(A)`` over all actions."""

    def __init__(self, in_features: int, num_actions: int, dueling: bool):
        super().__init__()
        self.dueling = dueling
        self.advantage = nn.Linear(in_features, num_actions)
        self.value = nn.Linear(in_features, 1) if dueling else None
        nn.init.orthogonal_(self.advantage.weight, gain=0.01)
        nn.init.zeros_(self.advantage.bias)
        if self.value is not None:
            nn.init.orthogonal_(self.value.weight, gain=1.0)
            nn.init.zeros_(self.value.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        advantage = self.advantage(features)
        if self.value is None:
            return advantage
        return self.value(features) + advantage - advantage.mean(dim=-1, keepdim=True)


class ActorCriticHeads(nn.Module):
    """The exported actor-critic: ``(N, *obs_shape)`` raw observations -> ``((N, A) logits, (N,) value)``."""

    def __init__(self, trunk: nn.Module, pi: nn.Module, vf: nn.Module, vf_trunk: nn.Module | None):
        super().__init__()
        self.trunk, self.pi, self.vf, self.vf_trunk = trunk, pi, vf, vf_trunk

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(obs)
        value_features = features if self.vf_trunk is None else self.vf_trunk(obs)
        return self.pi(features), self.vf(value_features).squeeze(-1)


class QValueHeads(nn.Module):
    """The exported Q-network: ``(N, *obs_shape)`` raw observations -> ``((N, A) Q-values, (N,) zeros)``."""

    def __init__(self, trunk: nn.Module, q_head: nn.Module):
        super().__init__()
        self.trunk, self.q_head = trunk, q_head

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.q_head(self.trunk(obs))
        return q, torch.zeros_like(q[:, 0])


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
            return obs[_OBS_KEY], obs.get(_MASK_KEY)
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
    space = gym.spaces.Dict({_OBS_KEY: gym.spaces.Box(0, 255, obs_shape, np.uint8),
                             _MASK_KEY: gym.spaces.Box(0, 1, (4,), np.int8)})
    module = BattlesnakeCNN(observation_space=space, action_space=gym.spaces.Discrete(4), inference_only=True,
                            model_config=dict(model_config or {}))
    rng = np.random.default_rng(0)
    obs = {_OBS_KEY: torch.from_numpy(rng.integers(0, 256, (batch, *obs_shape), dtype=np.uint8)),
           _MASK_KEY: torch.from_numpy(rng.integers(0, 2, (batch, 4), dtype=np.int8))}
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
