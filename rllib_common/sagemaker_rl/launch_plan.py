"""The launch plan: every setting of a launch checked, and the jobs it submits worked out, before any request.

``plan_launch(LaunchSettings(...))`` returns a :class:`LaunchPlan` (what ``--dry-run`` prints) or raises
``LaunchError`` naming the bad setting. The jobs of each mode come from the shared planner (``sagemaker_rl.modes``);
this module adds what SageMaker needs of them: names, instance types, the S3 layout, the rendezvous location and
secret, and SageMaker's limits. The SDK is imported only for what the settings leave open (the default bucket, a
notebook's role).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .launch_settings import (
    BUCKET_ENV,
    BUDGET_HYPERPARAMETER,
    DEFAULT_CPU_INSTANCE,
    DEFAULT_GPU_INSTANCE,
    IMAGE_URI_ENV,
    MAX_HYPERPARAMETER_VALUE,
    MAX_HYPERPARAMETERS,
    MAX_INSTANCE_GROUPS,
    MAX_JOB_NAME,
    MAX_METRIC_DEFINITIONS,
    PLATFORM_KEYS,
    ROLE_ENV,
    SDK_HYPERPARAMETERS,
    GroupSpec,
    LaunchError,
    LaunchSettings,
    group_spec,
    metric_definitions,
    s3_uri,
)
from .modes import MODES, plan_jobs
from .rendezvous import SECRET_ENV
from .sources import Sources, find_sources

_JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")
_INSTANCE_TYPE = re.compile(r"ml\.[a-z0-9-]+\.[a-z0-9-]+")
_GROUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_HYPERPARAMETER_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,255}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class JobPlan:
    """One training job of a launch."""

    name: str
    instance_type: str | None  # None when instance_groups is set
    instance_count: int | None
    instance_groups: tuple[GroupSpec, ...]
    hyperparameters: dict[str, Any]  # training and platform values as Python values; the SDK JSON-encodes each
    checkpoint_s3_uri: str

    @property
    def hosts(self) -> str:
        if self.instance_groups:
            return " + ".join(f"{g.instance_count} x {g.instance_type} ({g.name})" for g in self.instance_groups)
        return f"{self.instance_count} x {self.instance_type}"


@dataclass(frozen=True)
class LaunchPlan:
    """What a launch submits: the jobs and the settings they share. Built without any AWS request when the image,
    role and bucket are given."""

    mode: str
    run_id: str
    image_uri: str
    role: str
    bucket: str
    prefix: str
    base_job_name: str
    use_spot_instances: bool
    max_run: int
    max_wait: int | None
    subnets: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    volume_size: int
    metric_definitions: tuple[dict[str, str], ...]
    sources: Sources
    jobs: tuple[JobPlan, ...]
    warnings: tuple[str, ...]
    rendezvous_secret: str = field(default="", repr=False)  # every job's $SM_RL_RENDEZVOUS_SECRET (never printed)

    @property
    def environment(self) -> dict[str, str]:
        """The environment variables of every job of the launch (the secret: see the module docstring)."""
        return {SECRET_ENV: self.rendezvous_secret} if self.rendezvous_secret else {}

    @property
    def output_path(self) -> str:
        return s3_uri(self.bucket, self.prefix, "output")

    @property
    def code_location(self) -> str:
        return s3_uri(self.bucket, self.prefix, "code")

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-able data: one complete entry per job (what ``--dry-run`` prints)."""
        shared = {
            "image_uri": self.image_uri, "role": self.role, "output_path": self.output_path,
            "code_location": self.code_location, "use_spot_instances": self.use_spot_instances,
            "max_run": self.max_run, "max_wait": self.max_wait, "subnets": list(self.subnets),
            "security_group_ids": list(self.security_group_ids), "volume_size": self.volume_size,
            "source_dir": str(self.sources.source_dir), "entry_point": self.sources.entry_point,
            "dependencies": [str(p) for p in self.sources.dependencies],
            "metric_definitions": [dict(m) for m in self.metric_definitions],
            "environment": {name: "<a fresh secret, not shown>" for name in self.environment},
        }
        jobs = []
        for job in self.jobs:
            entry = {"job_name": job.name, "instance_type": job.instance_type, "instance_count": job.instance_count,
                     "instance_groups": [asdict(g) for g in job.instance_groups],
                     "hyperparameters": job.hyperparameters, "checkpoint_s3_uri": job.checkpoint_s3_uri}
            jobs.append({**entry, **shared})
        return {"mode": self.mode, "run_id": self.run_id, "warnings": list(self.warnings), "jobs": jobs}



