"""Submit training to SageMaker: one job, N hosts of one type, or a heterogeneous cluster (one job or two).

How to run::

    battlesnake-rl sagemaker launch --mode single --image-uri URI --role ARN --bucket B -H minutes=60
    battlesnake-rl sagemaker launch --mode homogeneous --instance-count 4 ... --spot --max-run 3600 --max-wait 7200
    battlesnake-rl sagemaker launch --mode heterogeneous \\
        --instance-group learner=ml.g5.xlarge:1 --instance-group rollout=ml.c5.4xlarge:2 ...      # one job
    battlesnake-rl sagemaker launch --mode heterogeneous --instance-type ml.g5.xlarge \\
        --secondary-instance-type ml.c5.4xlarge --secondary-instance-count 2 --subnet S --security-group-id G ...
    battlesnake-rl sagemaker launch ... --dry-run      # print what would be submitted, as JSON; submit nothing

or from Python: ``launch("single", image_uri=..., role=..., hyperparameters={"minutes": 60})`` returns the job names;
``build_estimators`` returns the SDK v2 ``RLEstimator`` objects (``fit()`` submits each under its planned name).

Every job runs the same image, the same sources (``train-mabs.py`` with ``battlesnake_rllib`` beside it, plus the
``battlesnake_gym`` and ``sagemaker_rl`` folders as SDK dependencies) and the same training hyperparameters. The
platform hyperparameters below tell the job's Ray bootstrap which part of the cluster it is:

- ``rl_cluster_type``: ``auto`` (one job: the hosts come from its resource config), or ``primary`` / ``secondary``
  (a two-job heterogeneous run: the primary holds the Ray head);
- ``rl_head_instance_group``: one-job heterogeneous runs: the instance group whose first host is the Ray head;
- ``rl_num_instances_secondary``: two-job runs, primary only: how many secondary hosts the primary waits for;
- ``s3_bucket``, ``s3_prefix``: where the hosts of a run meet, ``s3://BUCKET/PREFIX/rendezvous/<rl_run_id>/``;
- ``rl_run_id``: one fresh id per launch, shared by the two jobs of a run (older runs' records are never read);
- ``rl_rendezvous_timeout_s``: how long a host waits for the rest of its cluster before the job fails.

Every job of a launch also gets a fresh *rendezvous secret* in its environment (``SM_RL_RENDEZVOUS_SECRET``, not a
hyperparameter: the toolkit prints hyperparameters in the job's log): the hosts sign their S3 records with it and
derive the Ray auth token from it, so no token is ever written to S3 and a head record from anyone else is refused
(``sagemaker_rl.rendezvous``).

Storage layout, all under ``s3://BUCKET/PREFIX/``: ``code/<job>/source/sourcedir.tar.gz``,
``output/<job>/output/model.tar.gz``, ``checkpoints/<job>/`` (synced with ``/opt/ml/checkpoints``; managed spot
resumes from it) and ``rendezvous/<run id>/`` (the Ray cluster's meeting records, see ``sagemaker_rl.rendezvous``).

Everything is checked before the first request: a bad setting raises ``LaunchError`` naming it, and nothing is
submitted. The launcher is cut by concern: ``launch_settings`` (the settings, names and limits), ``modes`` (the jobs
of each mode, shared with the local runner), ``sources`` (what is shipped), ``launch_plan`` (the checks and the
plan), and this module: the SDK's estimators, submission, and the command line. Its names are the launcher's public
face and are all importable from here. The platform layer is generic: it never imports the game or the training
package (it only finds their folders to ship them).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from .launch_plan import JobPlan, LaunchPlan, _import_sagemaker, _session, plan_launch
from .launch_settings import (
    BUCKET_ENV,
    DEFAULT_BASE_JOB_NAME,
    DEFAULT_CPU_INSTANCE,
    DEFAULT_GPU_INSTANCE,
    DEFAULT_MAX_RUN_S,
    DEFAULT_METRIC_NAMES,
    DEFAULT_PREFIX,
    DEFAULT_RENDEZVOUS_TIMEOUT_S,
    IMAGE_URI_ENV,
    PLATFORM_KEYS,
    PROJECT_ROOT_ENV,
    ROLE_ENV,
    GroupSpec,
    LaunchError,
    LaunchSettings,
    LaunchWarning,
    metric_definitions,
    parse_hyperparameter,
    s3_uri,
)
from .modes import MODES
from .sources import ENTRY_POINT, Sources, find_sources, stage_sources

__all__ = [  # the launcher's public names, wherever they are defined
    "BUCKET_ENV", "DEFAULT_METRIC_NAMES", "ENTRY_POINT", "IMAGE_URI_ENV", "MODES", "PLATFORM_KEYS", "PROJECT_ROOT_ENV",
    "ROLE_ENV", "GroupSpec", "JobPlan", "LaunchError", "LaunchPlan", "LaunchSettings", "LaunchWarning", "Sources",
    "build_estimators", "estimators_for", "find_sources", "launch", "main", "metric_definitions",
    "parse_hyperparameter", "plan_launch", "stage_sources", "submit",
]

# ---------------------------------------------------------------------------------------------- estimators


@functools.cache
def _planned_estimator_class() -> type:
    from sagemaker.rl import RLEstimator

    class PlannedRLEstimator(RLEstimator):
        """An ``RLEstimator`` that submits under the job name its checkpoint folder was planned for.

        ``fit()`` without ``job_name`` uses ``planned_job_name`` (so a second ``fit()`` of the same estimator is
        refused by SageMaker instead of silently sharing the checkpoints of the first).
        """

        def __init__(self, *args: Any, planned_job_name: str, staging: Any = None, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.planned_job_name = planned_job_name
            self._staging = staging  # keeps the staged sources until the estimator is gone

        def fit(self, inputs=None, wait=True, logs="All", job_name=None, experiment_config=None):
            return super().fit(inputs=inputs, wait=wait, logs=logs, job_name=job_name or self.planned_job_name,
                               experiment_config=experiment_config)

    return PlannedRLEstimator


def estimators_for(plan: LaunchPlan, sagemaker_session: Any) -> list:
    """One ``RLEstimator`` per job of the plan (nothing is submitted until ``fit``)."""
    _import_sagemaker()
    from sagemaker.instance_group import InstanceGroup

    sources, staging = stage_sources(plan.sources)
    estimator_class = _planned_estimator_class()
    estimators = []
    for job in plan.jobs:
        if job.instance_groups:
            hosts = {"instance_groups": [InstanceGroup(g.name, g.instance_type, g.instance_count)
                                         for g in job.instance_groups]}
        else:
            hosts = {"instance_type": job.instance_type, "instance_count": job.instance_count}
        estimators.append(estimator_class(
            planned_job_name=job.name, staging=staging,
            entry_point=sources.entry_point, source_dir=str(sources.source_dir),
            dependencies=[str(p) for p in sources.dependencies],
            image_uri=plan.image_uri, role=plan.role, **hosts,
            hyperparameters=dict(job.hyperparameters), environment=dict(plan.environment),
            metric_definitions=[dict(m) for m in plan.metric_definitions], enable_sagemaker_metrics=True,
            output_path=plan.output_path, code_location=plan.code_location,
            checkpoint_s3_uri=job.checkpoint_s3_uri,
            use_spot_instances=plan.use_spot_instances, max_run=plan.max_run, max_wait=plan.max_wait,
            volume_size=plan.volume_size,
            subnets=list(plan.subnets) or None, security_group_ids=list(plan.security_group_ids) or None,
            base_job_name=plan.base_job_name,
            # An RL job has no use for the SDK's tensor debugger hook or profiler rule jobs (extra cost and noise).
            debugger_hook_config=False, disable_profiler=True,
            sagemaker_session=sagemaker_session,
        ))
    return estimators


def build_estimators(mode: str, *, sagemaker_session: Any = None, **settings: Any) -> list:
    """The SDK v2 ``RLEstimator`` objects of a launch, not yet submitted (settings: ``LaunchSettings`` fields).

    Each estimator's ``fit()`` submits it under its planned job name; for a two-job heterogeneous run the list is
    [primary, secondary], and both must be fitted.
    """
    plan = plan_launch(LaunchSettings.from_kwargs(mode, settings), sagemaker_session, create_bucket=True)
    for message in plan.warnings:
        warnings.warn(message, LaunchWarning, stacklevel=2)
    return estimators_for(plan, sagemaker_session or _session(None))


def submit(estimators: Sequence[Any], *, wait: bool = False) -> list[str]:
    """``fit(wait=...)`` each estimator in order; returns the job names.

    When a later job cannot be submitted, the jobs already submitted are stopped (a primary waiting for secondaries
    that never come would hold its instances until the rendezvous times out).
    """
    names: list[str] = []
    for estimator in estimators:
        try:
            estimator.fit(wait=wait)
        except Exception as exc:
            stopped = _stop(estimators[: len(names)], names)
            raise LaunchError(f"submitting job {len(names) + 1} of {len(estimators)} failed: {exc}; {stopped}") \
                from exc
        names.append(estimator.latest_training_job.name)
    return names


def _stop(estimators: Sequence[Any], names: Sequence[str]) -> str:
    if not names:
        return "nothing was submitted"
    left = []
    for estimator, name in zip(estimators, names):
        try:
            estimator.sagemaker_session.sagemaker_client.stop_training_job(TrainingJobName=name)
        except Exception:  # noqa: BLE001 - report what is left running, whatever stopped the stop
            left.append(name)
    if left:
        return ("these jobs could not be stopped, stop them by hand: "
                + "; ".join(f"aws sagemaker stop-training-job --training-job-name {n}" for n in left))
    return f"stopped the jobs already submitted: {', '.join(names)}"


def launch(mode: str, *, sagemaker_session: Any = None, wait: bool = False, **settings: Any) -> list[str]:
    """Submit the jobs of a launch (``fit(wait=False)`` unless ``wait``); returns their names.

    Settings are the ``LaunchSettings`` fields; all are checked before the first job is submitted.
    """
    return submit(build_estimators(mode, sagemaker_session=sagemaker_session, **settings), wait=wait)


# ---------------------------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="battlesnake-rl sagemaker launch", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Submit a training job (single, homogeneous or heterogeneous) to SageMaker.",
        epilog="examples:\n" + __doc__.split("How to run::\n\n")[1].split("\n\nor from Python")[0])
    parser.add_argument("--mode", required=True, choices=MODES)
    parser.add_argument("--dry-run", action="store_true", help="print what would be submitted (JSON); submit nothing")
    where = parser.add_argument_group("image, role, storage")
    where.add_argument("--image-uri", help=f"training image in ECR (default ${IMAGE_URI_ENV})")
    where.add_argument("--role", help=f"IAM role ARN for the job (default ${ROLE_ENV})")
    where.add_argument("--region", help="AWS region (default: the AWS configuration's)")
    where.add_argument("--bucket", help=f"S3 bucket (default ${BUCKET_ENV}, else the SageMaker default bucket)")
    where.add_argument("--prefix", default=DEFAULT_PREFIX, help="key prefix in the bucket (default %(default)s)")
    where.add_argument("--base-job-name", default=DEFAULT_BASE_JOB_NAME, help="job name prefix (default %(default)s)")
    where.add_argument("--run-id", help="id shared by the run's jobs (default: UTC time and random digits)")
    where.add_argument("--project-root", help=f"project checkout to ship (default ${PROJECT_ROOT_ENV}, else the "
                                              f"installed packages' folders)")
    hosts = parser.add_argument_group("instances")
    hosts.add_argument("--instance-type", help=f"every host (single/homogeneous, default {DEFAULT_CPU_INSTANCE}); "
                                               f"the primary's (two-job heterogeneous, default {DEFAULT_GPU_INSTANCE})")
    hosts.add_argument("--instance-count", type=int, help="hosts (homogeneous; two-job: primary hosts, default 1)")
    hosts.add_argument("--instance-group", action="append", default=[], metavar="NAME=TYPE[:COUNT]",
                       help="heterogeneous in one job: an instance group (repeat for each)")
    hosts.add_argument("--head-group", help="one-job heterogeneous: the group holding the Ray head (default: the "
                                            "first GPU group, else the first)")
    hosts.add_argument("--secondary-instance-type", help="heterogeneous in two jobs: the secondary job's type")
    hosts.add_argument("--secondary-instance-count", type=int, help="... and hosts (default 1)")
    hosts.add_argument("--volume-size", type=int, default=30, help="GB of disk per host (default 30)")
    run = parser.add_argument_group("training")
    run.add_argument("--hyperparameter", "-H", action="append", default=[], metavar="KEY=VALUE",
                     help="a training setting (repeat): minutes=60, algorithm=APPO, rl.training.lr=0.0005")
    run.add_argument("--metric", action="append", default=[], metavar="NAME",
                     help="another `NAME: value` log line to record as a SageMaker metric")
    run.add_argument("--max-run", type=int, default=DEFAULT_MAX_RUN_S,
                     help="seconds before SageMaker stops the job (default %(default)s)")
    run.add_argument("--spot", action="store_true", help="managed spot training (needs --max-wait)")
    run.add_argument("--max-wait", type=int, help="spot: seconds of waiting plus training, >= --max-run")
    run.add_argument("--rendezvous-timeout", type=int, default=DEFAULT_RENDEZVOUS_TIMEOUT_S,
                     help="seconds a job waits for the rest of its cluster (default %(default)s)")
    net = parser.add_argument_group("network (needed by two-job heterogeneous runs)")
    net.add_argument("--subnet", action="append", default=[], help="VPC subnet id (repeat, or comma-separated)")
    net.add_argument("--security-group-id", action="append", default=[], help="security group id (repeat, or "
                                                                                 "comma-separated)")
    return parser


def settings_from_args(args: argparse.Namespace) -> LaunchSettings:
    hyperparameters = dict(parse_hyperparameter(text) for text in args.hyperparameter)
    if len(hyperparameters) != len(args.hyperparameter):
        keys = [parse_hyperparameter(text)[0] for text in args.hyperparameter]
        raise LaunchError(f"hyperparameter(s) given twice: {sorted({k for k in keys if keys.count(k) > 1})}")
    def split(values: list[str]) -> list[str]:
        return [v for value in values for v in value.split(",") if v]

    return LaunchSettings(
        mode=args.mode, image_uri=args.image_uri, role=args.role, instance_type=args.instance_type,
        instance_count=args.instance_count, instance_groups=[GroupSpec.parse(g) for g in args.instance_group],
        head_instance_group=args.head_group, secondary_instance_type=args.secondary_instance_type,
        secondary_instance_count=args.secondary_instance_count, hyperparameters=hyperparameters,
        bucket=args.bucket, prefix=args.prefix, base_job_name=args.base_job_name, run_id=args.run_id,
        use_spot_instances=args.spot, max_run=args.max_run, max_wait=args.max_wait,
        subnets=split(args.subnet) or None, security_group_ids=split(args.security_group_id) or None,
        volume_size=args.volume_size, rendezvous_timeout_s=args.rendezvous_timeout,
        metric_names=(*DEFAULT_METRIC_NAMES, *args.metric), project_root=args.project_root)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
        plan = plan_launch(settings, create_bucket=not args.dry_run, region=args.region)
        for message in plan.warnings:
            print(f"warning: {message}", file=sys.stderr)
        if args.dry_run:
            print(json.dumps(plan.to_dict(), indent=2))
            return 0
        names = submit(estimators_for(plan, _session(args.region)))
    except LaunchError as exc:
        print(f"battlesnake-rl sagemaker launch: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - AWS errors (credentials, permissions) end the command, explained
        if not _is_aws_error(exc):
            raise
        print(f"battlesnake-rl sagemaker launch: AWS error: {exc}", file=sys.stderr)
        return 1
    print(f"submitted {len(names)} training job(s), run {plan.run_id}:")
    for job in plan.jobs:
        print(f"  {job.name}  {job.hosts}  rl_cluster_type={job.hyperparameters['rl_cluster_type']}")
    for job in plan.jobs:
        print(f"{job.name}:")
        print(f"  model:       {s3_uri(plan.bucket, plan.prefix, 'output', job.name, 'output', 'model.tar.gz')}")
        print(f"  checkpoints: {job.checkpoint_s3_uri}/")
        print(f"  logs:        aws logs tail /aws/sagemaker/TrainingJobs --follow --log-stream-name-prefix {job.name}")
    return 0


def _is_aws_error(exc: BaseException) -> bool:
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(exc, (BotoCoreError, ClientError, Boto3Error))


if __name__ == "__main__":
    sys.exit(main())
