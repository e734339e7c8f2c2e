"""What a training run writes and reports: its folder, metric lines, evaluation against bots, exports and plots."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ray.rllib.core.columns import Columns

from battlesnake_gym.evaluation import evaluate
from battlesnake_policy import PolicySpec
from sagemaker_rl.checkpoints import CheckpointStore

#: The per-iteration metrics printed as ``name: value`` lines (SageMaker metric definitions match these names).
#: ``episode_reward_mean`` and ``episode_reward_max`` are the names of the blog post's metric definitions
#: (``RLEstimator.default_metric_definitions(RLToolkit.RAY)``, from Ray 0.8): the mean and the best return of a snake's
#: life over the same window as ``episode_return_mean`` (an episode here is one snake's life, not a whole game).
REPORTED = ("iteration", "episode_return_mean", "episode_len_mean", "env_steps_per_s", "num_env_steps_sampled_lifetime",
            "iteration_s", "episode_reward_mean", "episode_reward_max")

#: Settings a resumed run must keep (they shape the network, its input, or the algorithm's state); any other setting
#: may change on resume and is applied (learning rate, env runners and GPUs of the cluster, opponents, ...).
FIXED_ON_RESUME = ("algorithm", "encoder", "view", "width", "height", "conv_filters", "hidden")
TRAIN_ARGS_FILE = "train_args.json"  # in every checkpoint: the settings it was trained with


def metric_lines(metrics: dict[str, Any]) -> list[str]:
    """``name: value`` lines, one per metric, in a stable order (SageMaker's metric regexes read them)."""
    order = [k for k in REPORTED if k in metrics] + sorted(k for k in metrics if k not in REPORTED)
    lines = []
    for key in order:
        value = metrics[key]
        lines.append(f"{key}: {value:.6g}" if isinstance(value, float) else f"{key}: {value}")
    return lines


def resume_changes(checkpoint: Path, args, run_folder: Path | None = None) -> dict[str, tuple[Any, Any]]:
    """The settings that differ from those ``checkpoint`` was trained with: name -> (then, now).

    They are read from the checkpoint's ``train_args.json`` (else the run folder's ``config.json``, for checkpoints
    written before it; else nothing is compared). A change of a ``FIXED_ON_RESUME`` setting raises ``ConfigError``
    naming each one; every other change is applied by the resumed run (it builds its algorithm from the settings it
    is given, then restores the checkpoint's state into it).
    """
    from .config import ConfigError

    source = checkpoint / TRAIN_ARGS_FILE
    if not source.is_file() and run_folder is not None:
        source = run_folder / "config.json"
    if not source.is_file():
        return {}
    saved = json.loads(source.read_text())
    now = args.to_dict()
    changed = {name: (saved[name], value) for name, value in now.items() if name in saved and saved[name] != value}
    fixed = [name for name in FIXED_ON_RESUME if name in changed]
    if fixed:
        raise ConfigError(f"cannot resume from {checkpoint} with other settings for "
                          + "; ".join(f"{name} ({changed[name][0]!r} in the checkpoint, {changed[name][1]!r} now)"
                                      for name in fixed)
                          + ": they change the network, its input or the algorithm. Set them back, or start a new "
                            "run (another --out; in SageMaker another checkpoint_s3_uri)")
    return changed


def apply_learning_rate(algo) -> float:
    """After a restore each optimizer holds the checkpoint's learning rate until its first update: give it this
    run's (its schedule's value now). Returns the learning rate the optimizers have."""
    from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

    steps = int(algo.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0))

    def set_learning_rate(learner) -> list[float]:
        rates = []
        for optimizer, schedule in learner._optimizer_lr_schedules.items():
            learner._set_optimizer_lr(optimizer, lr=schedule.update(timestep=steps))
            rates += [float(group["lr"]) for group in optimizer.param_groups]
        return rates

    rates = [rate for call in algo.learner_group.foreach_learner(set_learning_rate) for rate in call.get()]
    return rates[0] if rates else float("nan")


class ModulePolicy:
    """An RLModule as an evaluation policy: greedy (argmax) actions over the masked logits."""

    def __init__(self, module):
        self.module = module

    def __call__(self, obs: np.ndarray, action_mask: np.ndarray) -> np.ndarray:
        batch = {Columns.OBS: {"observation": torch.from_numpy(np.ascontiguousarray(obs)),
                               "action_mask": torch.from_numpy(action_mask.astype(np.int8))}}
        with torch.no_grad():
            out = self.module.forward_inference(batch)
        if Columns.ACTIONS in out:  # value-based modules (DQN) return their greedy actions
            return out[Columns.ACTIONS].numpy()
        return out[Columns.ACTION_DIST_INPUTS].argmax(-1).numpy()