def plan_launch(settings: LaunchSettings, sagemaker_session: Any = None, *, create_bucket: bool = False,
                region: str | None = None) -> LaunchPlan:
    """Check every setting and work out the jobs of a launch.

    A session (the one given, else a new one in ``region``) is used only for what the settings leave open, after
    every check: the default bucket (named without creating it, unless ``create_bucket``) and the execution role
    inside a SageMaker notebook or Studio.
    """
    s = settings
    if s.mode not in MODES:
        raise LaunchError(f"unknown mode {s.mode!r}; known: {', '.join(MODES)}")
    groups = tuple(group_spec(g) for g in s.instance_groups)
    two_job = s.mode == "heterogeneous" and not groups
    _check_shape(s, groups)
    default_type = DEFAULT_GPU_INSTANCE if two_job else DEFAULT_CPU_INSTANCE
    shapes = plan_jobs(s.mode, instance_type=s.instance_type or default_type, instance_count=s.instance_count,
                       instance_groups=groups, head_instance_group=s.head_instance_group,
                       secondary_instance_type=s.secondary_instance_type,
                       secondary_instance_count=s.secondary_instance_count)
    hyperparameters = _check_hyperparameters(s.hyperparameters)
    max_wait = _check_stopping(s, hyperparameters)
    subnets, security_groups = _check_vpc(s.subnets, s.security_group_ids)
    metrics = _check_metrics(s.metric_names)
    _positive_int("volume_size", s.volume_size)
    _positive_int("rendezvous_timeout_s", s.rendezvous_timeout_s)
    run_id = s.run_id or time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)
    if not _JOB_NAME.fullmatch(run_id) or len(run_id) > 32:
        raise LaunchError(f"run_id {run_id!r}: use up to 32 letters, digits and inner hyphens")
    names = [f"{s.base_job_name}-{run_id}{shape.suffix}" for shape in shapes]
    if not _JOB_NAME.fullmatch(s.base_job_name) or max(map(len, names)) > MAX_JOB_NAME:
        raise LaunchError(f"base_job_name {s.base_job_name!r}: letters, digits and inner hyphens, short enough that "
                          f"{max(names, key=len)!r} fits SageMaker's {MAX_JOB_NAME} characters")
    prefix = s.prefix.strip("/")
    sources = find_sources(s.project_root)
    image_uri = _required(s.image_uri, IMAGE_URI_ENV, "image_uri (--image-uri)",
                          "the training image in ECR, built from docker/ (there is no AWS-provided Ray 2.60 image)")
    role = s.role or os.environ.get(ROLE_ENV) or _notebook_role(sagemaker_session, region)
    bucket = _resolve_bucket(s.bucket, sagemaker_session, create_bucket, region)

    # every job gets the S3 rendezvous location: one-job clusters share their Ray token through it as well
    platform = {"rl_run_id": run_id, "s3_bucket": bucket, "s3_prefix": "/".join(filter(None, (prefix, "rendezvous"))),
                "rl_rendezvous_timeout_s": s.rendezvous_timeout_s}
    warn: list[str] = []
    if two_job and not subnets:
        warn.append("a two-job heterogeneous run without subnets and security_group_ids: each job gets its own "
                    "SageMaker-managed network, the secondary hosts cannot reach the primary's Ray head and will "
                    f"fail after rl_rendezvous_timeout_s={s.rendezvous_timeout_s}. Pass the subnets and security "
                    "group ids of one VPC (the group must allow all traffic between its members, and the subnets "
                    "need S3 access through a VPC endpoint or NAT), or use instance groups in one job.")
    jobs = tuple(
        JobPlan(name=name, instance_type=None if shape.instance_groups else shape.instance_type,
                instance_count=shape.instance_count, instance_groups=shape.instance_groups,
                hyperparameters={**hyperparameters, **platform, **shape.hyperparameters},
                checkpoint_s3_uri=s3_uri(bucket, prefix, "checkpoints", name))
        for name, shape in zip(names, shapes))
    return LaunchPlan(mode=s.mode, run_id=run_id, image_uri=image_uri, role=role, bucket=bucket, prefix=prefix,
                      base_job_name=s.base_job_name, use_spot_instances=s.use_spot_instances, max_run=s.max_run,
                      max_wait=max_wait, subnets=subnets, security_group_ids=security_groups,
                      volume_size=s.volume_size, metric_definitions=tuple(metric_definitions(metrics)),
                      sources=sources, jobs=jobs, warnings=tuple(warn), rendezvous_secret=secrets.token_hex(32))



