"""The settings of a training run, typed and validated when built: one frozen dataclass per concern.

- ``TrainArgs``: what is trained and how (command-line flags, a JSON ``--config`` file, or SageMaker hyperparameters);
- ``RunArgs``: the run itself (its folder, budget, evaluation, checkpoints): the ``run`` flags of ``train-mabs.py``;
- ``BatchSettings``: the games every batched env runner plays, and what the driver steers in them (the opponent pool,
  the past-policy snapshots, the curriculum). The driver builds it from ``TrainArgs`` (``TrainArgs.batch_settings``)
  and hands it to RLlib as the env config's one entry (``BatchSettings.env_config``); runners, callbacks and the
  imitation warm-start read it back with ``BatchSettings.of``;
- ``CurriculumStage``: one stage of a curriculum, ``WIDTHxHEIGHT:SNAKES[@ITERATIONS]``.

Every default is defined once, here (the game's come from ``battlesnake_policy.PolicySpec``, the exported policy's
format). The string under each field is its documentation and the ``--help`` of its flag (``add_flags``). Nothing here
imports Ray or torch, so ``train-mabs.py --help`` and bad settings answer before either loads.

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

import argparse
import ast
import functools
import inspect
import os
import re
import textwrap
import typing
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from battlesnake_gym.engine import GameSettings
from battlesnake_gym.envs import BatchEnv
from battlesnake_gym.observations import ENCODERS, EgocentricEncoder
from battlesnake_gym.rewards import make_rewards
from battlesnake_policy import PolicySpec

#: The game defaults (board, rules, encoder), defined once with the exported-policy format.
GAME = PolicySpec()
#: The algorithms a run can train with (``battlesnake_rllib.config.ALGORITHMS`` holds their RLlib configs).
ALGORITHM_NAMES = ("PPO", "APPO", "IMPALA", "DQN")
#: The opponent-pool entry played by past snapshots of the policy itself (every other entry names a bot).
PAST = "past"
#: ``imitate``'s default: the bot below for the policy algorithms, none for DQN (the learning benchmark's winner).
AUTO_TEACHER, DEFAULT_TEACHER = "auto", "territory"
#: The env config's one key: the run's ``BatchSettings``.
ENV_CONFIG_KEY = "batch"


class ConfigError(ValueError):
    """A training setting that does not exist or does not fit: raised before any Ray worker starts."""


def _positive_ints(owner: object, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(owner, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")


# ---------------------------------------------------------------------------------------------- a curriculum stage

_STAGE = re.compile(r"(\d+)x(\d+):(\d+)(?:@(\d+))?")


@dataclass(frozen=True)
class CurriculumStage:
    """One curriculum stage: the games of its iterations."""

    width: int
    """Board width."""
    height: int
    """Board height."""
    num_snakes: int
    """Snakes a game."""
    iterations: int | None = None
    """Training iterations the stage lasts; None: to the end of the run (the last stage)."""

    def __post_init__(self) -> None:
        _positive_ints(self, ("width", "height", "num_snakes"))
        if self.iterations is not None:
            _positive_ints(self, ("iterations",))

    @property
    def game(self) -> str:
        """``WIDTHxHEIGHT:SNAKES``."""
        return f"{self.width}x{self.height}:{self.num_snakes}"


def parse_stage(text: str) -> CurriculumStage:
    """``WIDTHxHEIGHT:SNAKES[@ITERATIONS]`` -> a ``CurriculumStage`` (``iterations`` None when not given)."""
    match = _STAGE.fullmatch(str(text).strip())
    if match is None:
        raise ConfigError(f"curriculum stage {text!r} must look like WIDTHxHEIGHT:SNAKES or "
                          f"WIDTHxHEIGHT:SNAKES@ITERATIONS, e.g. 7x7:2@20")
    width, height, snakes, iterations = match.groups()
    if int(snakes) < 1 or (iterations is not None and int(iterations) < 1):
        raise ConfigError(f"curriculum stage {text!r}: snakes and iterations must be positive")
    return CurriculumStage(int(width), int(height), int(snakes), None if iterations is None else int(iterations))


# ---------------------------------------------------------------------------------------------- the runners' games


@dataclass(frozen=True)
class BatchSettings:
    """The games every batched env runner plays (``battlesnake_rllib.sampler.BatchedEnvRunner``), and what the driver
    steers in them. Built by ``TrainArgs.batch_settings``; RLlib carries it as ``env_config()``."""

    game: PolicySpec
    """The run's game: encoder, view, board, snakes a game, max turns (a curriculum's last stage)."""
    rewards: str
    """Reward preset (``battlesnake_gym.rewards.PRESETS``)."""
    num_games: int
    """Games a runner steps at once (B)."""
    steps_per_sample: int
    """Batch steps a ``sample()`` call takes when RLlib asks for no particular number."""
    torch_threads: int
    """Inference threads of a runner."""
    seed: int | None
    """Seeds the games (each runner and stage its own)."""
    opponents: tuple[str, ...] = ()
    """The opponent pool: bot names and ``"past"``."""
    opponent_games: float = 0.0
    """Share of the games in which the pool takes every seat but slot 0 (entries taking turns game by game)."""
    past_policies: int = 0
    """Past snapshots a runner keeps for the ``"past"`` seats (0: none)."""
    snapshot_every: int = 0
    """Iterations between two snapshots the driver takes (0: none)."""
    curriculum: tuple[CurriculumStage, ...] = ()
    """The stages, in order, each with its iterations but the last; () without a curriculum."""

    def __post_init__(self) -> None:
        if not isinstance(self.game, PolicySpec):
            raise ConfigError(f"game must be a PolicySpec, got {type(self.game).__name__}")
        _positive_ints(self, ("num_games", "steps_per_sample", "torch_threads"))
        if not 0.0 <= self.opponent_games <= 1.0:
            raise ConfigError(f"opponent_games must be a share in [0, 1], got {self.opponent_games!r}")
        if PAST in self.opponents and self.opponent_games and self.past_policies < 1:
            raise ConfigError(f"the opponent pool has {PAST!r} but past_policies is {self.past_policies}: keep at "
                              f"least one")

    def stage_game(self, stage: int) -> PolicySpec:
        """The game of curriculum stage ``stage`` (the run's game without a curriculum)."""
        if not self.curriculum:
            return self.game
        s = self.curriculum[stage]
        return replace(self.game, width=s.width, height=s.height, num_snakes=s.num_snakes)

    def make_env(self, stage: int = 0, batch_size: int | None = None, seed: int | None = None) -> BatchEnv:
        """``batch_size`` (default ``num_games``) games of ``stage_game(stage)``, seeded with ``seed`` (default
        ``self.seed``)."""
        game = self.stage_game(stage)
        return BatchEnv(game.settings(), num_snakes=game.num_snakes, batch_size=batch_size or self.num_games,
                        encoder=game.make_encoder(), rewards=self.rewards, max_turns=game.max_turns,
                        seed=self.seed if seed is None else seed)

    def env_config(self) -> dict[str, BatchSettings]:
        """RLlib's env config of the run: these settings as its one entry."""
        return {ENV_CONFIG_KEY: self}

    @classmethod
    def of(cls, source: Any) -> BatchSettings:
        """The settings in an env config (or an ``EnvContext``) or in an ``AlgorithmConfig``'s env config."""
        env_config = getattr(source, "env_config", source)
        settings = env_config.get(ENV_CONFIG_KEY) if isinstance(env_config, Mapping) else None
        if not isinstance(settings, cls):
            raise ConfigError(f"the env config must hold the run's BatchSettings under {ENV_CONFIG_KEY!r} "
                              f"(TrainArgs.batch_settings().env_config()), got {env_config!r}")
        return settings


# ---------------------------------------------------------------------------------------------- the training run


@dataclass(frozen=True)
class TrainArgs:
    """Settings of a training run (command-line flags, a JSON config file, or SageMaker hyperparameters)."""

    algorithm: str = "PPO"
    """PPO, APPO, IMPALA, or DQN (prioritized replay)."""
    width: int = GAME.width
    """Board width."""
    height: int = GAME.height
    """Board height."""
    num_snakes: int = GAME.num_snakes
    """Snakes per game, all played by the shared policy."""
    ruleset: str = GAME.ruleset
    """Official ruleset."""
    map: str = GAME.map
    """Official map."""
    encoder: str = GAME.encoder
    """Observation encoder (battlesnake_gym.observations.ENCODERS)."""
    view: int = GAME.view
    """Egocentric window (odd); 0 = the whole board (2H-1 x 2W-1)."""
    rewards: str = "default"
    """Reward preset (battlesnake_gym.rewards.PRESETS)."""
    max_turns: int = GAME.max_turns
    """Games still running are truncated here."""
    num_games: int = 128
    """Games each env runner steps at once."""
    steps_per_sample: int = 16
    """Batch steps per sample() call of a runner."""
    num_env_runners: int = 0
    """Remote sampling actors (0: sample in the driver)."""
    num_gpus: float = 0.0
    """GPUs for the learner."""
    torch_threads: int = 0
    """Torch threads of the driver (learner, and sampling when it is local); 0 = one a CPU."""
    lr: float = 3e-4
    """Learning rate."""
    gamma: float = 0.99
    """Discount."""
    train_batch_size: int = 8192
    """Snake-steps per training iteration."""
    minibatch_size: int = 1024
    """SGD minibatch (PPO)."""
    num_epochs: int = 2
    """SGD passes over each batch (PPO)."""
    entropy_coeff: float = 0.01
    """Exploration bonus."""
    conv_filters: list[int] = field(default_factory=lambda: [12, 24])
    """CNN channels (3x3 stride-2 convs)."""
    hidden: int = 128
    """Fully connected width."""
    opponents: list[str] = field(default_factory=lambda: ["safe", "greedy"])
    """Opponent pool: bots and "past"."""
    opponent_games: float = 0.0
    """Share of games where the pool takes every seat but one (0: pure self-play)."""
    past_policies: int = 5
    """Past snapshots of the policy kept for the pool's "past" entry."""
    snapshot_every: int = 10
    """Iterations between two snapshots of the policy (with "past" in the pool)."""
    curriculum: list[str] = field(default_factory=list)
    """Stages WxH:SNAKES[@ITERATIONS]; the last is the run's game."""
    stage_iterations: int = 20
    """Iterations of a curriculum stage that gives no @ITERATIONS."""
    imitate: str = "auto"
    """A bot the policy first learns to imitate before RL; auto: the territory bot (DQN: none, its Q-network has no
    policy to imitate); "" = start from scratch."""
    imitation_samples: int = 500_000
    """Snake-turns of the bot's games recorded for the imitation, at most (a run records no more than its RL samples,
    and for a quarter of its minutes at most)."""
    imitation_epochs: int = 2
    """Supervised passes over them."""
    seed: int = 0
    """Seeds games, runners and torch."""
    overrides: list[str] = field(default_factory=list)
    """Dotted RLlib settings, e.g. rl.training.lr=0.001."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ConfigError`` naming the first setting that does not exist or does not fit."""
        if self.algorithm not in ALGORITHM_NAMES:
            raise ConfigError(f"unknown algorithm {self.algorithm!r}; known: {', '.join(ALGORITHM_NAMES)}")
        if self.encoder not in ENCODERS:
            raise ConfigError(f"unknown encoder {self.encoder!r}; known: {', '.join(ENCODERS)}")
        if self.view and (self.view < 3 or self.view % 2 == 0):
            raise ConfigError(f"view must be 0 or an odd number >= 3, got {self.view}")
        if isinstance(self.torch_threads, bool) or not isinstance(self.torch_threads, int) or self.torch_threads < 0:
            raise ConfigError(f"torch_threads must be 0 (one a CPU core) or a positive integer, got "
                              f"{self.torch_threads!r}")
        _positive_ints(self, ("num_snakes", "max_turns", "num_games", "steps_per_sample", "train_batch_size",
                              "minibatch_size", "num_epochs", "hidden", "past_policies", "snapshot_every",
                              "stage_iterations", "imitation_samples", "imitation_epochs"))
        from battlesnake_gym.bots import BOTS

        if self.imitate and self.imitate != AUTO_TEACHER and self.imitate not in BOTS:
            raise ConfigError(f"unknown bot to imitate {self.imitate!r}; known: {AUTO_TEACHER}, {', '.join(BOTS)}")
        if self.imitate and self.imitate != AUTO_TEACHER and self.algorithm == "DQN":
            raise ConfigError("imitate needs a policy network (PPO, APPO or IMPALA), not DQN's Q-network")
        unknown = [name for name in self.opponents if name not in BOTS and name != PAST]
        if unknown:
            raise ConfigError(f"unknown opponent bots {unknown}; known: {', '.join(BOTS)}, and {PAST!r} (past "
                              f"snapshots of the policy)")
        if not 0.0 <= self.opponent_games <= 1.0:
            raise ConfigError(f"opponent_games must be a share in [0, 1], got {self.opponent_games}")
        try:
            self.game_settings()
            make_rewards(self.rewards)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if self.curriculum:
            self._validate_curriculum()

    def curriculum_stages(self) -> list[CurriculumStage]:
        """The parsed curriculum, each stage but the last with its iterations (the last one's is None: it lasts to
        the end of the run); [] without a curriculum."""
        stages = [parse_stage(text) for text in self.curriculum]
        return [replace(stage, iterations=self.stage_iterations) if stage.iterations is None and i < len(stages) - 1
                else stage for i, stage in enumerate(stages)]

    def _validate_curriculum(self) -> None:
        stages = self.curriculum_stages()
        last, game = self.curriculum[-1], f"{self.width}x{self.height}:{self.num_snakes}"
        if stages[-1].iterations is not None:
            raise ConfigError(f"the last curriculum stage {last!r} lasts to the end of the run: drop its @ITERATIONS")
        if stages[-1].game != game:
            raise ConfigError(f"the last curriculum stage must be the run's own game {game} (width x height: "
                              f"num_snakes, which evaluation and export use), got {last!r}")
        from battlesnake_gym.engine import Games

        largest = max(max(stage.width, stage.height) for stage in stages)
        if self.windowed and (not self.view or self.view < 2 * largest - 1):
            have = "view 0 (the whole board, whose size changes between stages)" if not self.view else \
                f"view {self.view}"
            raise ConfigError(f"a curriculum needs a fixed egocentric view of at least {2 * largest - 1} cells (the "
                              f"whole {largest}x{largest} board from any head position, as view 0 gives without a "
                              f"curriculum); got {have}: set view to {2 * largest - 1}")
        encoder = self.policy_spec().make_encoder()
        shapes = {}
        for text, stage in zip(self.curriculum, stages):
            try:
                settings = self.game_settings().replace(width=stage.width, height=stage.height)
                Games(settings, num_snakes=stage.num_snakes, batch_size=1, seed=0)
            except ValueError as exc:
                raise ConfigError(f"curriculum stage {text!r}: {exc}") from None
            shapes[text] = tuple(encoder.shape(settings, stage.num_snakes))
        if len(set(shapes.values())) > 1:
            raise ConfigError(f"every curriculum stage must give the same observation shape, but encoder "
                              f"{self.encoder!r} gives {shapes}: use the egocentric encoder with a fixed view")

    def driver_threads(self) -> int:
        """The torch threads of the driver process: ``torch_threads``, or one a CPU core when it is 0."""
        return self.torch_threads or max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                         else os.cpu_count() or 1)

    @property
    def windowed(self) -> bool:
        """Whether the encoder is egocentric (a window centred on the head, ``view`` cells a side)."""
        return issubclass(ENCODERS[self.encoder], EgocentricEncoder)

    def model_config(self) -> dict[str, Any]:
        """The CNN's settings: 3x3 stride-2 convs of ``conv_filters`` channels, then ``hidden`` units."""
        return {"conv_filters": [[c, 3, 2] for c in self.conv_filters], "hidden": [self.hidden]}

    def teacher(self) -> str:
        """The bot the run imitates before RL ("" for none): ``imitate``, with ``auto`` resolved."""
        if self.imitate == AUTO_TEACHER:
            return "" if self.algorithm == "DQN" else DEFAULT_TEACHER
        return self.imitate

    def policy_spec(self) -> PolicySpec:
        """The game the exported policy is for (its model/config.json)."""
        return PolicySpec(encoder=self.encoder, view=self.view, width=self.width, height=self.height,
                          num_snakes=self.num_snakes, ruleset=self.ruleset, map=self.map, max_turns=self.max_turns)

    def game_settings(self) -> GameSettings:
        """The run's board and rules."""
        return GameSettings(width=self.width, height=self.height, ruleset=self.ruleset, map=self.map)

    def batch_settings(self) -> BatchSettings:
        """What every env runner plays: the run's game, the opponent pool, the snapshots and the curriculum."""
        past = PAST in self.opponents and self.opponent_games > 0
        return BatchSettings(
            game=self.policy_spec(), rewards=self.rewards, num_games=self.num_games,
            steps_per_sample=self.steps_per_sample, seed=self.seed,
            # remote runners take one core each; a local runner shares the driver's threads with the learner
            torch_threads=1 if self.num_env_runners else self.driver_threads(),
            opponents=tuple(self.opponents), opponent_games=self.opponent_games,
            past_policies=self.past_policies if past else 0, snapshot_every=self.snapshot_every if past else 0,
            curriculum=tuple(self.curriculum_stages()))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainArgs:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"unknown training settings {unknown}; known: {', '.join(known)}")
        return cls(**values)


