"""The RLlib configuration of a training run: one readable chain, built from ``TrainArgs`` and dotted overrides.

Every snake is played by ONE shared policy (self-play); the fast ``BatchedEnvRunner`` steps many games at once and
hands RLlib one single-agent episode per snake life, so the algorithm sees a single-agent problem with the
single-snake spaces. Algorithms: PPO (default), APPO and IMPALA (asynchronous, distributed successors of APEX-style
training), and DQN with prioritized replay (APEX-DQN itself is gone from RLlib 2.x). Overrides reach any RLlib
setting: ``rl.training.lr=0.0003`` calls ``config.training(lr=0.0003)``.

The settings themselves (``TrainArgs``, and the ``BatchSettings`` the env runners play) are in
``battlesnake_rllib.settings``.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.algorithms.appo import APPOConfig
from ray.rllib.algorithms.dqn import DQNConfig
from ray.rllib.algorithms.impala import IMPALAConfig
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from .sampler import BatchedEnvRunner, SpacesOnlyEnv
from .settings import ALGORITHM_NAMES, ConfigError, TrainArgs, parse_stage

__all__ = ["ALGORITHMS", "ConfigError", "TrainArgs", "apply_overrides", "build_config", "parse_override",
           "parse_stage"]

#: Each algorithm's RLlib config, in the order of ``ALGORITHM_NAMES``.
ALGORITHMS: dict[str, type[AlgorithmConfig]] = dict(zip(ALGORITHM_NAMES, (PPOConfig, APPOConfig, IMPALAConfig,
                                                                          DQNConfig)))


def build_config(args: TrainArgs) -> AlgorithmConfig:
    """The RLlib config of a run: fast batched sampler, one shared CNN policy, the algorithm's training settings."""
    from .model import BattlesnakeCNN, BattlesnakeCNNQ

    args.validate()
    batch = args.batch_settings()
    module_class = BattlesnakeCNNQ if args.algorithm == "DQN" else BattlesnakeCNN
    config = (
        ALGORITHMS[args.algorithm]()
        .environment(env=SpacesOnlyEnv, env_config=batch.env_config())
        .env_runners(env_runner_cls=BatchedEnvRunner, num_env_runners=args.num_env_runners,
                     num_envs_per_env_runner=1, rollout_fragment_length="auto")
        .rl_module(rl_module_spec=RLModuleSpec(module_class=module_class, model_config=args.model_config()))
        .training(lr=args.lr, gamma=args.gamma, train_batch_size_per_learner=args.train_batch_size)
        .learners(num_learners=0, num_gpus_per_learner=args.num_gpus)
        .debugging(seed=args.seed)
        .reporting(metrics_num_episodes_for_smoothing=200)
    )
    if args.algorithm == "PPO":
        config.training(minibatch_size=args.minibatch_size, num_epochs=args.num_epochs,
                        entropy_coeff=args.entropy_coeff)
    elif args.algorithm == "DQN":
        config.training(train_batch_size_per_learner=args.minibatch_size, double_q=True, dueling=True, n_step=3,
                        num_steps_sampled_before_learning_starts=args.train_batch_size,
                        replay_buffer_config={"type": "PrioritizedEpisodeReplayBuffer", "capacity": 200_000,
                                              "alpha": 0.6, "beta": 0.4})
    else:
        config.training(entropy_coeff=args.entropy_coeff)
    if batch.curriculum or batch.past_policies:  # the driver steers its runners
        from .callbacks import BattlesnakeCallbacks

        config.callbacks(callbacks_class=BattlesnakeCallbacks)
    apply_overrides(config, args.overrides)
    return config


#: The AlgorithmConfig sections an override may name, in the order a section-less ``config.KEY`` is looked up.
SECTIONS = ("training", "env_runners", "learners", "environment", "evaluation", "reporting", "checkpointing",
            "debugging", "fault_tolerance", "resources", "framework", "rl_module", "multi_agent", "callbacks")


def parse_override(text: str) -> tuple[str, str, Any]:
    """``rl.SECTION.KEY=VALUE`` (the ``rl.`` is optional) -> (section, key, value); VALUE is JSON or a string."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like rl.training.lr=0.0003")
    path, raw = text.split("=", 1)
    parts = path.strip().split(".")
    if parts[0] == "rl":
        parts = parts[1:]
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"override {text!r} must name a section and a setting, like rl.training.lr=0.0003")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return parts[0], parts[1], value


def apply_overrides(config: AlgorithmConfig, overrides: list[str]) -> None:
    """Apply dotted overrides, refusing settings RLlib does not have and values of the wrong type."""
    for text in overrides:
        section, key, value = parse_override(text)
        if section == "config":  # rl.training.config.KEY (the archived starter pack's form): find KEY's section
            section = next((s for s in SECTIONS if key in _settings_of(type(config), s)), "")
            if not section:
                raise ConfigError(f"override {text!r}: no section of {type(config).__name__} has a setting {key!r}")
        method = getattr(config, section, None)
        if section.startswith("_") or not callable(method):
            raise ConfigError(f"override {text!r}: AlgorithmConfig has no section {section!r}")
        params = _settings_of(type(config), section)
        if key not in params:
            raise ConfigError(f"override {text!r}: config.{section}() has no setting {key!r}; "
                              f"known: {', '.join(sorted(params))}")
        current = getattr(config, key, None)
        if current is not None and not _same_kind(current, value):
            raise ConfigError(f"override {text!r}: {key} is {type(current).__name__} ({current!r}), "
                              f"got {type(value).__name__} {value!r}")
        method(**{key: value})


def _settings_of(cls: type, section: str) -> set[str]:
    """The keyword settings of ``config.<section>()``, along the class hierarchy (subclasses pass **kwargs up)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        method = klass.__dict__.get(section)
        if method is None:
            continue
        params = inspect.signature(method).parameters.values()
        names |= {p.name for p in params if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return names - {"self"}


def _same_kind(current: Any, value: Any) -> bool:
    if isinstance(current, bool) or isinstance(value, bool):
        return isinstance(current, bool) and isinstance(value, bool)
    if isinstance(current, (int, float)):
        return isinstance(value, (int, float))
    if isinstance(current, (list, tuple)):
        return isinstance(value, (list, tuple))
    if isinstance(current, dict):
        return isinstance(value, dict)
    if isinstance(current, str):
        return isinstance(value, str)
    return True