def _check_shape(s: LaunchSettings, groups: tuple[GroupSpec, ...]) -> None:
    """Instance types and counts fit the mode; settings of another mode are errors, not ignored."""
    if s.instance_count is not None:
        _positive_int("instance_count", s.instance_count)
    for name in ("instance_type", "secondary_instance_type"):
        value = getattr(s, name)
        if value is not None and not _INSTANCE_TYPE.fullmatch(str(value)):
            hint = " (SageMaker local mode is not used here: see `battlesnake-rl sagemaker local`)" \
                if str(value).startswith("local") else ""
            raise LaunchError(f"{name} {value!r} is not a SageMaker instance type like ml.c5.4xlarge{hint}")
    if s.mode != "heterogeneous":
        stray = [n for n in ("instance_groups", "head_instance_group", "secondary_instance_type",
                             "secondary_instance_count") if getattr(s, n)]
        if stray:
            raise LaunchError(f"{', '.join(stray)} only apply to mode 'heterogeneous', not {s.mode!r}")
    if s.mode == "single" and s.instance_count not in (None, 1):
        raise LaunchError(f"mode 'single' runs on one instance, got instance_count={s.instance_count}; use mode "
                          f"'homogeneous' for several")
    if s.mode == "homogeneous" and s.instance_count is None:
        raise LaunchError("mode 'homogeneous' needs instance_count (--instance-count N), the number of hosts")
    if s.mode != "heterogeneous":
        return
    if groups and s.secondary_instance_type:
        raise LaunchError("heterogeneous: give instance_groups (one job) or secondary_instance_type (two jobs), "
                          "not both")
    if not groups and not s.secondary_instance_type:
        raise LaunchError("heterogeneous needs either instance_groups (one job, e.g. --instance-group "
                          "learner=ml.g5.xlarge:1 --instance-group rollout=ml.c5.4xlarge:2) or "
                          "secondary_instance_type (two jobs meeting through S3: a primary of instance_type and a "
                          "secondary of --secondary-instance-type x --secondary-instance-count)")
    if groups:
        if s.secondary_instance_count is not None:
            raise LaunchError("secondary_instance_count applies to two-job heterogeneous runs, not instance_groups")
        if s.instance_type is not None or s.instance_count is not None:
            raise LaunchError("a one-job heterogeneous cluster takes its types and counts from instance_groups; "
                              "drop instance_type/instance_count")
        if not 2 <= len(groups) <= MAX_INSTANCE_GROUPS:
            raise LaunchError(f"heterogeneous: give 2 to {MAX_INSTANCE_GROUPS} instance groups, got {len(groups)} "
                              f"(one group is mode 'homogeneous')")
        for group in groups:
            if not _GROUP_NAME.fullmatch(group.name):
                raise LaunchError(f"instance group name {group.name!r}: letters, digits, '-' and '_' (up to 64)")
            if not _INSTANCE_TYPE.fullmatch(group.instance_type):
                raise LaunchError(f"instance group {group.name!r}: {group.instance_type!r} is not a SageMaker "
                                  f"instance type like ml.c5.4xlarge")
            _positive_int(f"instance group {group.name!r} count", group.instance_count)
        names = [g.name for g in groups]
        if len(set(names)) != len(names):
            raise LaunchError(f"instance group names must differ, got {names}")
        if s.head_instance_group is not None and s.head_instance_group not in names:
            raise LaunchError(f"head_instance_group {s.head_instance_group!r} is not one of the groups {names}")
    else:
        if s.head_instance_group is not None:
            raise LaunchError("head_instance_group applies to one-job heterogeneous clusters (instance_groups); in "
                              "a two-job run the primary job holds the Ray head")
        if s.secondary_instance_count is not None:
            _positive_int("secondary_instance_count", s.secondary_instance_count)


