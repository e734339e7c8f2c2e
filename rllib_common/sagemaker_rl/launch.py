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
submitted. The platform layer is generic: it never imports the game or the training package (it only finds their
folders to ship them).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import logging
import math
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .rendezvous import SECRET_ENV

MODES = ("single", "homogeneous", "heterogeneous")

#: Environment variables read when the matching argument is not given.
IMAGE_URI_ENV = "BATTLESNAKE_RL_IMAGE_URI"
ROLE_ENV = "BATTLESNAKE_RL_ROLE"
BUCKET_ENV = "BATTLESNAKE_RL_S3_BUCKET"
PROJECT_ROOT_ENV = "BATTLESNAKE_RL_PROJECT_ROOT"

ENTRY_POINT = "train-mabs.py"
TRAINING_PACKAGE = "battlesnake_rllib"  # shipped inside source_dir, beside the entry point
GAME_PACKAGES = ("battlesnake_gym", "battlesnake_policy")  # the game and the policy format: dependency folders
DEFAULT_CPU_INSTANCE = "ml.c5.4xlarge"
DEFAULT_GPU_INSTANCE = "ml.g5.xlarge"
DEFAULT_BASE_JOB_NAME = "battlesnake-rl"
DEFAULT_PREFIX = "battlesnake-rl"
DEFAULT_MAX_RUN_S = 86_400  # SageMaker's own default: one day
DEFAULT_RENDEZVOUS_TIMEOUT_S = 1_200  # two jobs of a run may start minutes apart (capacity, spot)

PLATFORM_KEYS = ("rl_cluster_type", "rl_head_instance_group", "rl_num_instances_secondary", "s3_bucket", "s3_prefix",
                 "rl_run_id", "rl_rendezvous_timeout_s")
#: The entry point's wall-clock budget flag: a job whose budget outlasts max_run would be stopped before its export.
BUDGET_HYPERPARAMETER = "minutes"

#: The ``name: value`` lines the entry point prints (battlesnake_rllib.run.REPORTED and the evaluation win rates;
#: tests/test_launch.py keeps the two lists equal).
EVAL_BOTS = ("random", "safe", "greedy", "flood", "territory")
DEFAULT_METRIC_NAMES = ("iteration", "episode_return_mean", "episode_len_mean", "env_steps_per_s",
                        "num_env_steps_sampled_lifetime", "iteration_s", "episode_reward_mean", "episode_reward_max",
                        *(f"win_rate_vs_{bot}" for bot in EVAL_BOTS))
#: A printed number: 12, -0.5, .25, 1e+06 (nan and inf never match, so SageMaker records nothing for them).
FLOAT_PATTERN = r"[-+]?[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?"

# CreateTrainingJob limits (botocore's service model), checked here so a launch fails before any request.
MAX_HYPERPARAMETERS = 100
SDK_HYPERPARAMETERS = 7  # sagemaker_program, _submit_directory, _region, _job_name, ... added by the SDK at fit()
MAX_HYPERPARAMETER_VALUE = 2_500
MAX_METRIC_DEFINITIONS = 40
MAX_INSTANCE_GROUPS = 5
MAX_JOB_NAME = 63

_JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")
_INSTANCE_TYPE = re.compile(r"ml\.[a-z0-9-]+\.[a-z0-9-]+")
_GPU_INSTANCE = re.compile(r"ml\.(g|p)[0-9]")
_GROUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_HYPERPARAMETER_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,255}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_STAGING_IGNORE = ("__pycache__", "*.pyc", "*.nbi", "*.nbc", ".pytest_cache", ".ipynb_checkpoints")


class LaunchError(ValueError):
    """A launch setting that is missing, malformed or inconsistent: raised before anything is submitted."""


class LaunchWarning(UserWarning):
    """A launch that will be submitted but is likely not to work as meant (e.g. two jobs without a shared VPC)."""


