"""Docker-free local runner: a SageMaker training job on this machine, one process tree per simulated host.

How to run::

    battlesnake-rl sagemaker local --mode single --hp iterations=1
    battlesnake-rl sagemaker local --mode homogeneous --instances 2 --hp iterations=2
    battlesnake-rl sagemaker local --mode heterogeneous --instances 1 --secondary-instances 2    # two jobs, local S3
    battlesnake-rl sagemaker local --mode heterogeneous --instance-groups gpu=1,cpu=2 --head-group gpu

or from Python (a notebook)::

    from sagemaker_rl.local import run_local_job
    result = run_local_job(mode="homogeneous", instance_count=2, hyperparameters={"iterations": 1})
    result.model_tar, result.hosts[1].log

The jobs of each mode are the launcher's (``sagemaker_rl.modes``, with the same argument names: ``instance_count``,
``secondary_instance_count``, ``instance_groups``, ``head_instance_group``); the ones written before them,
``instances``, ``secondary_instances`` and ``head_group``, are still taken. Each simulated host gets what SageMaker
gives a container (``sagemaker_rl.toolkit``: its own ``SAGEMAKER_BASE_DIR`` tree, the toolkit's command line and
``SM_*`` variables), and from this runner:

- its own loopback address for Ray (127.0.0.2, 127.0.0.3, ... through ``$SM_RL_HOST_ADDRESSES``), its own Ray temp
  folder, and for two-job clusters a local S3 (``sagemaker_rl.standins.LocalS3``) through ``AWS_ENDPOINT_URL_S3``;
- as ``battlesnake-rl sagemaker launch`` gives them, a fresh ``rl_run_id`` shared by the jobs of a two-job run and a
  fresh rendezvous secret (``$SM_RL_RENDEZVOUS_SECRET``) shared by every host; ``rendezvous="post"`` gives neither
  (the blog post's two jobs, which share only ``s3_bucket`` and ``s3_prefix``).

A job fails when one of its hosts exits non-zero (its other hosts are stopped, as SageMaker stops the instances), and
the error carries that host's ``output/failure``. At the end each job's ``model/`` folders are merged into
``model.tar.gz`` and ``output/data/`` into ``output.tar.gz`` (later hosts win on a clash, as the SDK's local mode).
Every process tree is stopped on exit, error or Ctrl-C. What a run leaves: ``sagemaker_rl.local_results``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cluster import HOST_ADDRESSES_ENV, RAY_PORT_ENV, RAY_START_ARGS_ENV
from .launch_settings import GroupSpec, parse_hyperparameter
from .local_results import HostResult, JobResult, LocalJobError, LocalJobResult, job_failure, tar_folders
from .modes import HOMOGENEOUS_GROUP, MODES
from .modes import plan_jobs as plan_modes
from .net import free_port
from .processes import create_time, remember_tree, stop_tree
from .rendezvous import SECRET_ENV
from .sources import checkout_sources
from .standins import LocalS3
from .toolkit import lay_out_host, sdk_hyperparameters, toolkit_args, toolkit_environment

__all__ = [  # what the local runner offers, wherever it is defined
    "MODES", "HostResult", "JobResult", "JobSpec", "LocalJob", "LocalJobError", "LocalJobResult", "LocalS3", "main",
    "plan_jobs", "run_local_job", "sdk_hyperparameters", "toolkit_args",
]

# The project's SageMaker job: what `battlesnake-rl sagemaker launch` ships (sagemaker_rl.sources).
_SHIPPED = checkout_sources()
PROJECT_ROOT = _SHIPPED.source_dir.parent
DEFAULT_SOURCE_DIR = _SHIPPED.source_dir
DEFAULT_ENTRY_POINT = _SHIPPED.entry_point
DEFAULT_DEPENDENCIES = _SHIPPED.dependencies
RENDEZVOUS = ("launcher", "post")  # what the jobs share: run id and secret (the launcher's way), or bucket and prefix
OBJECT_STORE_BYTES = 256 * 1024**2  # per simulated host: Ray's default (30% of RAM per node) does not fit N nodes
STOP_GRACE_S = 10.0  # a failed job's other hosts get this long to leave on their own before they are killed
ENV_PREFIXES_NOT_INHERITED = ("SM_", "SAGEMAKER_", "RAY_ADDRESS", "RAY_AUTH_", "AWS_ENDPOINT_URL", "TRAINING_JOB")
#: Keyword arguments of LocalJob written before the runner took the launcher's names.
RENAMED = {"instances": "instance_count", "secondary_instances": "secondary_instance_count",
           "head_group": "head_instance_group"}


# ---------------------------------------------------------------------------------------------------------- job specs
@dataclass
class JobSpec:
    """One simulated SageMaker training job."""

    name: str
    hosts: list[str]  # algo-1 ... algo-N
    hyperparameters: dict[str, Any]  # user hyperparameters, Python values
    instance_groups: list[tuple[str, list[str]]] = field(default_factory=list)  # (group name, its hosts)


def plan_jobs(mode: str, instance_count: int, secondary_instance_count: int,
              instance_groups: Mapping[str, int] | None, head_instance_group: str | None,
              hyperparameters: Mapping[str, Any], job_name: str, s3: LocalS3 | None,
              rendezvous: str = "launcher") -> list[JobSpec]:
    """The jobs of a local run, with the platform hyperparameters each needs (the user's own win).

    The options are checked here, in the command line's words; the jobs are the launcher's (``modes.plan_jobs``).
    ``rl_cluster_type`` is left out where it is ``auto``, the bootstrap's default, so a one-job host's command line
    holds only what the user gave and the head group. Two jobs share ``s3_bucket``, ``s3_prefix`` and
    (``rendezvous="launcher"``) a fresh ``rl_run_id``.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if rendezvous not in RENDEZVOUS:
        raise ValueError(f"rendezvous must be one of {', '.join(RENDEZVOUS)}, got {rendezvous!r}")
    if instance_count < 1:
        raise ValueError(f"instance_count (--instances) must be >= 1, got {instance_count}")
    if mode == "single" and (instance_count != 1 or secondary_instance_count or instance_groups):
        raise ValueError("mode single runs exactly one host: drop --instances/--secondary-instances/"
                         "--instance-groups, or use homogeneous or heterogeneous")
    if mode == "homogeneous" and (instance_count < 2 or secondary_instance_count or instance_groups):
        raise ValueError("mode homogeneous needs --instances >= 2 and no secondary instances or instance groups")
    if mode == "heterogeneous" and bool(secondary_instance_count) == bool(instance_groups):
        raise ValueError("mode heterogeneous needs either --secondary-instances M (two jobs meeting through S3) "
                         "or --instance-groups NAME=COUNT,... with --head-group (one job with instance groups)")
    if instance_groups:
        if any(n < 1 for n in instance_groups.values()):
            raise ValueError(f"every instance group needs >= 1 host, got {dict(instance_groups)}")
        if head_instance_group not in instance_groups:
            raise ValueError(f"--head-group must name one of the instance groups {list(instance_groups)}, "
                             f"got {head_instance_group!r}")
    shapes = plan_modes(mode, instance_count=instance_count,
                        instance_groups=[GroupSpec(name, "local", n) for name, n in (instance_groups or {}).items()],
                        head_instance_group=head_instance_group, secondary_instance_count=secondary_instance_count)
    user = dict(hyperparameters)
    shared: dict[str, Any] = {}
    if len(shapes) == 2:
        if s3 is None:
            raise ValueError("a primary + secondary run needs a local S3")
        shared = {"s3_bucket": s3.bucket, "s3_prefix": f"rendezvous/{job_name}"}
        if rendezvous == "launcher":
            shared["rl_run_id"] = f"{job_name}-{uuid.uuid4().hex[:8]}"
        shared |= {k: user.pop(k) for k in list(shared) if k in user}
    specs = []
    for shape in shapes:
        platform = {k: v for k, v in shape.hyperparameters.items() if (k, v) != ("rl_cluster_type", "auto")}
        own = {k: v for k, v in user.items() if not (shape.cluster_type == "secondary"
                                                     and k == "rl_num_instances_secondary")}
        groups = shape.host_groups if shape.instance_groups else []
        specs.append(JobSpec(job_name + shape.suffix, shape.hosts, {**platform, **shared, **own}, groups))
    return specs


# ---------------------------------------------------------------------------------------------------------- the run
@dataclass
class _Host:
    result: HostResult
    command: list[str]
    env: dict[str, str]
    process: subprocess.Popen | None = None
    log_file: Any = None
    pids: dict[int, float] = field(default_factory=dict)  # every process seen in its tree -> create time
    log_offset: int = 0


class LocalJob:
    """A local run, step by step (``start``, ``wait``, ``kill_host``, ``close``); :func:`run_local_job` does it all.

    ``start_secondary=False`` leaves the secondary job of a two-job run unstarted (a secondary that never arrives).
    ``rendezvous``: ``"launcher"`` (a fresh run id and rendezvous secret, as ``battlesnake-rl sagemaker launch``) or
    ``"post"`` (neither: the jobs share only ``s3_bucket`` and ``s3_prefix``, as the blog post's estimators).
    """

    def __init__(self, *, mode: str = "single", instance_count: int = 1, secondary_instance_count: int = 0,
                 instance_groups: Mapping[str, int] | None = None, head_instance_group: str | None = None,
                 hyperparameters: Mapping[str, Any] | None = None,
                 source_dir: str | os.PathLike = DEFAULT_SOURCE_DIR, entry_point: str = DEFAULT_ENTRY_POINT,
                 dependencies: Sequence[str | os.PathLike] = DEFAULT_DEPENDENCIES,
                 channels: Mapping[str, str | os.PathLike] | None = None, cpus_per_host: int = 2,
                 gpus_per_host: int = 0, work_dir: str | os.PathLike | None = None, job_name: str | None = None,
                 environment: Mapping[str, str] | None = None, s3: LocalS3 | None = None,
                 start_secondary: bool = True, stream: Callable[[str], None] | None = None,
                 rendezvous: str = "launcher", **renamed: Any) -> None:
        shape = {"instance_count": instance_count, "secondary_instance_count": secondary_instance_count,
                 "head_instance_group": head_instance_group}
        for old, value in renamed.items():  # the names written before the runner took the launcher's
            if old not in RENAMED:
                raise TypeError(f"LocalJob() got an unexpected keyword argument {old!r}")
            warnings.warn(f"LocalJob({old}=...) is now {RENAMED[old]}=...", DeprecationWarning, stacklevel=2)
            shape[RENAMED[old]] = value
        self.job_name = job_name or f"local-{mode}-{time.strftime('%Y%m%d-%H%M%S')}"
        self.work_dir = Path(work_dir or Path("runs") / "sagemaker-local" / self.job_name).resolve()
        self.source_dir = Path(source_dir).resolve()
        self.entry_point = entry_point
        self.dependencies = [Path(d).resolve() for d in dependencies]
        self.channels = {name: Path(p).resolve() for name, p in (channels or {}).items()}
        self.cpus_per_host = cpus_per_host
        self.gpus_per_host = gpus_per_host
        self.environment = dict(environment or {})
        if rendezvous == "launcher":  # every host of the run: the rendezvous secret (never a hyperparameter)
            self.environment.setdefault(SECRET_ENV, secrets.token_hex(32))
        self.start_secondary = start_secondary
        self.stream = stream
        self._check_inputs(cpus_per_host)
        two_jobs = mode == "heterogeneous" and shape["secondary_instance_count"] > 0
        self._own_s3 = s3 is None and two_jobs
        self.s3 = LocalS3() if self._own_s3 else s3
        self.specs = plan_jobs(mode, shape["instance_count"], shape["secondary_instance_count"], instance_groups,
                               shape["head_instance_group"], hyperparameters or {}, self.job_name, self.s3,
                               rendezvous)
        self.hosts: list[_Host] = []
        self._ray_tmp = ""
        self._started = 0.0

    def _check_inputs(self, cpus_per_host: int) -> None:
        if not (self.source_dir / self.entry_point).is_file():
            raise ValueError(f"entry point {self.entry_point!r} not found in source dir {self.source_dir}")
        for dep in self.dependencies:
            if not dep.is_dir():
                raise ValueError(f"dependency {dep} is not a folder")
        for name, path in self.channels.items():
            if not path.exists():
                raise ValueError(f"channel {name!r}: {path} does not exist")
        if cpus_per_host < 1:
            raise ValueError(f"cpus_per_host must be >= 1, got {cpus_per_host}")

    # ------------------------------------------------------------------------------------------------ start
    def start(self) -> LocalJob:
        """Lay out every host's tree and start every host's entry point."""
        self._started = time.monotonic()
        if self._own_s3:
            self.s3.start()
        self._ray_tmp = tempfile.mkdtemp(prefix="smrl-")  # short: Ray's socket paths must fit in 107 bytes
        self.work_dir.mkdir(parents=True, exist_ok=True)
        next_ip = 2
        for spec in self.specs:
            addresses = {h: f"127.0.0.{next_ip + i}" for i, h in enumerate(spec.hosts)}
            next_ip += len(spec.hosts)
            port = free_port("")  # on every address, as a Ray node binds it
            for host in spec.hosts:
                self.hosts.append(self._prepare_host(spec, host, addresses, port))
        for h in self.hosts:
            if self.start_secondary or h.result.job == self.specs[0].name:
                self._launch(h)
        return self

    def _prepare_host(self, spec: JobSpec, host: str, addresses: dict[str, str], port: int) -> _Host:
        base = self.work_dir / spec.name / host
        resource_config = lay_out_host(base, job=spec.name, host=host,
                                       host_groups=spec.instance_groups or [(HOMOGENEOUS_GROUP, spec.hosts)],
                                       source_dir=self.source_dir, entry_point=self.entry_point,
                                       dependencies=self.dependencies, channels=self.channels,
                                       hyperparameters=spec.hyperparameters)
        code = base / "code"
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES_NOT_INHERITED)}
        env |= toolkit_environment(job=spec.name, host=host, hosts=spec.hosts, base_dir=base, code_dir=code,
                                   entry_point=self.entry_point, hyperparameters=spec.hyperparameters,
                                   resource_config=resource_config, channels=list(self.channels),
                                   num_cpus=self.cpus_per_host, num_gpus=self.gpus_per_host)
        ray_tmp = Path(self._ray_tmp) / f"{addresses[host].rsplit('.', 1)[1]}"
        ray_tmp.mkdir()
        env |= {"SAGEMAKER_BASE_DIR": str(base), HOST_ADDRESSES_ENV: json.dumps(addresses), RAY_PORT_ENV: str(port),
                RAY_START_ARGS_ENV: f"--object-store-memory={OBJECT_STORE_BYTES}", "RAY_TMPDIR": str(ray_tmp),
                "PYTHONUNBUFFERED": "1"}
        if self.s3 is not None:
            env |= self.s3.environment()
        env |= self.environment
        log = self.work_dir / spec.name / f"{host}.log"
        command = [sys.executable, self.entry_point, *toolkit_args(spec.hyperparameters)]
        result = HostResult(job=spec.name, host=host, address=addresses[host], base_dir=base, log=log)
        return _Host(result=result, command=command, env=env)

    def _launch(self, h: _Host) -> None:
        h.log_file = open(h.result.log, "wb")  # noqa: SIM115 - closed when the host ends
        h.process = subprocess.Popen(h.command, cwd=h.result.base_dir / "code", env=h.env, stdin=subprocess.DEVNULL,
                                     stdout=h.log_file, stderr=subprocess.STDOUT, start_new_session=True)
        h.pids[h.process.pid] = create_time(h.process.pid)

    # ------------------------------------------------------------------------------------------------ run
    def wait(self, timeout_s: float | None = None) -> LocalJobResult:
        """Until every started host has exited (or ``timeout_s``: then every host is stopped, the job failed)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        failed_at: dict[str, float] = {}
        timed_out = False
        while True:
            running = False
            for h in self.hosts:
                if h.process is None or h.result.exit_code is not None:
                    continue
                self._remember_tree(h)
                self._stream(h)
                code = h.process.poll()
                if code is None:
                    running = True
                    continue
                h.result.exit_code = code
                h.result.ended_at = time.monotonic()
                self._stream(h)
                h.log_file.close()
                self._stop_tree(h, graceful=True)  # leftovers of an exited host (its Ray node) go with it
                if code != 0 and h.result.stopped_by_runner is None:  # a simulated instance failure is the
                    failed_at.setdefault(h.result.job, time.monotonic())  # cluster's to detect: no stop here
            for job, when in failed_at.items():  # SageMaker stops a failed job's other instances
                if time.monotonic() - when > STOP_GRACE_S:
                    for h in self.hosts:
                        if h.result.job == job and h.process is not None and h.result.exit_code is None:
                            self._stop_tree(h, graceful=True)
            if not running:
                break
            if deadline is not None and time.monotonic() >= deadline:
                timed_out = True
                break
            time.sleep(0.3)
        if timed_out:
            self.close()
        return self._collect(timed_out, timeout_s)

    def kill_host(self, host: str, job: int | str = 0) -> None:
        """Simulate an instance failure: SIGKILL the host's whole process tree at once."""
        name = self.specs[job].name if isinstance(job, int) else job
        h = next(h for h in self.hosts if h.result.job == name and h.result.host == host)
        self._stop_tree(h, graceful=False)

    def host_log(self, host: str, job: int | str = 0) -> str:
        name = self.specs[job].name if isinstance(job, int) else job
        return next(h for h in self.hosts if h.result.job == name and h.result.host == host).result.log_text()

    def close(self) -> None:
        """Stop every host's process tree and the local S3; safe to call twice."""
        for h in self.hosts:
            if h.process is not None:
                self._stop_tree(h, graceful=True)
                if h.result.exit_code is None:
                    h.result.exit_code = h.process.poll()
                if h.log_file is not None and not h.log_file.closed:
                    h.log_file.close()
        if self._own_s3 and self.s3 is not None:
            self.s3.stop()
        if self._ray_tmp:
            shutil.rmtree(self._ray_tmp, ignore_errors=True)
            self._ray_tmp = ""

    def __enter__(self) -> LocalJob:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------------ helpers
    def _remember_tree(self, h: _Host) -> None:
        remember_tree(h.process.pid, h.pids)

    def _stop_tree(self, h: _Host, graceful: bool) -> None:
        """Every process ever seen in the host's tree (Ray detaches its own into new process groups)."""
        if h.process is None:
            return
        if h.process.poll() is None:
            self._remember_tree(h)
            h.result.stopped_by_runner = "stopped" if graceful else "killed"
            h.result.ended_at = time.monotonic()
        stop_tree(h.process, h.pids, graceful)

    def _stream(self, h: _Host) -> None:
        if self.stream is None or not h.result.log.exists():
            return
        with open(h.result.log, "rb") as f:
            f.seek(h.log_offset)
            data = f.read()
        complete = data.rfind(b"\n") + 1
        h.log_offset += complete
        label = h.result.host if len(self.specs) == 1 else f"{h.result.job.rsplit('-', 1)[-1]}/{h.result.host}"
        for line in data[:complete].decode(errors="replace").splitlines():
            self.stream(f"[{label}] {line}")

    def _collect(self, timed_out: bool, timeout_s: float | None) -> LocalJobResult:
        jobs = []
        for spec in self.specs:
            hosts = [h.result for h in self.hosts if h.result.job == spec.name]
            folder = self.work_dir / spec.name
            model_tar = tar_folders(folder / "model.tar.gz", [h.base_dir / "model" for h in hosts])
            output_tar = tar_folders(folder / "output.tar.gz", [h.base_dir / "output" / "data" for h in hosts])
            started = any(h.exit_code is not None for h in hosts)
            failure = job_failure(hosts, timed_out, timeout_s) if started else "never started (start_secondary=False)"
            jobs.append(JobResult(spec.name, hosts, model_tar, output_tar, failure))
        return LocalJobResult(self.work_dir, jobs, time.monotonic() - self._started)