def _check_hyperparameters(raw: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise LaunchError(f"hyperparameters must be a mapping of name to value, got {type(raw).__name__}")
    checked: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not _HYPERPARAMETER_KEY.fullmatch(key):
            raise LaunchError(f"hyperparameter name {key!r}: letters, digits, '_', '.', '-' (e.g. lr, rl.training.lr)")
        if key in PLATFORM_KEYS or key.startswith("sagemaker_"):
            raise LaunchError(f"hyperparameter {key!r} is set by the launcher (platform keys: "
                              f"{', '.join(PLATFORM_KEYS)}; sagemaker_*: the SDK); use the launch settings instead")
        try:
            encoded = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise LaunchError(f"hyperparameter {key!r}: {value!r} is not a JSON value (numbers, strings, booleans, "
                              f"lists)") from None
        if len(encoded) > MAX_HYPERPARAMETER_VALUE:
            raise LaunchError(f"hyperparameter {key!r}: {len(encoded)} characters once JSON-encoded, SageMaker takes "
                              f"at most {MAX_HYPERPARAMETER_VALUE}")
        checked[key] = value
    room = MAX_HYPERPARAMETERS - SDK_HYPERPARAMETERS - len(PLATFORM_KEYS)
    if len(checked) > room:
        raise LaunchError(f"{len(checked)} hyperparameters: SageMaker takes {MAX_HYPERPARAMETERS} in all, which "
                          f"leaves {room} beside the platform's and the SDK's")
    return checked


def _check_stopping(s: LaunchSettings, hyperparameters: Mapping[str, Any]) -> int | None:
    """max_run, and max_wait for managed spot (SageMaker requires max_wait >= max_run)."""
    _positive_int("max_run", s.max_run)
    if not isinstance(s.use_spot_instances, bool):
        raise LaunchError(f"use_spot_instances must be True or False, got {s.use_spot_instances!r}")
    if not s.use_spot_instances:
        if s.max_wait is not None:
            raise LaunchError("max_wait only applies to managed spot training: add use_spot_instances (--spot) or "
                              "drop max_wait")
        max_wait = None
    else:
        if s.max_wait is None:
            raise LaunchError(f"managed spot needs max_wait (--max-wait SECONDS), the time to wait for spot capacity "
                              f"plus training, at least max_run={s.max_run}")
        _positive_int("max_wait", s.max_wait)
        if s.max_wait < s.max_run:
            raise LaunchError(f"managed spot needs max_wait >= max_run, got max_wait={s.max_wait} < "
                              f"max_run={s.max_run}")
        max_wait = s.max_wait
    budget = hyperparameters.get(BUDGET_HYPERPARAMETER)
    if isinstance(budget, (int, float)) and not isinstance(budget, bool) and math.isfinite(budget) \
            and budget * 60 >= s.max_run:
        raise LaunchError(f"hyperparameter {BUDGET_HYPERPARAMETER}={budget:g} is at least max_run={s.max_run} s: "
                          f"SageMaker would stop the job before training ends and the model is exported; raise "
                          f"max_run (--max-run) above {math.ceil(budget * 60)} s plus start-up and export time")
    return max_wait


def _check_vpc(subnets: Sequence[str] | None, security_groups: Sequence[str] | None) -> tuple[tuple, tuple]:
    if isinstance(subnets, str) or isinstance(security_groups, str):
        raise LaunchError("subnets and security_group_ids are lists of ids, not one string")
    subnets, security_groups = tuple(subnets or ()), tuple(security_groups or ())
    if bool(subnets) != bool(security_groups):
        raise LaunchError("a VPC needs both subnets and security_group_ids (got only "
                          f"{'subnets' if subnets else 'security_group_ids'})")
    for what, values, most in (("subnet", subnets, 16), ("security group id", security_groups, 5)):
        if len(values) > most or not all(isinstance(v, str) and v.strip() for v in values):
            raise LaunchError(f"{what}s: 1 to {most} non-empty ids, got {list(values)}")
    return subnets, security_groups


def _check_metrics(names: Sequence[str]) -> tuple[str, ...]:
    names = tuple(names)
    if len(names) > MAX_METRIC_DEFINITIONS or len(set(names)) != len(names):
        raise LaunchError(f"metric names: up to {MAX_METRIC_DEFINITIONS}, each once; got {list(names)}")
    for name in names:
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.:/-]{1,255}", name):
            raise LaunchError(f"metric name {name!r}: letters, digits and _ . : / -")
    return names


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LaunchError(f"{name} must be a whole number >= 1, got {value!r}")