# ---------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class GroupSpec:
    """One instance group of a one-job heterogeneous cluster."""

    name: str
    instance_type: str
    instance_count: int

    @classmethod
    def parse(cls, text: str) -> GroupSpec:
        """``NAME=TYPE[:COUNT]``, e.g. ``learner=ml.g5.xlarge:1`` (COUNT defaults to 1)."""
        name, sep, rest = text.partition("=")
        instance_type, _, count = rest.partition(":")
        if not sep or not name or not instance_type:
            raise LaunchError(f"instance group {text!r}: write it as NAME=TYPE[:COUNT], e.g. rollout=ml.c5.4xlarge:2")
        try:
            instance_count = int(count) if count else 1
        except ValueError:
            raise LaunchError(f"instance group {text!r}: the count {count!r} is not a whole number") from None
        return cls(name, instance_type, instance_count)


@dataclass
class LaunchSettings:
    """Everything a launch is built from (the keyword arguments of ``launch`` and ``build_estimators``)."""

    mode: str  # single | homogeneous | heterogeneous
    image_uri: str | None = None  # the training image (ECR); else $BATTLESNAKE_RL_IMAGE_URI
    role: str | None = None  # the IAM role SageMaker runs the job as; else $BATTLESNAKE_RL_ROLE
    instance_type: str | None = None  # single/homogeneous: every host (default ml.c5.4xlarge); two-job: the primary's
    instance_count: int | None = None  # single: 1; homogeneous: required; two-job: primary hosts (default 1)
    instance_groups: Sequence[GroupSpec | str] = ()  # heterogeneous in one job: >= 2 groups
    head_instance_group: str | None = None  # one-job heterogeneous: default the first GPU group, else the first group
    secondary_instance_type: str | None = None  # heterogeneous in two jobs: the secondary job's instance type
    secondary_instance_count: int | None = None  # ... and its number of hosts (default 1)
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)  # training settings (TrainArgs fields, rl.X.Y)
    bucket: str | None = None  # else $BATTLESNAKE_RL_S3_BUCKET, else the SageMaker session's default bucket
    prefix: str = DEFAULT_PREFIX  # key prefix of code, output, checkpoints and rendezvous keys in the bucket
    base_job_name: str = DEFAULT_BASE_JOB_NAME  # job names: BASE-RUNID (two jobs: BASE-RUNID-primary/-secondary)
    run_id: str | None = None  # default: UTC time and 4 random hex digits, e.g. 20250101-120000-1a2b
    use_spot_instances: bool = False  # managed spot: needs max_wait >= max_run; resumes from checkpoints
    max_run: int = DEFAULT_MAX_RUN_S  # seconds of training before SageMaker stops the job
    max_wait: int | None = None  # spot only: seconds of training plus waiting for capacity
    subnets: Sequence[str] | None = None  # VPC subnets (both or neither with security_group_ids)
    security_group_ids: Sequence[str] | None = None
    volume_size: int = 30  # GB of EBS per host
    rendezvous_timeout_s: int = DEFAULT_RENDEZVOUS_TIMEOUT_S
    metric_names: Sequence[str] = DEFAULT_METRIC_NAMES  # `name: value` lines turned into SageMaker metrics
    project_root: str | os.PathLike | None = None  # else $BATTLESNAKE_RL_PROJECT_ROOT, else the installed packages

    @classmethod
    def from_kwargs(cls, mode: str, settings: Mapping[str, Any]) -> LaunchSettings:
        known = {f.name for f in fields(cls)} - {"mode"}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise LaunchError(f"unknown launch setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(mode=mode, **settings)


# ---------------------------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Sources:
    """The folders shipped with every job: ``source_dir`` (holding the entry point) and dependency folders."""

    source_dir: Path
    entry_point: str
    dependencies: tuple[Path, ...]


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


def s3_uri(bucket: str, *parts: str) -> str:
    """``s3://bucket/a/b`` from non-empty parts (slashes at their ends are dropped)."""
    keys = [p.strip("/") for p in parts if p and p.strip("/")]
    return "/".join([f"s3://{bucket}", *keys])


def metric_definitions(names: Sequence[str] = DEFAULT_METRIC_NAMES) -> list[dict[str, str]]:
    """SageMaker metric definitions for ``name: value`` lines (the value is the regex's first group)."""
    return [{"Name": name, "Regex": f"^{re.escape(name)}: ({FLOAT_PATTERN})"} for name in names]


def parse_hyperparameter(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` from the command line: VALUE as JSON when it parses (``0.001``, ``true``, ``[8, 16]``), else
    the string as typed (``PPO``, ``safe,greedy``)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise LaunchError(f"hyperparameter {text!r}: write it as KEY=VALUE, e.g. lr=0.0003 or rl.training.lr=0.0003")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


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
    groups = tuple(_group_spec(g) for g in s.instance_groups)
    two_job = s.mode == "heterogeneous" and not groups
    _check_shape(s, groups)
    hyperparameters = _check_hyperparameters(s.hyperparameters)
    max_wait = _check_stopping(s, hyperparameters)
    subnets, security_groups = _check_vpc(s.subnets, s.security_group_ids)
    metrics = _check_metrics(s.metric_names)
    _positive_int("volume_size", s.volume_size)
    _positive_int("rendezvous_timeout_s", s.rendezvous_timeout_s)
    run_id = s.run_id or time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)
    if not _JOB_NAME.fullmatch(run_id) or len(run_id) > 32:
        raise LaunchError(f"run_id {run_id!r}: use up to 32 letters, digits and inner hyphens")
    suffixes = ("-primary", "-secondary") if two_job else ("",)
    names = [f"{s.base_job_name}-{run_id}{suffix}" for suffix in suffixes]
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
    if s.mode in ("single", "homogeneous"):
        count = 1 if s.mode == "single" else s.instance_count
        shapes = [(s.instance_type or DEFAULT_CPU_INSTANCE, count, (), {"rl_cluster_type": "auto"})]
    elif groups:
        head = s.head_instance_group or next((g.name for g in groups if _GPU_INSTANCE.match(g.instance_type)),
                                             groups[0].name)
        shapes = [(None, None, groups, {"rl_cluster_type": "auto", "rl_head_instance_group": head})]
    else:
        secondary_count = s.secondary_instance_count or 1
        shapes = [(s.instance_type or DEFAULT_GPU_INSTANCE, s.instance_count or 1, (),
                   {"rl_cluster_type": "primary", "rl_num_instances_secondary": secondary_count}),
                  (s.secondary_instance_type, secondary_count, (), {"rl_cluster_type": "secondary"})]
        if not subnets:
            warn.append("a two-job heterogeneous run without subnets and security_group_ids: each job gets its own "
                        "SageMaker-managed network, the secondary hosts cannot reach the primary's Ray head and will "
                        f"fail after rl_rendezvous_timeout_s={s.rendezvous_timeout_s}. Pass the subnets and security "
                        "group ids of one VPC (the group must allow all traffic between its members, and the subnets "
                        "need S3 access through a VPC endpoint or NAT), or use instance groups in one job.")
    jobs = tuple(
        JobPlan(name=name, instance_type=instance_type, instance_count=count, instance_groups=job_groups,
                hyperparameters={**hyperparameters, **platform, **extra},
                checkpoint_s3_uri=s3_uri(bucket, prefix, "checkpoints", name))
        for name, (instance_type, count, job_groups, extra) in zip(names, shapes))
    return LaunchPlan(mode=s.mode, run_id=run_id, image_uri=image_uri, role=role, bucket=bucket, prefix=prefix,
                      base_job_name=s.base_job_name, use_spot_instances=s.use_spot_instances, max_run=s.max_run,
                      max_wait=max_wait, subnets=subnets, security_group_ids=security_groups,
                      volume_size=s.volume_size, metric_definitions=tuple(metric_definitions(metrics)),
                      sources=sources, jobs=jobs, warnings=tuple(warn), rendezvous_secret=secrets.token_hex(32))


def _group_spec(group: Any) -> GroupSpec:
    """A group given as a GroupSpec, ``"NAME=TYPE[:COUNT]"``, a (name, type, count) triple or an SDK InstanceGroup."""
    if isinstance(group, GroupSpec):
        return group
    if isinstance(group, str):
        return GroupSpec.parse(group)
    if isinstance(group, (tuple, list)) and len(group) == 3:
        return GroupSpec(*group)
    if hasattr(group, "instance_group_name"):
        return GroupSpec(group.instance_group_name, group.instance_type, group.instance_count)
    raise LaunchError(f"instance group {group!r}: give GroupSpec(name, type, count), (name, type, count) or "
                      f"'NAME=TYPE:COUNT'")


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


# ---------------------------------------------------------------------------------------------- sources


def find_sources(project_root: str | os.PathLike | None = None) -> Sources:
    """The training sources to ship, from a project checkout or next to the installed packages.

    ``source_dir`` is the folder holding ``train-mabs.py`` and the ``battlesnake_rllib`` package; the dependencies
    are the ``battlesnake_gym``, ``battlesnake_policy`` and ``sagemaker_rl`` package folders (the SDK copies them
    beside the entry point).
    The packages are located with ``importlib.util.find_spec``, which does not import them.
    """
    root = project_root or os.environ.get(PROJECT_ROOT_ENV)
    if root:
        root = Path(root).expanduser().resolve()
        source_dir, games = root / "rllib_src", [root / name for name in GAME_PACKAGES]
        platform = root / "rllib_common" / "sagemaker_rl"
        where = f"project root {root}"
    else:
        source_dir = _package_folder(TRAINING_PACKAGE).parent
        games = [_package_folder(name) for name in GAME_PACKAGES]
        platform = Path(__file__).resolve().parent
        where = "the installed packages"
    needed = {source_dir / ENTRY_POINT: "the entry point", source_dir / TRAINING_PACKAGE / "__init__.py":
              "the training package", **{game / "__init__.py": f"the {game.name} package" for game in games},
              platform / "__init__.py": "the platform package"}
    missing = [f"{path} ({what})" for path, what in needed.items() if not path.is_file()]
    if missing:
        raise LaunchError(f"cannot find the training sources from {where}: missing {', '.join(missing)}. Launch "
                          f"from a project checkout installed with `pip install -e .`, or pass project_root "
                          f"(--project-root, ${PROJECT_ROOT_ENV}) pointing at it")
    return Sources(source_dir=source_dir, entry_point=ENTRY_POINT, dependencies=(*games, platform))


def _package_folder(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise LaunchError(f"package {name!r} is not installed; pass project_root (--project-root) pointing at the "
                          f"project checkout")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def stage_sources(sources: Sources) -> tuple[Sources, tempfile.TemporaryDirectory]:
    """A clean copy of the sources (no ``__pycache__``, numba caches or notebook checkpoints) to upload.

    Returns the copy and the temporary folder holding it: the folder is deleted when that object is.
    """
    staging = tempfile.TemporaryDirectory(prefix="battlesnake-rl-sources-")
    root = Path(staging.name)
    ignore = shutil.ignore_patterns(*_STAGING_IGNORE)
    source_dir = Path(shutil.copytree(sources.source_dir, root / "source", ignore=ignore))
    dependencies = tuple(Path(shutil.copytree(dep, root / "dependencies" / dep.name, ignore=ignore))
                         for dep in sources.dependencies)
    return replace(sources, source_dir=source_dir, dependencies=dependencies), staging


# ---------------------------------------------------------------------------------------------- estimators


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
