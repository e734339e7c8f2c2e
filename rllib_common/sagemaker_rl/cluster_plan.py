"""The Ray cluster's plan, decided from the container contract and the platform hyperparameters alone: no network,
no processes (``sagemaker_rl.cluster`` forms the cluster it describes).

- :class:`ClusterSettings`: the platform hyperparameters (``rl_cluster_type``, ``rl_head_instance_group``, the S3
  rendezvous, timeouts, the blog post's ``rl.training.config.*`` resources), checked when built;
- :func:`plan`: this host's role: the mode (single, homogeneous, heterogeneous, or one side of a primary + secondary
  pair), the head, and the hosts the head waits for;
- :func:`plan_rollouts`: the env runners and learner GPUs the formed cluster can run.

The modes are the launcher's (``sagemaker_rl.modes``): the platform hyperparameters it sets are read back here.

Cluster modes (``rl_cluster_type``):

- ``auto``: one host is a plain local Ray (no node started here); several hosts of one job are a homogeneous cluster
  whose head is the first host in sorted order (``algo-2`` before ``algo-10``); a job with several instance groups is
  a native heterogeneous cluster whose head is the first host of the group ``rl_head_instance_group`` names.
- ``primary`` / ``secondary``: two jobs (e.g. a GPU job and a CPU job) meet through an S3 rendezvous
  (:mod:`sagemaker_rl.rendezvous`): the primary's first host is the head, every other host of both jobs joins it.

Resources (the blog post's ``rl.training.config.*`` hyperparameters, taken here, not by the entry point):
:func:`plan_rollouts` turns ``num_workers`` (env runners), ``num_cpus`` (CPUs for env runners, one each; the driver
keeps one more) and ``num_gpus`` (the learner's) into what the cluster can run, adjusting (and logging) a request for
more env runners than the cluster's CPUs and refusing more GPUs than the head has.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from . import contract as sm

CLUSTER_TYPES = ("auto", "primary", "secondary")
SECONDARY = "secondary/"  # label prefix of the secondary job's hosts


class ClusterError(RuntimeError):
    """The cluster could not be formed or kept: a missing host, a timeout, a bad setting. The message says which."""


# ---------------------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class ClusterSettings:
    """The platform hyperparameters: how this job's hosts form one Ray cluster."""

    cluster_type: str = "auto"  # rl_cluster_type: auto | primary | secondary
    head_instance_group: str | None = None  # rl_head_instance_group: the group whose first host is the head
    num_instances_secondary: int = 0  # rl_num_instances_secondary: hosts of the secondary job (primary only)
    s3_bucket: str | None = None  # s3_bucket: the rendezvous bucket (two-job clusters; optional otherwise)
    s3_prefix: str = ""  # s3_prefix: the rendezvous folder in that bucket
    run_id: str | None = None  # rl_run_id: the same fresh value in both jobs of one run
    rendezvous_timeout_s: float = 600.0  # rl_rendezvous_timeout_s: how long hosts wait for each other to join
    head_lost_timeout_s: float = 60.0  # rl_head_lost_timeout_s: how long a worker waits for an unreachable head
    aws_region: str | None = None  # aws_region: the region of the S3 rendezvous client (default: boto3's)
    num_workers: int | None = None  # rl.training.config.num_workers: env runners (the blog post's rollout workers)
    num_cpus: int | None = None  # rl.training.config.num_cpus: CPUs for env runners (one each); the driver keeps one
    num_gpus: float | None = None  # rl.training.config.num_gpus: GPUs for the learner (at most the head's)

    KEYS = {"rl_cluster_type": "cluster_type", "rl_head_instance_group": "head_instance_group",
            "rl_num_instances_secondary": "num_instances_secondary", "s3_bucket": "s3_bucket",
            "s3_prefix": "s3_prefix", "rl_run_id": "run_id", "rl_rendezvous_timeout_s": "rendezvous_timeout_s",
            "rl_head_lost_timeout_s": "head_lost_timeout_s", "aws_region": "aws_region",
            "rl.training.config.num_workers": "num_workers", "rl.training.config.num_cpus": "num_cpus",
            "rl.training.config.num_gpus": "num_gpus"}

    def __post_init__(self) -> None:
        if self.cluster_type not in CLUSTER_TYPES:
            raise ClusterError(f"rl_cluster_type must be one of {', '.join(CLUSTER_TYPES)}, got {self.cluster_type!r}")
        for name in ("rendezvous_timeout_s", "head_lost_timeout_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
                raise ClusterError(f"rl_{name} must be a positive number of seconds, got {value!r}")
        if not isinstance(self.num_instances_secondary, int) or isinstance(self.num_instances_secondary, bool) \
                or self.num_instances_secondary < 0:
            raise ClusterError(f"rl_num_instances_secondary must be a whole number >= 0, "
                               f"got {self.num_instances_secondary!r}")
        for name in ("head_instance_group", "s3_bucket", "run_id", "aws_region"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ClusterError(f"{_key_of(name)} must be a non-empty string, got {value!r}")
        if not isinstance(self.s3_prefix, str):
            raise ClusterError(f"s3_prefix must be a string, got {self.s3_prefix!r}")
        if self.run_id is not None and "/" in self.run_id:
            raise ClusterError(f"rl_run_id must not contain '/', got {self.run_id!r}")
        if self.aws_region is not None and not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d+", self.aws_region):
            raise ClusterError(f"aws_region must be an AWS region name like us-east-1, got {self.aws_region!r}")
        for name, least in (("num_workers", 0), ("num_cpus", 1)):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
                raise ClusterError(f"{_key_of(name)} must be a whole number >= {least}, got {value!r}")
        if self.num_gpus is not None and (isinstance(self.num_gpus, bool) or not isinstance(self.num_gpus, int | float)
                                          or not self.num_gpus >= 0):
            raise ClusterError(f"rl.training.config.num_gpus must be a number >= 0, got {self.num_gpus!r}")
        if self.cluster_type in ("primary", "secondary") and self.s3_bucket is None:
            raise ClusterError(f"rl_cluster_type={self.cluster_type} meets the other job through S3: set s3_bucket "
                               f"(and s3_prefix; the same values in both jobs)")
        if self.cluster_type == "primary" and self.num_instances_secondary < 1:
            raise ClusterError("rl_cluster_type=primary needs rl_num_instances_secondary >= 1 (the secondary job's "
                               "instance count), got " + str(self.num_instances_secondary))
        if self.cluster_type != "primary" and self.num_instances_secondary:
            raise ClusterError(f"rl_num_instances_secondary is for rl_cluster_type=primary only "
                               f"(this job is {self.cluster_type!r})")

    @classmethod
    def from_hyperparameters(cls, hyperparameters: Mapping[str, Any]) -> tuple[ClusterSettings, dict[str, Any]]:
        """Split decoded hyperparameters into these settings and the rest (the training's own, untouched)."""
        values: dict[str, Any] = {}
        rest: dict[str, Any] = {}
        for key, value in hyperparameters.items():
            if key in cls.KEYS:
                values[cls.KEYS[key]] = value
            else:
                rest[key] = value
        for name in ("rendezvous_timeout_s", "head_lost_timeout_s", "num_instances_secondary", "num_workers",
                     "num_cpus", "num_gpus"):
            if isinstance(values.get(name), str):  # a console-typed "600" that was not JSON-decoded
                try:
                    values[name] = float(values[name]) if name.endswith(("_s", "gpus")) else int(values[name])
                except ValueError:
                    raise ClusterError(f"{_key_of(name)} must be a number, got {values[name]!r}") from None
        for name in ("head_instance_group", "s3_bucket", "s3_prefix", "run_id"):
            if name in values and isinstance(values[name], int | float) and not isinstance(values[name], bool):
                values[name] = str(values[name])  # JSON decoding turned a numeric-looking name into a number
        if values.get("s3_prefix") is None:
            values.pop("s3_prefix", None)
        return cls(**values), rest


def _key_of(field_name: str) -> str:
    return next(key for key, name in ClusterSettings.KEYS.items() if name == field_name)


# ---------------------------------------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class ClusterPlan:
    """Who is the head and who is expected, decided from the contract and settings alone (no network)."""

    mode: str  # "single" | "homogeneous" | "heterogeneous" | "primary" | "secondary"
    host: str  # this host's name in the job (algo-N)
    job: str  # "primary" | "secondary" for two-job clusters, "" otherwise
    is_head: bool
    head_host: str | None  # the head's host name in this job; None in a secondary job (learned through S3)
    expected: tuple[str, ...]  # labels of this job's hosts in the Ray cluster, head first (as the head counts them)
    uses_s3: bool  # the head record, auth token and end announcement go through the S3 rendezvous
    secondary_hosts: int = 0  # primary: how many hosts of the secondary job must join too (their names are theirs)
    slot: int = 1  # this host's place in its job, from 1 (algo-N, or algo-N-xxxxx in SDK local mode: N)

    @property
    def label(self) -> str:
        return host_label(self.job, self.host)


def host_label(job: str, host: str) -> str:
    """How a host is named in reports: ``algo-1``, or ``secondary/algo-1`` for the secondary job's hosts."""
    return f"{SECONDARY}{host}" if job == "secondary" else host


def plan(contract: sm.Contract, settings: ClusterSettings) -> ClusterPlan:
    """Decide this host's role. Raises :class:`ClusterError` for settings that do not fit the job's hosts."""
    hosts = contract.hosts
    if settings.cluster_type == "secondary":
        if settings.head_instance_group:
            raise ClusterError("rl_head_instance_group is for the primary job: the head is never in the secondary job")
        return ClusterPlan(mode="secondary", host=contract.current_host, job="secondary", is_head=False,
                           head_host=None, expected=tuple(host_label("secondary", h) for h in hosts), uses_s3=True,
                           slot=sm.host_slot(contract))

    groups = [g for g in contract.instance_groups if g.hosts]
    if settings.head_instance_group is not None:
        try:
            head_group = contract.hosts_of_group(settings.head_instance_group)
        except sm.ContractError as exc:
            raise ClusterError(f"rl_head_instance_group: {exc}") from None
        if not head_group:
            raise ClusterError(f"rl_head_instance_group {settings.head_instance_group!r} has no hosts")
        head = head_group[0]
    elif len(groups) > 1:
        names = ", ".join(f"{g.name} ({g.instance_type or '?'} x{len(g.hosts)})" for g in groups)
        raise ClusterError(f"this job has several instance groups ({names}): set rl_head_instance_group to the group "
                           "whose first host should be the Ray head (the learner's, e.g. the GPU group)")
    else:
        head = hosts[0]
    ordered = (head, *(h for h in hosts if h != head))

    if settings.cluster_type == "primary":
        # the secondary job's host names are its own (algo-N, or algo-N-xxxxx in SDK local mode): counted, not named
        return ClusterPlan(mode="primary", host=contract.current_host, job="primary",
                           is_head=contract.current_host == head, head_host=head, expected=ordered, uses_s3=True,
                           secondary_hosts=settings.num_instances_secondary, slot=sm.host_slot(contract))
    if len(hosts) == 1:
        mode = "single"
    else:
        mode = "heterogeneous" if len(groups) > 1 else "homogeneous"
    return ClusterPlan(mode=mode, host=contract.current_host, job="", is_head=contract.current_host == head,
                       head_host=head, expected=ordered, uses_s3=mode != "single" and settings.s3_bucket is not None,
                       slot=sm.host_slot(contract))


# ---------------------------------------------------------------------------------------------------------- resources

class ClusterNode(Protocol):
    """What :func:`plan_rollouts` reads of a formed cluster (``cluster.Node``)."""

    cpus_by_host: dict[str, int]
    num_gpus: int

    @property
    def host(self) -> str: ...

    @property
    def num_env_runners(self) -> int: ...

@dataclass(frozen=True)
class Rollouts:
    """What the training runs on the cluster: env runners (one CPU each) and the learner's GPUs."""

    num_env_runners: int
    num_gpus: float
    notes: tuple[str, ...] = ()  # adjustments to what was asked, for the job's log


def plan_rollouts(node: ClusterNode, settings: ClusterSettings, *, env_runners: tuple[str, int] | None = None,
                  gpus: tuple[str, float] | None = None) -> Rollouts:
    """Env runners and learner GPUs from the blog post's resource hyperparameters (``settings``) or the entry point's
    own (``env_runners`` / ``gpus``: (hyperparameter name, value)), fitted to the cluster.

    - ``rl.training.config.num_workers`` or the entry point's own count: that many env runners;
      ``rl.training.config.num_cpus`` alone: one env runner per CPU given to rollouts; none: every CPU of the cluster
      but the driver's. More env runners than the cluster's CPUs leave beside the driver are cut to that (logged):
      Ray would otherwise wait forever for CPUs to place them.
    - ``rl.training.config.num_gpus`` or the entry point's own: the learner's GPUs (one learner: at most 1, more is
      cut and logged); more than the head host has is an error; none given: 1 when the head has a GPU.

    Raises :class:`ClusterError` naming both keys when two of them ask the same thing.
    """
    notes: list[str] = []
    cpus = sum(node.cpus_by_host.values())
    free = max(1, cpus - 1)
    asked = [(key, value) for key, value in (("rl.training.config.num_workers", settings.num_workers),
                                             env_runners or (None, None)) if key and value is not None]
    if len(asked) > 1:
        raise ClusterError(f"{asked[0][0]}={asked[0][1]} and {asked[1][0]}={asked[1][1]} both set the number of env "
                           "runners: give one of them")
    if asked:
        key, runners = asked[0]
        if settings.num_cpus is not None and runners > settings.num_cpus:
            raise ClusterError(f"{key}={runners} env runners need {runners} CPUs (one each), but "
                               f"rl.training.config.num_cpus={settings.num_cpus} gives rollouts only "
                               f"{settings.num_cpus}: raise num_cpus or lower {key}")
    elif settings.num_cpus is not None:
        key, runners = "rl.training.config.num_cpus", settings.num_cpus
    else:
        key, runners = "", node.num_env_runners
    if key and runners > free:
        notes.append(f"{key}={runners} asks for more env runners than the cluster's {cpus} CPUs leave beside the "
                     f"driver ({free}; each env runner takes one CPU, the driver and its learner one): using {free}")
        runners = free
    asked_gpus = [(key, value) for key, value in (("rl.training.config.num_gpus", settings.num_gpus),
                                                  gpus or (None, None)) if key and value is not None]
    if len(asked_gpus) > 1:
        raise ClusterError(f"{asked_gpus[0][0]}={asked_gpus[0][1]:g} and {asked_gpus[1][0]}={asked_gpus[1][1]:g} "
                           "both set the learner's GPUs: give one of them")
    if asked_gpus:
        key, learner = asked_gpus[0]
        if learner > node.num_gpus:
            raise ClusterError(f"{key}={learner:g}: the learner runs on the head host ({node.host}), which has "
                               f"{node.num_gpus} GPU(s); use a GPU instance for the head (the primary job, or "
                               f"rl_head_instance_group) or set {key}=0")
        if learner > 1:
            notes.append(f"{key}={learner:g}: one learner uses one GPU: using 1")
            learner = 1.0
    else:
        learner = 1.0 if node.num_gpus else 0.0
    return Rollouts(num_env_runners=int(runners), num_gpus=float(learner), notes=tuple(notes))