def _required(value: str | None, env: str, what: str, why: str) -> str:
    value = value or os.environ.get(env)
    if not value or not value.strip() or any(c.isspace() for c in value):
        raise LaunchError(f"missing {what}: pass it or set ${env} ({why})")
    return value


def _notebook_role(session: Any, region: str | None) -> str:
    """The execution role of a SageMaker notebook or Studio space; elsewhere a role must be given."""
    message = (f"missing role (--role): pass the ARN of an IAM role SageMaker can assume for training, e.g. "
               f"arn:aws:iam::123456789012:role/SageMakerTraining, or set ${ROLE_ENV}")
    from_notebook = Path("/opt/ml/metadata/resource-metadata.json").exists()  # what the SDK reads in a notebook
    if not from_notebook:
        raise LaunchError(message)
    sagemaker = _import_sagemaker()
    try:
        return sagemaker.get_execution_role(sagemaker_session=session or _session(region))
    except Exception as exc:  # noqa: BLE001 - the SDK raises ValueError or botocore errors here
        raise LaunchError(f"{message} (this notebook's role could not be read: {exc})") from None


def _resolve_bucket(bucket: str | None, session: Any, create: bool, region: str | None) -> str:
    bucket = bucket or os.environ.get(BUCKET_ENV)
    if bucket:
        if not _BUCKET.fullmatch(bucket):
            raise LaunchError(f"bucket {bucket!r} is not an S3 bucket name (3-63 lowercase letters, digits, '.', "
                              f"'-'; no s3:// and no key)")
        return bucket
    session = session or _session(region)
    if create:
        return session.default_bucket()
    from sagemaker.session import generate_default_sagemaker_bucket_name

    return generate_default_sagemaker_bucket_name(session.boto_session)



def _import_sagemaker():
    """The SDK, imported on first use (``--help`` and validation do without it) and without its v2 banner: the pin
    to v2 is deliberate (v3 removed RLEstimator)."""
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    logging.getLogger("sagemaker.config").setLevel(logging.WARNING)
    try:
        import sagemaker
    except ImportError as exc:
        raise LaunchError(f"the SageMaker SDK v2 is not installed ({exc}): pip install -e '.[sagemaker]'") from None
    return sagemaker


def _session(region: str | None) -> Any:
    """A SageMaker session on the default AWS configuration (``AWS_ENDPOINT_URL`` is honoured: local stand-ins)."""
    sagemaker = _import_sagemaker()
    import boto3

    boto_session = boto3.Session(region_name=region)
    if not boto_session.region_name:
        raise LaunchError("no AWS region: pass --region, set AWS_DEFAULT_REGION, or configure one (aws configure)")
    return sagemaker.Session(boto_session=boto_session)
