"""The three ways a training run uses SageMaker hosts, planned once for the launcher and the local runner.

- ``single``: one job on one host; the training starts a plain local Ray.
- ``homogeneous``: one job on N hosts of one type; the first host heads the Ray cluster.
- ``heterogeneous``: one job with instance groups (the head is the first host of ``head_instance_group``), or two
  jobs, a primary holding the head and a secondary, that meet through an S3 rendezvous.

:func:`plan_jobs` turns a shape into the jobs of the run: their hosts and the platform hyperparameters that tell each
job's Ray bootstrap (``sagemaker_rl.cluster``) which part of the cluster it is. It is pure (no files, processes or
requests) and checks nothing a caller already checks: the launcher checks SageMaker's limits, the local runner its
own options, each in its own words, before calling it. Both name the shape the same way: ``instance_count``,
``instance_groups``, ``head_instance_group``, ``secondary_instance_count``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .launch_settings import GroupSpec

MODES = ("single", "homogeneous", "heterogeneous")
HOMOGENEOUS_GROUP = "homogeneousCluster"  # SageMaker's name for the one group of a job without instance groups
_GPU_INSTANCE = re.compile(r"ml\.(g|p)[0-9]")


@dataclass(frozen=True)
class JobShape:
    """One job of a run: which part of the Ray cluster it is, and its hosts."""

    suffix: str  # added to the run's name: "" for a run of one job, "-primary" / "-secondary" for two
    cluster_type: str  # rl_cluster_type: auto | primary | secondary
    instance_type: str | None  # None with instance_groups (each group has its own), and where types do not matter
    instance_count: int | None  # None with instance_groups
    instance_groups: tuple[GroupSpec, ...] = ()
    platform: dict[str, Any] = field(default_factory=dict)  # the other platform hyperparameters this shape sets

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """Every platform hyperparameter of the shape, ``rl_cluster_type`` first."""
        return {"rl_cluster_type": self.cluster_type, **self.platform}

    @property
    def host_groups(self) -> list[tuple[str, list[str]]]:
        """(group name, its hosts) in order; hosts are named as SageMaker names them (``algo-1`` ... ``algo-N``)
        and numbered across the groups; a job without groups is SageMaker's one ``homogeneousCluster`` group."""
        groups = self.instance_groups or (GroupSpec(HOMOGENEOUS_GROUP, "", int(self.instance_count or 0)),)
        out, start = [], 1
        for group in groups:
            out.append((group.name, [f"algo-{i}" for i in range(start, start + group.instance_count)]))
            start += group.instance_count
        return out

    @property
    def hosts(self) -> list[str]:
        return [host for _, hosts in self.host_groups for host in hosts]


def default_head_group(groups: Sequence[GroupSpec]) -> str:
    """The group holding the Ray head when none is named: the first GPU group (the learner's), else the first."""
    return next((g.name for g in groups if _GPU_INSTANCE.match(g.instance_type)), groups[0].name)


def plan_jobs(mode: str, *, instance_type: str | None = None, instance_count: int | None = None,
              instance_groups: Sequence[GroupSpec] = (), head_instance_group: str | None = None,
              secondary_instance_type: str | None = None,
              secondary_instance_count: int | None = None) -> tuple[JobShape, ...]:
    """The jobs of a run of ``mode``, primary first.

    ``heterogeneous`` is one job when ``instance_groups`` are given (its head group: ``head_instance_group``, else
    :func:`default_head_group`), else two: a primary of ``instance_count`` hosts (default 1) and a secondary of
    ``secondary_instance_count`` (default 1), which the primary waits for (``rl_num_instances_secondary``).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "single":
        return (JobShape("", "auto", instance_type, 1),)
    if mode == "homogeneous":
        return (JobShape("", "auto", instance_type, instance_count),)
    groups = tuple(instance_groups)
    if groups:
        head = head_instance_group or default_head_group(groups)
        return (JobShape("", "auto", None, None, groups, {"rl_head_instance_group": head}),)
    secondary = secondary_instance_count or 1
    return (JobShape("-primary", "primary", instance_type, instance_count or 1,
                     platform={"rl_num_instances_secondary": secondary}),
            JobShape("-secondary", "secondary", secondary_instance_type, secondary))
