"""Launch settings: what a SageMaker launch is built from, the names and limits it is checked against, and the
small parsers of its command line (``KEY=VALUE`` hyperparameters, ``NAME=TYPE[:COUNT]`` instance groups).

Standard library only: the launcher (``launch_plan``, ``launch``), the mode planner (``modes``), the shipped sources
(``sources``) and the notebooks read these names without importing the SageMaker SDK.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

#: Environment variables read when the matching argument is not given.
IMAGE_URI_ENV = "BATTLESNAKE_RL_IMAGE_URI"
ROLE_ENV = "BATTLESNAKE_RL_ROLE"
BUCKET_ENV = "BATTLESNAKE_RL_S3_BUCKET"
PROJECT_ROOT_ENV = "BATTLESNAKE_RL_PROJECT_ROOT"

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


def group_spec(group: Any) -> GroupSpec:
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

