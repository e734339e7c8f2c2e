"""The RLlib configuration of a training run: one readable chain, built from ``TrainArgs`` and dotted overrides.

Every snake is played by ONE shared policy (self-play); the fast ``BatchedEnvRunner`` steps many games at once and
hands RLlib one single-agent episode per snake life, so the algorithm sees a single-agent problem with the
single-snake spaces. Algorithms: PPO (default), APPO and IMPALA (asynchronous, distributed successors of APEX-style
training), and DQN with prioritized replay (APEX-DQN itself is gone from RLlib 2.x). Overrides reach any RLlib
setting: ``rl.training.lr=0.0003`` calls ``config.training(lr=0.0003)``.

Curriculum (``curriculum``): the run plays a list of stages ``WIDTHxHEIGHT:SNAKES[@ITERATIONS]``, e.g.
``["7x7:2@20", "9x9:4@20", "11x11:4"]``: 20 iterations of 2-snake 7x7 games, 20 of 4-snake 9x9 games, then the run's
own game for the rest of the run. A stage without ``@N`` lasts ``stage_iterations``; the last stage must be the run's
game (``width`` x ``height``, ``num_snakes``), which evaluation and export use, and lasts to the end. The stage is a
function of the driver's iteration count (so a resumed run picks up where it was); the driver's callbacks
(``battlesnake_rllib.callbacks``) send it to every env runner. Every stage must give the policy the same observation
shape: with the egocentric encoder, a fixed ``view`` of at least ``2 * largest side - 1`` (21 for 11x11), which shows
the whole board from any head position on every stage, as ``view=0`` does without a curriculum.

Past-policy opponents (``"past"`` in ``opponents``): the pool entry ``past`` seats snapshots of the policy itself.
The driver takes a snapshot of the learner's weights at the start and every ``snapshot_every`` iterations, and every
runner keeps the last ``past_policies``; each opponent seat of a ``past`` game plays one of them, drawn at random
when the game starts, with an inference-only copy of the module. As with bot seats, only the learning seat's
experience goes to RLlib. The snapshots are kept in checkpoints (in the local env runner's state) and sent to every
runner again after a resume.
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.algorithms.appo import APPOConfig
from ray.rllib.algorithms.dqn import DQNConfig
from ray.rllib.algorithms.impala import IMPALAConfig
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from battlesnake_gym.envs import settings_from
from battlesnake_gym.observations import ENCODERS
from battlesnake_gym.rewards import make_rewards
from battlesnake_policy import PolicySpec

from .sampler import PAST, BatchedEnvRunner, SpacesOnlyEnv

#: The game defaults (board, rules, encoder), defined once with the exported-policy format.
GAME = PolicySpec()

ALGORITHMS: dict[str, type[AlgorithmConfig]] = {"PPO": PPOConfig, "APPO": APPOConfig, "IMPALA": IMPALAConfig,
                                                 "DQN": DQNConfig}


class ConfigError(ValueError):
    """A training setting that does not exist or does not fit: raised before any Ray worker starts."""


@dataclass
class TrainArgs:
    """Settings of a training run (command-line flags, a JSON config file, or SageMaker hyperparameters)."""

    algorithm: str = "PPO"  # PPO, APPO, IMPALA, or DQN (prioritized replay)
    width: int = GAME.width  # board width
    height: int = GAME.height  # board height
    num_snakes: int = GAME.num_snakes  # snakes per game, all played by the shared policy
    ruleset: str = GAME.ruleset  # official ruleset
    map: str = GAME.map  # official map
    encoder: str = GAME.encoder  # observation encoder (battlesnake_gym.observations.ENCODERS)
    view: int = GAME.view  # egocentric window (odd); 0 = the whole board (2H-1 x 2W-1)
    rewards: str = "default"  # reward preset (battlesnake_gym.rewards.PRESETS)
    max_turns: int = GAME.max_turns  # games still running are truncated here
    num_games: int = 128  # games each env runner steps at once
    steps_per_sample: int = 16  # batch steps per sample() call of a runner
    num_env_runners: int = 0  # remote sampling actors (0: sample in the driver)
    num_gpus: float = 0.0  # GPUs for the learner
    torch_threads: int = 0  # torch threads of the driver (learner, and sampling when it is local); 0 = one a CPU
    lr: float = 3e-4  # learning rate
    gamma: float = 0.99  # discount
    train_batch_size: int = 8192  # snake-steps per training iteration
    minibatch_size: int = 1024  # SGD minibatch (PPO)
    num_epochs: int = 2  # SGD passes over each batch (PPO)
    entropy_coeff: float = 0.01  # exploration bonus
    conv_filters: list[int] = field(default_factory=lambda: [12, 24])  # CNN channels (3x3 stride-2 convs)
    hidden: int = 128  # fully connected width
    opponents: list[str] = field(default_factory=lambda: ["safe", "greedy"])  # opponent pool: bots and "past"
    opponent_games: float = 0.0  # share of games where the pool takes every seat but one (0: pure self-play)
    past_policies: int = 5  # past snapshots of the policy kept for the pool's "past" entry
    snapshot_every: int = 10  # iterations between two snapshots of the policy (with "past" in the pool)
    curriculum: list[str] = field(default_factory=list)  # stages WxH:SNAKES[@ITERATIONS]; the last is the run's game
    stage_iterations: int = 20  # iterations of a curriculum stage that gives no @ITERATIONS
    imitate: str = ""  # a bot the policy first learns to imitate (e.g. flood; "" = start from scratch)
    imitation_samples: int = 100_000  # snake-turns of the bot's games recorded for the imitation
    imitation_epochs: int = 2  # supervised passes over them
    seed: int = 0  # seeds games, runners and torch
    overrides: list[str] = field(default_factory=list)  # dotted RLlib settings, e.g. rl.training.lr=0.001

    def validate(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(f"unknown algorithm {self.algorithm!r}; known: {', '.join(ALGORITHMS)}")
        if self.encoder not in ENCODERS:
            raise ConfigError(f"unknown encoder {self.encoder!r}; known: {', '.join(ENCODERS)}")
        if self.view and (self.view < 3 or self.view % 2 == 0):
            raise ConfigError(f"view must be 0 or an odd number >= 3, got {self.view}")
        if isinstance(self.torch_threads, bool) or not isinstance(self.torch_threads, int) or self.torch_threads < 0:
            raise ConfigError(f"torch_threads must be 0 (one a CPU core) or a positive integer, got "
                              f"{self.torch_threads!r}")
        for name in ("num_snakes", "max_turns", "num_games", "steps_per_sample", "train_batch_size",
                     "minibatch_size", "num_epochs", "hidden", "past_policies", "snapshot_every", "stage_iterations",
                     "imitation_samples", "imitation_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        from battlesnake_gym.bots import BOTS

        if self.imitate and self.imitate not in BOTS:
            raise ConfigError(f"unknown bot to imitate {self.imitate!r}; known: {', '.join(BOTS)}")
        if self.imitate and self.algorithm == "DQN":
            raise ConfigError("imitate needs a policy network (PPO, APPO or IMPALA), not DQN's Q-network")
        unknown = [name for name in self.opponents if name not in BOTS and name != PAST]
        if unknown:
            raise ConfigError(f"unknown opponent bots {unknown}; known: {', '.join(BOTS)}, and {PAST!r} (past "
                              f"snapshots of the policy)")
        if not 0.0 <= self.opponent_games <= 1.0:
            raise ConfigError(f"opponent_games must be a share in [0, 1], got {self.opponent_games}")
        try:
            settings_from(self.game_settings())
            make_rewards(self.rewards)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if self.curriculum:
            self._validate_curriculum()

    def curriculum_stages(self) -> list[dict[str, Any]]:
        """The parsed curriculum: ``[{"width", "height", "num_snakes", "iterations"}, ...]``, the last stage's
        iterations None (it lasts to the end of the run); [] without a curriculum."""
        stages = [parse_stage(text) for text in self.curriculum]
        for stage in stages[:-1]:
            if stage["iterations"] is None:
                stage["iterations"] = self.stage_iterations
        return stages

    def _validate_curriculum(self) -> None:
        stages = self.curriculum_stages()
        last, game = self.curriculum[-1], f"{self.width}x{self.height}:{self.num_snakes}"
        if stages[-1]["iterations"] is not None:
            raise ConfigError(f"the last curriculum stage {last!r} lasts to the end of the run: drop its @ITERATIONS")
        if (stages[-1]["width"], stages[-1]["height"], stages[-1]["num_snakes"]) != (self.width, self.height,
                                                                                     self.num_snakes):
            raise ConfigError(f"the last curriculum stage must be the run's own game {game} (width x height: "
                              f"num_snakes, which evaluation and export use), got {last!r}")
        from battlesnake_gym.engine import Games
        from battlesnake_gym.observations import make_encoder

        largest = max(max(stage["width"], stage["height"]) for stage in stages)
        if self.windowed and (not self.view or self.view < 2 * largest - 1):
            have = "view 0 (the whole board, whose size changes between stages)" if not self.view else \
                f"view {self.view}"
            raise ConfigError(f"a curriculum needs a fixed egocentric view of at least {2 * largest - 1} cells (the "
                              f"whole {largest}x{largest} board from any head position, as view 0 gives without a "
                              f"curriculum); got {have}: set view to {2 * largest - 1}")
        encoder = self.env_config()["encoder"]
        encoder = make_encoder(encoder) if isinstance(encoder, str) else encoder
        shapes = {}
        for text, stage in zip(self.curriculum, stages):
            try:
                settings = settings_from(self.game_settings(), width=stage["width"], height=stage["height"])
                Games(settings, num_snakes=stage["num_snakes"], batch_size=1, seed=0)
            except ValueError as exc:
                raise ConfigError(f"curriculum stage {text!r}: {exc}") from None
            shapes[text] = tuple(encoder.shape(settings, stage["num_snakes"]))
        if len(set(shapes.values())) > 1:
            raise ConfigError(f"every curriculum stage must give the same observation shape, but encoder "
                              f"{self.encoder!r} gives {shapes}: use the egocentric encoder with a fixed view")

    def driver_threads(self) -> int:
        """The torch threads of the driver process: ``torch_threads``, or one a CPU core when it is 0."""
        import os

        return self.torch_threads or max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                         else os.cpu_count() or 1)

    @property
    def windowed(self) -> bool:
        """Whether the encoder is egocentric (a window centred on the head, ``view`` cells a side)."""
        from battlesnake_gym.observations import EgocentricEncoder

        return issubclass(ENCODERS[self.encoder], EgocentricEncoder)

    def model_config(self) -> dict[str, Any]:
        """The CNN's settings: 3x3 stride-2 convs of ``conv_filters`` channels, then ``hidden`` units."""
        return {"conv_filters": [[c, 3, 2] for c in self.conv_filters], "hidden": [self.hidden]}

    def policy_spec(self) -> PolicySpec:
        """The game the exported policy is for (its model/config.json)."""
        return PolicySpec(encoder=self.encoder, view=self.view, width=self.width, height=self.height,
                          num_snakes=self.num_snakes, ruleset=self.ruleset, map=self.map, max_turns=self.max_turns)

    def game_settings(self) -> dict[str, Any]:
        return {"width": self.width, "height": self.height, "ruleset": self.ruleset, "map": self.map}

    def env_config(self) -> dict[str, Any]:
        encoder: Any = self.encoder
        if self.view and self.windowed:
            encoder = ENCODERS[self.encoder](view=self.view)
        past = PAST in self.opponents and self.opponent_games > 0
        return {"game_settings": self.game_settings(), "num_snakes": self.num_snakes, "num_games": self.num_games,
                "encoder": encoder, "rewards": self.rewards, "max_turns": self.max_turns,
                "steps_per_sample": self.steps_per_sample, "seed": self.seed,
                # remote runners take one core each; a local runner shares the driver's threads with the learner
                "torch_threads": 1 if self.num_env_runners else self.driver_threads(),
                "opponents": list(self.opponents), "opponent_games": self.opponent_games,
                "past_policies": self.past_policies if past else 0,
                "snapshot_every": self.snapshot_every if past else 0, "curriculum": self.curriculum_stages()}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainArgs:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"unknown training settings {unknown}; known: {', '.join(known)}")
        return cls(**values)


