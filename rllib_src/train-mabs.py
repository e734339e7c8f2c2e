"""Train a Battlesnake policy by self-play on RLlib: the SageMaker entry point, also run locally.

How to run::

    python rllib_src/train-mabs.py --minutes 10 --out runs/local          # or: battlesnake-rl train
    python rllib_src/train-mabs.py --out runs/local --resume --minutes 5   # continue from the last checkpoint
    python rllib_src/train-mabs.py --algorithm APPO --overrides rl.training.lr=0.0005

Results to expect: on the 2-core CI machine kind, 10 minutes of PPO (standard 11x11, 4 snakes) give a policy that
beats the ``safe`` bot in most 1v1 games; see the README's learning-bar table for measured figures.

Everything a run makes goes into ``--out``: ``config.json``, ``checkpoints/latest`` (training resumes from it),
``metrics.csv`` and ``tb/`` (TensorBoard), ``model/`` (TorchScript, ONNX and the RLModule checkpoint, loadable
without Ray), ``learning_curve.png`` and ``replay.gif`` (an evaluation game).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import MISSING, fields
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # SageMaker runs this file from source_dir, next to the training package
    sys.path.insert(0, str(HERE))

from battlesnake_rllib.config import ConfigError, TrainArgs, build_config  # noqa: E402
from battlesnake_rllib.run import Progress, RunOutputs, evaluate_module, metric_lines  # noqa: E402


def parse_args(argv: list[str] | None = None) -> tuple[TrainArgs, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    run = parser.add_argument_group("run")
    run.add_argument("--out", default=os.environ.get("SM_MODEL_DIR", "runs/local"), help="folder for all outputs")
    run.add_argument("--minutes", type=float, default=10.0, help="wall-clock training budget")
    run.add_argument("--iterations", type=int, default=None, help="stop after this many iterations in total")
    run.add_argument("--resume", action="store_true", help="continue from --out/checkpoints/latest")
    run.add_argument("--config", type=Path, default=None, help="a JSON file of training settings")
    run.add_argument("--eval-every", type=int, default=10, help="evaluate against bots every N iterations (0: off)")
    run.add_argument("--eval-games", type=int, default=40, help="games per opponent in each evaluation")
    run.add_argument("--eval-opponents", default="safe,greedy", help="bots to evaluate against")
    run.add_argument("--checkpoint-every", type=int, default=10, help="save a checkpoint every N iterations")
    run.add_argument("--no-export", action="store_true", help="skip the TorchScript/ONNX export at the end")
    settings = parser.add_argument_group("training settings (TrainArgs)")
    for f in fields(TrainArgs):
        default = f.default_factory() if f.default is MISSING else f.default  # type: ignore[misc]
        flag = f"--{f.name.replace('_', '-')}"
        if isinstance(default, list):  # conv_filters: ints; overrides and opponents: strings
            kind = int if f.name == "conv_filters" else str
            settings.add_argument(flag, dest=f.name, type=kind, nargs="*", default=None, help=f"(default {default})")
        else:
            settings.add_argument(flag, dest=f.name, type=type(default), default=None, help=f"(default {default})")
    ns = parser.parse_args(argv)
    values = json.loads(ns.config.read_text()) if ns.config else {}
    values.update({f.name: getattr(ns, f.name) for f in fields(TrainArgs) if getattr(ns, f.name) is not None})
    return TrainArgs.from_dict(values), ns


def main(argv: list[str] | None = None) -> int:
    # ---------------------------------------------------------------- settings, checked before Ray starts
    try:
        args, run = parse_args(argv)
        config = build_config(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = RunOutputs(Path(run.out))
    out.write_config(args)

    # ---------------------------------------------------------------- algorithm: new, or restored
    import ray
    from ray.rllib.algorithms.algorithm import Algorithm

    ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False,
             num_cpus=max(2, (os.cpu_count() or 2)), configure_logging=False)
    if run.resume:
        if not out.latest_checkpoint.exists():
            print(f"error: --resume but no checkpoint at {out.latest_checkpoint}", file=sys.stderr)
            return 2
        algo = Algorithm.from_checkpoint(str(out.latest_checkpoint))
        print(f"resumed from {out.latest_checkpoint} at iteration {algo.iteration}")
    else:
        algo = config.build_algo()

    # ---------------------------------------------------------------- training loop
    deadline = time.time() + 60 * run.minutes
    opponents = [o for o in run.eval_opponents.split(",") if o]
    steps_before = None
    progress = Progress(run.minutes, run.iterations)
    while time.time() < deadline and (run.iterations is None or algo.iteration < run.iterations):
        started = time.time()
        result = algo.train()
        metrics = out.iteration_metrics(result, started, steps_before)
        steps_before = metrics["num_env_steps_sampled_lifetime"]
        if run.eval_every and algo.iteration % run.eval_every == 0 and opponents:
            metrics.update(evaluate_module(algo, args, opponents, run.eval_games))
        for line in metric_lines(metrics):
            print(line, flush=True)
        out.log(metrics)
        progress.update(algo.iteration, metrics)
        if run.checkpoint_every and algo.iteration % run.checkpoint_every == 0:
            out.save_checkpoint(algo)

    # ---------------------------------------------------------------- outputs of the run
    progress.close()
    out.save_checkpoint(algo)
    final = evaluate_module(algo, args, opponents, run.eval_games, replay_to=out.replay) if opponents else {}
    for line in metric_lines({"iteration": algo.iteration, **final}):
        print(line, flush=True)
    if not run.no_export:
        paths = out.export(algo)
        for kind, path in paths.items():
            print(f"model ({kind}): {path}")
        print(f"evaluate it: battlesnake-rl evaluate --model {paths['torchscript']}")
    out.plot_learning_curve()
    out.close()
    algo.stop()
    ray.shutdown()
    print(f"run folder: {out.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