@dataclass(frozen=True)
class RunArgs:
    """The run itself: where it writes, how long it trains, how often it evaluates and saves."""

    out: str = "runs/local"
    """Folder for all outputs (a SageMaker job: its output/data)."""
    minutes: float = 10.0
    """Wall-clock training budget."""
    iterations: int | None = None
    """Stop after this many iterations in total."""
    resume: bool = False
    """Continue from the newest checkpoint in --out/checkpoints."""
    config: Path | None = None
    """A JSON file of training settings."""
    eval_every: int = 10
    """Evaluate against bots every N iterations (0: off)."""
    eval_games: int = 40
    """Games per opponent in each evaluation."""
    eval_opponents: str = "safe,greedy"
    """Bots to evaluate against."""
    checkpoint_every: int = 10
    """Save a checkpoint every N iterations."""
    no_export: bool = False
    """Skip the TorchScript/ONNX export at the end."""
    given: frozenset[str] = field(default=frozenset(), metadata={"flag": False})
    """The training settings given as flags (a job's hyperparameters), not taken from --config or the defaults."""

    @property
    def eval_bots(self) -> list[str]:
        """The bots of ``eval_opponents``."""
        return [name for name in self.eval_opponents.split(",") if name]


# ---------------------------------------------------------------------------------------------- flags


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The string literal under each field of dataclass ``cls`` in its source, on one line: field -> text."""
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body
    docs = {}
    for node, following in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant) and isinstance(following.value.value, str)):
            docs[node.target.id] = " ".join(following.value.value.split())
    return docs


def add_flags(group: argparse._ActionsContainer, cls: type, *, given_only: bool = False) -> None:
    """One ``--kebab-case`` flag per field of dataclass ``cls`` (but those with ``metadata["flag"]`` False), its
    ``--help`` the field's docstring and default. ``given_only``: the flags default to None, so that the fields not
    given can be told apart (and taken from elsewhere)."""
    docs, hints = field_docs(cls), typing.get_type_hints(cls)
    for f in fields(cls):
        if not f.metadata.get("flag", True):
            continue
        default = f.default_factory() if f.default is MISSING else f.default  # type: ignore[misc]
        flag, kind = f"--{f.name.replace('_', '-')}", hints[f.name]
        text = docs.get(f.name, "").replace("%", "%%")
        if kind is bool:
            group.add_argument(flag, dest=f.name, action="store_true", default=None if given_only else default,
                               help=text)
            continue
        shown = '""' if default == "" else default
        options: dict[str, Any] = {"default": None if given_only else default,
                                   "help": f"{text} Default: {shown}." if default is not None else text}
        if typing.get_origin(kind) is list:
            options.update(type=typing.get_args(kind)[0], nargs="*")
        else:
            options["type"] = next((k for k in typing.get_args(kind) if k is not type(None)), kind)
        group.add_argument(flag, dest=f.name, **options)


def flag_values(cls: type, namespace: argparse.Namespace) -> dict[str, Any]:
    """The fields of ``cls`` given in ``namespace`` (those not None)."""
    return {f.name: getattr(namespace, f.name) for f in fields(cls)
            if getattr(namespace, f.name, None) is not None}