def build_config(args: TrainArgs) -> AlgorithmConfig:
    """The RLlib config of a run: fast batched sampler, one shared CNN policy, the algorithm's training settings."""
    from .model import BattlesnakeCNN, BattlesnakeCNNQ

    args.validate()
    module_class = BattlesnakeCNNQ if args.algorithm == "DQN" else BattlesnakeCNN
    config = (
        ALGORITHMS[args.algorithm]()
        .environment(env=SpacesOnlyEnv, env_config=args.env_config())
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
    env_config = config.env_config
    if env_config["curriculum"] or env_config["past_policies"]:  # the driver steers its runners
        from .callbacks import BattlesnakeCallbacks

        config.callbacks(callbacks_class=BattlesnakeCallbacks)
    apply_overrides(config, args.overrides)
    return config


#: The AlgorithmConfig sections an override may name, in the order a section-less ``config.KEY`` is looked up.
SECTIONS = ("training", "env_runners", "learners", "environment", "evaluation", "reporting", "checkpointing",
            "debugging", "fault_tolerance", "resources", "framework", "rl_module", "multi_agent", "callbacks")


_STAGE = re.compile(r"(\d+)x(\d+):(\d+)(?:@(\d+))?")


def parse_stage(text: str) -> dict[str, Any]:
    """``WIDTHxHEIGHT:SNAKES[@ITERATIONS]`` -> ``{"width", "height", "num_snakes", "iterations"}`` (None: not given)."""
    match = _STAGE.fullmatch(str(text).strip())
    if match is None:
        raise ConfigError(f"curriculum stage {text!r} must look like WIDTHxHEIGHT:SNAKES or "
                          f"WIDTHxHEIGHT:SNAKES@ITERATIONS, e.g. 7x7:2@20")
    width, height, snakes, iterations = match.groups()
    if int(snakes) < 1 or (iterations is not None and int(iterations) < 1):
        raise ConfigError(f"curriculum stage {text!r}: snakes and iterations must be positive")
    return {"width": int(width), "height": int(height), "num_snakes": int(snakes),
            "iterations": None if iterations is None else int(iterations)}


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
