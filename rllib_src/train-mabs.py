"""Train a Battlesnake policy by self-play on RLlib: the SageMaker entry point, also run locally.

How to run::

    python rllib_src/train-mabs.py --minutes 10 --out runs/local          # or: battlesnake-rl train
    python rllib_src/train-mabs.py --out runs/local --resume --minutes 5   # continue from the last checkpoint
    python rllib_src/train-mabs.py --algorithm APPO --overrides rl.training.lr=0.0005

Results to expect: on the 2-core CI machine kind, 10 minutes of PPO (standard 11x11, 4 snakes) give a policy that
beats the ``safe`` bot in most 1v1 games; see the README's learning-bar table for measured figures.

Everything a run makes goes into ``--out``: ``config.json``, ``checkpoints/iteration-NNNNNN`` (training resumes
from the newest), ``metrics.csv`` and ``tb/`` (TensorBoard), ``model/`` (TorchScript, ONNX and the RLModule checkpoint,
loadable without Ray), ``learning_curve.png`` and ``replay.gif`` (an evaluation game).

Inside a SageMaker job (a ``resourceconfig.json`` under ``SAGEMAKER_BASE_DIR``, default ``/opt/ml``) the same script
takes its settings from the job's hyperparameters (the flags below, by name, plus ``rl.SECTION.KEY`` RLlib settings,
and the blog post's ``num_iters``, ``num_agents``, ``rl.training.config.num_workers|num_cpus|num_gpus`` and
``aws_region``; an unknown one fails the job naming it), forms a Ray cluster over the job's hosts (worker hosts only
serve env runners), resumes from the newest complete checkpoint in the checkpoint folder (with the job's settings:
the cluster's env runners and GPUs, the learning rate, ...; settings that change the network are refused), saves one
and exports the model when SIGTERM arrives (spot interruption, StopTrainingJob), and writes ``model/``
(model.tar.gz), ``output/data`` and, on error, ``output/failure``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # SageMaker runs this file from source_dir, next to the training package
    sys.path.insert(0, str(HERE))

from battlesnake_rllib.config import build_config  # noqa: E402
from battlesnake_rllib.run import (  # noqa: E402
    Progress,
    RunOutputs,
    apply_learning_rate,
    evaluate_module,
    metric_lines,
    resume_changes,
)
from battlesnake_rllib.settings import ConfigError, RunArgs, TrainArgs, add_flags, flag_values  # noqa: E402
from sagemaker_rl import contract as sagemaker_job  # noqa: E402
from sagemaker_rl.checkpoints import StopSignal  # noqa: E402
from sagemaker_rl.hyperparameters import TUNE_ALIASES, HyperparameterError, to_argv  # noqa: E402

#: The blog post's game hyperparameters, as this script's flags (the generic ones are sagemaker_rl's).
GAME_ALIASES = {"num_agents": ("num_snakes", int)}


def build_parser() -> argparse.ArgumentParser:
    """The flags: the run's (``RunArgs``) and the training settings (``TrainArgs``), each field's docstring its help."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     exit_on_error=False)
    add_flags(parser.add_argument_group("run (RunArgs)"), RunArgs)
    add_flags(parser.add_argument_group("training settings (TrainArgs; also in a --config file)"), TrainArgs,
              given_only=True)
    return parser


def parse_args(argv: list[str] | None = None) -> tuple[TrainArgs, RunArgs]:
    """The training settings (the defaults, then the --config file, then the flags) and the run's own."""
    try:
        ns = build_parser().parse_args(argv)
    except argparse.ArgumentError as exc:
        raise ConfigError(str(exc)) from None
    given = flag_values(TrainArgs, ns)
    run = RunArgs(**flag_values(RunArgs, ns), given=frozenset(given))
    values = json.loads(run.config.read_text()) if run.config else {}
    return TrainArgs.from_dict({**values, **given}), run


@sagemaker_job.failure_guard
def main(argv: list[str] | None = None) -> int:
    # ---------------------------------------------------------------- settings, checked before Ray starts
    job = sagemaker_job.load()
    cluster_settings, hyperparameters = None, {}
    try:
        if job.in_sagemaker:  # the job's hyperparameters are the command line; the toolkit's echo of them is ignored
            from sagemaker_rl.cluster import ClusterError, ClusterSettings

            try:
                cluster_settings, hyperparameters = ClusterSettings.from_hyperparameters(job.hyperparameters)
            except ClusterError as exc:
                raise ConfigError(str(exc)) from None
            argv = to_argv(hyperparameters, build_parser(), aliases={**TUNE_ALIASES, **GAME_ALIASES})
        args, run = parse_args(argv)
        config = build_config(args)
    except (ConfigError, HyperparameterError, ValueError) as exc:
        return bad_settings(job, exc)
    stop = StopSignal()  # from now on SIGTERM (a spot interruption, a stop) only asks the training loop to end
    try:
        return run_job(job, args, run, config, cluster_settings, stop)
    finally:
        if not job.in_sagemaker:  # in a job the process ends here: a late SIGTERM must not kill its clean exit
            stop.restore()