def evaluate_module(algo, args, opponents: Sequence[str], games: int, replay_to: Path | None = None) -> dict:
    """Win rates of the current policy in 1v1 games against each bot (and a replay GIF of a 4-snake game)."""
    policy = ModulePolicy(algo.get_module())
    spec = args.policy_spec()
    report = evaluate(policy, opponents=list(opponents), games=games, modes=("1v1",), settings=spec.settings(),
                      encoder=spec.make_encoder(), seed=1234, max_turns=args.max_turns)
    metrics = {}
    for opponent in opponents:
        result = report["1v1", opponent]
        metrics[f"win_rate_vs_{opponent}"] = result.win_rate
    if replay_to is not None:
        record_game(policy, spec, list(opponents)[-1], replay_to)
    return metrics


def record_game(policy, spec: PolicySpec, opponent: str, path: Path, seed: int = 7) -> list[dict]:
    """Play one 4-snake game of the run's board (``spec``), the policy in slot 0 against ``opponent`` bots, and save
    it as a GIF."""
    from battlesnake_gym.evaluation import record_game as play_recorded
    from battlesnake_gym.render import save_gif

    boards = play_recorded(policy, opponent, settings=spec.settings(), encoder=spec.make_encoder(),
                           max_turns=spec.max_turns, seed=seed)
    save_gif(boards, path)
    return boards


class Progress:
    """A one-line progress bar on a terminal (stderr); elsewhere a line at every tenth of the budget."""

    def __init__(self, minutes: float, iterations: int | None, stream=None, start: float | None = None):
        import sys

        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        # ``start``: when the run's clock started (before the imitation warm start, which its minutes include)
        self.start, self.minutes, self.iterations = time.time() if start is None else start, minutes, iterations
        self._tenth = -1

    def update(self, iteration: int, metrics: dict) -> None:
        done = (time.time() - self.start) / (60 * self.minutes) if self.minutes > 0 else 0.0
        if self.iterations:
            done = max(done, iteration / self.iterations)
        done = min(done, 1.0)
        wins = " ".join(f"{k.removeprefix('win_rate_vs_')} {v:.0%}" for k, v in metrics.items()
                        if k.startswith("win_rate_vs_"))
        text = (f"[{'#' * int(done * 20):<20}] {done:4.0%}  {(time.time() - self.start) / 60:4.1f}/"
                f"{self.minutes:g} min  iteration {iteration}  return {metrics.get('episode_return_mean', 0):+.2f}"
                + (f"  wins: {wins}" if wins else ""))
        if self.tty:
            self.stream.write("\r" + text)
            self.stream.flush()
        elif int(done * 10) > self._tenth:
            self._tenth = int(done * 10)
            print(f"progress: {text}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


def _onnx_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) for name in ("onnx", "onnxscript"))


