"""The torch side of the Battlesnake modules, without Ray: ``CnnConfig`` (the ``model_config`` keys, validated; see
``model`` for what each means), the observation space's board planes and mask, the per-channel input scale, the
``CnnTrunk``, the ``QHead``, and the heads an exported policy runs (``ActorCriticHeads``, ``QValueHeads``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

OBS_KEY = "observation"
MASK_KEY = "action_mask"


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
        if OBS_KEY not in space.spaces:
            raise ValueError(f"a Dict observation space needs an {OBS_KEY!r} entry, got keys {list(space.spaces)}")
        board, has_mask = space[OBS_KEY], MASK_KEY in space.spaces
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