def run_job(job, args: TrainArgs, run: RunArgs, config, cluster_settings, stop: StopSignal) -> int:
    """The job once its settings are good: cluster, resume, training, outputs; its exit code."""
    if job.in_sagemaker:
        out = RunOutputs(job.output_data_dir, model_dir=job.model_dir, checkpoint_dir=job.checkpoint_dir)
    else:
        out = RunOutputs(Path(run.out))

    # ---------------------------------------------------------------- the Ray cluster (worker hosts only serve)
    node = None
    if job.in_sagemaker:
        from sagemaker_rl.cluster import bootstrap

        node = bootstrap(job, cluster_settings)
        if not node.is_head:
            stop.message = "this host keeps serving its env runners until the head has saved and ends training"
            return node.serve_until_done()
    try:
        if node is not None:  # what the cluster runs: env runners and learner GPUs, recorded as the run's settings
            args, config = fit_to_cluster(args, run, node, cluster_settings)
        resume_from = find_checkpoint(out, run, job)
        if resume_from is not None:
            for name, (then, now) in resume_changes(resume_from, args, out.root).items():
                print(f"resumed with a changed setting: {name} {then!r} -> {now!r}")
    except (ConfigError, FileNotFoundError) as exc:
        if node is not None:
            node.finish(success=False, reason=str(exc))
        return bad_settings(job, exc)
    except BaseException:
        if node is not None:
            node.finish(success=False)
        raise
    out.write_config(args)
    try:
        code = train(config, args, run, out, resume_from, node, stop)
    except BaseException:
        if node is not None:
            node.finish(success=False)  # worker hosts leave now instead of waiting for a head that is gone
        raise
    if node is not None:
        node.finish(success=code == 0)
    return code


def bad_settings(job, exc: Exception) -> int:
    """A setting that cannot run: the message on stderr (and in output/failure in a job), exit code 2."""
    print(f"error: {exc}", file=sys.stderr)
    if job.in_sagemaker:
        sagemaker_job.write_failure(job, f"bad training settings: {exc}")
    return 2


def fit_to_cluster(args: TrainArgs, run: RunArgs, node, cluster_settings) -> tuple[TrainArgs, object]:
    """The env runners and learner GPUs the cluster runs (sagemaker_rl.cluster.plan_rollouts), in the settings."""
    from sagemaker_rl.cluster import ClusterError, plan_rollouts

    try:
        rollouts = plan_rollouts(
            node, cluster_settings,
            env_runners=("num_env_runners", args.num_env_runners) if "num_env_runners" in run.given else None,
            gpus=("num_gpus", args.num_gpus) if "num_gpus" in run.given else None)
    except ClusterError as exc:
        raise ConfigError(str(exc)) from None
    for note in rollouts.notes:
        print(f"note: {note}", flush=True)
    args = replace(args, num_env_runners=rollouts.num_env_runners, num_gpus=rollouts.num_gpus)
    return args, build_config(args)


def find_checkpoint(out: RunOutputs, run: RunArgs, job) -> Path | None:
    """The newest complete checkpoint to resume from (a SageMaker job always looks; a local run with --resume),
    after removing unfinished ones (a save cut short, a torn upload)."""
    if not (run.resume or job.in_sagemaker):
        return None
    for line in out.checkpoints.clean():
        print(f"removed an incomplete checkpoint: {line}", flush=True)
    newest = out.checkpoints.newest()
    if run.resume and newest is None:
        raise FileNotFoundError(f"--resume but no complete checkpoint in {out.checkpoints.folder}")
    return newest