def run_local_job(*, timeout_s: float | None = None, check: bool = True, **options: Any) -> LocalJobResult:
    """Run a local job to its end (see :class:`LocalJob` for the options). Raises :class:`LocalJobError` when a
    host fails and ``check`` is true; every process is stopped whatever happens."""
    job = LocalJob(**options)
    try:
        job.start()
        result = job.wait(timeout_s)
    finally:
        job.close()
    return result.check() if check else result


# ---------------------------------------------------------------------------------------------------------- CLI
def _key_values(items: Sequence[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{what} must be KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="battlesnake-rl sagemaker local", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=MODES, default="single")
    parser.add_argument("--instances", "--instance-count", dest="instances", type=int, default=None,
                        help="hosts of the (primary) job (default 1, or 2 for homogeneous)")
    parser.add_argument("--secondary-instances", "--secondary-instance-count", dest="secondary_instances", type=int,
                        default=0, help="hosts of the secondary job (two jobs)")
    parser.add_argument("--instance-groups", default=None, help="NAME=COUNT,... one job with instance groups")
    parser.add_argument("--head-group", default=None, help="the instance group holding the Ray head")
    parser.add_argument("--hp", "--hyperparameter", dest="hp", action="append", default=[], metavar="KEY=VALUE",
                        help="a hyperparameter (VALUE parsed as JSON when it can be); repeatable")
    parser.add_argument("--hyperparameters", type=Path, default=None, help="a JSON file of hyperparameters")
    parser.add_argument("--source-dir", default=str(DEFAULT_SOURCE_DIR))
    parser.add_argument("--entry-point", default=DEFAULT_ENTRY_POINT)
    parser.add_argument("--dependencies", nargs="*", default=[str(d) for d in DEFAULT_DEPENDENCIES])
    parser.add_argument("--channel", action="append", default=[], metavar="NAME=PATH", help="an input channel")
    parser.add_argument("--cpus-per-host", type=int, default=2, help="CPUs each simulated host offers to Ray")
    parser.add_argument("--gpus-per-host", type=int, default=0)
    parser.add_argument("--work-dir", default=None, help="default runs/sagemaker-local/<job name>")
    parser.add_argument("--job-name", default=None)
    parser.add_argument("--timeout", type=float, default=None, help="stop every host after this many seconds")
    parser.add_argument("--quiet", action="store_true", help="do not stream the hosts' logs")
    parser.add_argument("--rendezvous", choices=RENDEZVOUS, default="launcher",
                        help="launcher: a fresh rl_run_id and rendezvous secret per run, as `battlesnake-rl sagemaker "
                             "launch` gives them; post: neither (two jobs share only s3_bucket and s3_prefix, as in "
                             "the blog post)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        hyperparameters: dict[str, Any] = json.loads(ns.hyperparameters.read_text()) if ns.hyperparameters else {}
        hyperparameters |= dict(parse_hyperparameter(text) for text in ns.hp)
        groups = None
        if ns.instance_groups:
            groups = {k: int(v) for k, v in _key_values(ns.instance_groups.split(","), "--instance-groups").items()}
        instances = ns.instances or (2 if ns.mode == "homogeneous" else 1)
        job = LocalJob(mode=ns.mode, instance_count=instances, secondary_instance_count=ns.secondary_instances,
                       instance_groups=groups, head_instance_group=ns.head_group, hyperparameters=hyperparameters,
                       source_dir=ns.source_dir, entry_point=ns.entry_point, dependencies=ns.dependencies,
                       channels=_key_values(ns.channel, "--channel"), cpus_per_host=ns.cpus_per_host,
                       gpus_per_host=ns.gpus_per_host, work_dir=ns.work_dir, job_name=ns.job_name,
                       stream=None if ns.quiet else print, rendezvous=ns.rendezvous)
    except (ValueError, OSError, json.JSONDecodeError) as exc:
        parser.error(str(exc))
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        job.start()
        print(f"local job {job.job_name}: {len(job.hosts)} host(s) under {job.work_dir}", file=sys.stderr)
        result = job.wait(ns.timeout)
    except KeyboardInterrupt:
        print("interrupted: stopping every host", file=sys.stderr)
        return 130
    finally:
        job.close()
        signal.signal(signal.SIGTERM, previous)
    for j in result.jobs:
        state = "succeeded" if j.success else "FAILED"
        print(f"{j.name}: {state}; model {j.model_tar}, output {j.output_tar}", file=sys.stderr)
        for h in j.hosts:
            print(f"  {h.host} ({h.address}): exit {h.exit_code}, log {h.log}", file=sys.stderr)
    if not result.success:
        print(f"error: {result.failure}", file=sys.stderr)
        return 1
    return 0


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