class RunOutputs:
    """The run folder: config, checkpoints, metrics (CSV and TensorBoard), exported model, plots.

    Locally everything lives under ``root``. A SageMaker job splits it the way the platform collects it: metrics,
    plots and the replay under ``output/data`` (output.tar.gz), the exported policy under ``model/`` (model.tar.gz),
    checkpoints under ``checkpoints/`` (synced to ``checkpoint_s3_uri``).
    """

    def __init__(self, root: Path, model_dir: Path | None = None, checkpoint_dir: Path | None = None):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.model_dir = model_dir or root / "model"
        self.checkpoints = CheckpointStore(checkpoint_dir or root / "checkpoints")
        self.metrics_csv = root / "metrics.csv"
        self.replay = root / "replay.gif"
        self._writer = None
        self._rows: list[dict] = []
        self.args = None  # the run's settings (write_config), saved into every checkpoint
        if self.metrics_csv.exists():  # a resumed run appends
            with self.metrics_csv.open() as fh:
                self._rows = list(csv.DictReader(fh))

    def write_config(self, args) -> None:
        """The run's settings (config.json in the run folder, what ``--resume`` and people read) and the policy's
        spec beside the model (``battlesnake_policy``'s config.json: what evaluate, serve and the endpoint read)."""
        from battlesnake_policy import write_config

        self.args = args
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "config.json").write_text(json.dumps(args.to_dict(), indent=2, default=str) + "\n")
        if self.model_dir != self.root:
            write_config(self.model_dir, args.policy_spec(), training=args.to_dict())

    def iteration_metrics(self, result: dict, started: float, steps_before: int | None) -> dict:
        runners = result.get("env_runners", {})
        elapsed = time.time() - started
        steps = int(runners.get("num_env_steps_sampled_lifetime", 0))
        metrics = {
            "iteration": int(result.get("training_iteration", 0)),
            "episode_return_mean": float(runners.get("episode_return_mean", float("nan"))),
            "episode_len_mean": float(runners.get("episode_len_mean", float("nan"))),
            "num_env_steps_sampled_lifetime": steps,
            "iteration_s": elapsed,
            "episode_reward_mean": float(runners.get("episode_return_mean", float("nan"))),
            "episode_reward_max": float(runners.get("episode_return_max", float("nan"))),
        }
        if steps_before is not None and elapsed > 0:
            metrics["env_steps_per_s"] = (steps - steps_before) / elapsed
        for key in ("curriculum_stage", "past_snapshots"):  # only when the run has a curriculum / past opponents
            if key in runners:
                metrics[key] = int(runners[key])
        return metrics

    def rewind(self, iteration: int) -> None:
        """Forget the metrics of iterations after ``iteration`` (a resume from an older checkpoint redoes them)."""
        self._rows = [row for row in self._rows if int(float(row.get("iteration") or 0)) <= iteration]

    def log(self, metrics: dict) -> None:
        self._rows.append({k: v for k, v in metrics.items()})
        keys = list(dict.fromkeys(k for row in self._rows for k in row))
        with self.metrics_csv.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self._rows)
        if self._writer is None:
            from tensorboardX import SummaryWriter

            self._writer = SummaryWriter(str(self.root / "tb"))
        step = int(metrics["iteration"])
        for key, value in metrics.items():
            if key != "iteration" and isinstance(value, (int, float)) and np.isfinite(value):
                self._writer.add_scalar(key, value, step)
        self._writer.flush()

    def save_checkpoint(self, algo) -> Path:
        """The algorithm's state and the run's settings, committed with a manifest (sagemaker_rl.checkpoints)."""
        def write(folder: Path) -> None:
            algo.save_to_path(str(folder))
            if self.args is not None:
                (folder / TRAIN_ARGS_FILE).write_text(json.dumps(self.args.to_dict(), indent=2, default=str) + "\n")

        return self.checkpoints.save(algo.iteration, write)

    def export(self, checkpoint: Path) -> dict[str, Path]:
        """TorchScript and ONNX policies (loadable without Ray) and the RLModule checkpoint, under model/.

        The module comes from the algorithm checkpoint's learner, not from an env runner: runners hold inference-only
        copies without the value head the exports carry.
        """
        from .export import FORMATS, export_module, load_module_checkpoint

        module = load_module_checkpoint(checkpoint)
        folder = self.model_dir
        formats = [f for f in FORMATS if f != "onnx" or _onnx_available()]
        paths = export_module(module, folder, formats=formats)
        module.save_to_path(str((folder / "rl_module").resolve()))
        return {**paths, "rl_module": folder / "rl_module"}

    def plot_learning_curve(self) -> Path | None:
        rows = [r for r in self._rows if str(r.get("episode_return_mean", "nan")) not in ("nan", "")]
        if not rows:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        it = [int(float(r["iteration"])) for r in rows]
        axes[0].plot(it, [float(r["episode_return_mean"]) for r in rows])
        axes[0].set(title="mean return of a snake life", xlabel="iteration")
        axes[1].plot(it, [float(r["episode_len_mean"]) for r in rows], label="life length")
        axes[1].set(title="mean life length (turns) and 1v1 win rates", xlabel="iteration")
        keys = sorted({k for r in self._rows for k in r if k.startswith("win_rate_vs_")})
        if keys:
            ax = axes[1].twinx()
            for key, colour in zip(keys, ("tab:red", "tab:green", "tab:purple", "tab:orange")):
                points = [(int(float(r["iteration"])), float(r[key])) for r in self._rows
                          if r.get(key) not in ("", None)]
                ax.plot(*zip(*points), "o-", color=colour, markersize=3, linewidth=0.8,
                        label=f"win rate vs {key.removeprefix('win_rate_vs_')}")
            ax.set_ylim(0, 1)
            ax.legend(loc="lower right")
        fig.tight_layout()
        path = self.root / "learning_curve.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        return path

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