def train(config, args: TrainArgs, run: RunArgs, out: RunOutputs, resume_from: Path | None, node,
          stop: StopSignal) -> int:
    import ray
    import torch

    torch.set_num_threads(args.driver_threads())  # the learner's threads (a local runner sets the same)

    # ---------------------------------------------------------------- algorithm: new, or restored
    if node is not None and node.address:
        ray.init(address=node.address, log_to_driver=False, configure_logging=False)
    else:
        ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False,
                 num_cpus=max(2, (os.cpu_count() or 2)), configure_logging=False)
    stop.install()  # ray.init took SIGTERM over (it exits at once): take it back
    deadline = time.time() + 60 * run.minutes
    if resume_from is not None:  # this run's settings, the checkpoint's state (weights, optimizer, iteration, ...)
        algo = config.build_algo()
        algo.restore_from_path(resume_from)
        lr = apply_learning_rate(algo)
        out.rewind(algo.iteration)
        print(f"resumed from {resume_from} at iteration {algo.iteration} (learning rate now {lr:g}, "
              f"{args.num_env_runners} env runners)")
    else:
        algo = config.build_algo()
        if args.teacher():  # a warm start: the policy first learns the bot's moves (battlesnake_rllib.imitation)
            from battlesnake_rllib.imitation import imitation_limits, pretrain

            samples, seconds = imitation_limits(args.imitation_samples, run.minutes, run.iterations,
                                                args.train_batch_size)
            stats = pretrain(algo, args.batch_settings(), samples, teacher=args.teacher(),
                             epochs=args.imitation_epochs, gamma=args.gamma, seed=args.seed, seconds=seconds,
                             stop=lambda: bool(stop.requested))
            for line in metric_lines(stats):
                print(line, flush=True)

    # ---------------------------------------------------------------- training loop
    opponents = run.eval_bots
    steps_before = None
    progress = Progress(run.minutes, run.iterations, start=deadline - 60 * run.minutes)
    first = True  # a run trains one iteration at least (so a tiny budget still has metrics), unless told 0 or stopped
    while ((first or time.time() < deadline) and (run.iterations is None or algo.iteration < run.iterations)
           and not stop.requested):
        first = False
        started = time.time()
        result = algo.train()
        metrics = out.iteration_metrics(result, started, steps_before)
        steps_before = metrics["num_env_steps_sampled_lifetime"]
        if run.eval_every and algo.iteration % run.eval_every == 0 and opponents and not stop.requested:
            metrics.update(evaluate_module(algo, args, opponents, run.eval_games))
        for line in metric_lines(metrics):
            print(line, flush=True)
        out.log(metrics)
        progress.update(algo.iteration, metrics)
        if run.checkpoint_every and algo.iteration % run.checkpoint_every == 0 and not stop.requested:
            out.save_checkpoint(algo)

    # ---------------------------------------------------------------- outputs of the run
    stop.message = "training has ended: saving and exporting as planned"
    progress.close()
    checkpoint = out.save_checkpoint(algo)
    print(f"checkpoint: {checkpoint}")
    if node is not None:
        print(f"env_runner_hosts: {env_runner_hosts(algo, node)}")
    if stop.requested:  # spot interruption or stop: checkpoint and model only, within SageMaker's 120 s
        print(f"stopped by {stop.requested} at iteration {algo.iteration}")
        opponents = []
    final = evaluate_module(algo, args, opponents, run.eval_games, replay_to=out.replay) if opponents else {}
    for line in metric_lines({"iteration": algo.iteration, **final}):
        print(line, flush=True)
    if not run.no_export:
        paths = out.export(checkpoint)
        for kind, path in paths.items():
            print(f"model ({kind}): {path}")
        print(f"evaluate it: battlesnake-rl evaluate --model {paths['torchscript']}")
        print(f"serve it:    battlesnake-rl serve --model {out.model_dir}")
    out.plot_learning_curve()
    out.close()
    algo.stop()
    ray.shutdown()
    stop.install()  # ray.shutdown() reset SIGTERM to its default, which would kill the exit still to come
    print(f"run folder: {out.root}")
    return 0


def env_runner_hosts(algo, node) -> str:
    """``algo-1=3,algo-2=4``: how many env runners sampled on each host of the job."""
    import ray

    remote = algo.env_runner_group.num_remote_env_runners() > 0
    addresses = algo.env_runner_group.foreach_env_runner(lambda runner: ray.util.get_node_ip_address(),
                                                         local_env_runner=not remote)
    counts: dict[str, int] = {}
    for address in addresses:
        host = node.host_of_address(address)
        counts[host] = counts.get(host, 0) + 1
    return ",".join(f"{host}={n}" for host, n in sorted(counts.items()))


if __name__ == "__main__":
    code = main()
    try:
        in_job = sagemaker_job.load().in_sagemaker
    except sagemaker_job.ContractError:  # main() has reported it
        in_job = False
    if in_job:
        # A job's host ends here, its work done. Python's own exit would first put SIGTERM back to its default action,
        # then wait on Ray's threads: a SIGTERM meanwhile (docker-compose stopping the job as another host ends)
        # would turn a clean exit into a kill.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
