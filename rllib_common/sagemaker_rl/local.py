"""Docker-free local runner: a SageMaker training job on this machine, one process tree per simulated host.

How to run::

    battlesnake-rl sagemaker local --mode single --hp iterations=1
    battlesnake-rl sagemaker local --mode homogeneous --instances 2 --hp iterations=2
    battlesnake-rl sagemaker local --mode heterogeneous --instances 1 --secondary-instances 2    # two jobs, local S3
    battlesnake-rl sagemaker local --mode heterogeneous --instance-groups gpu=1,cpu=2 --head-group gpu

or from Python (a notebook)::

    from sagemaker_rl.local import run_local_job
    result = run_local_job(mode="homogeneous", instances=2, hyperparameters={"iterations": 1})
    result.model_tar, result.hosts[1].log

What each simulated host gets, as SageMaker gives it in a container:

- its own ``SAGEMAKER_BASE_DIR`` tree (``<work-dir>/<job>/<host>/``): ``input/config/hyperparameters.json`` (every
  value JSON-encoded, as the SDK v2 estimators write it, with the SDK's ``sagemaker_*`` entries),
  ``resourceconfig.json``, ``inputdataconfig.json``, ``input/data/<channel>/``, ``model/``, ``output/``, and
  ``code/``: the source folder with the dependencies copied into it, as the SDK packs ``sourcedir.tar.gz``;
- the entry point run as the ``sagemaker-training`` toolkit runs a script — emulated, not the toolkit itself (its C
  extension and pinned dependencies do not belong in this project): ``python <entry point> --key value ...`` (the
  user hyperparameters, sorted, formatted as the toolkit formats them) in ``code/``, with the toolkit's ``SM_*``
  variables (``SM_HPS``, ``SM_HP_<KEY>``, ``SM_HOSTS``, ``SM_CURRENT_HOST``, ``SM_TRAINING_ENV``, ...);
- its own loopback address for Ray (127.0.0.2, 127.0.0.3, ... through ``$SM_RL_HOST_ADDRESSES``), its own Ray temp
  folder, and for two-job clusters a local S3 (a moto server on 127.0.0.1) through ``AWS_ENDPOINT_URL_S3``;
- as ``battlesnake-rl sagemaker launch`` gives them, a fresh ``rl_run_id`` shared by the jobs of a two-job run and a
  fresh rendezvous secret (``$SM_RL_RENDEZVOUS_SECRET``) shared by every host; ``rendezvous="post"`` gives neither
  (the blog post's two jobs, which share only ``s3_bucket`` and ``s3_prefix``).

A job fails when one of its hosts exits non-zero (its other hosts are stopped, as SageMaker stops the instances), and
the error carries that host's ``output/failure``. At the end each job's ``model/`` folders are merged into
``model.tar.gz`` and ``output/data/`` into ``output.tar.gz`` (later hosts win on a clash, as the SDK's local mode).
Every process tree is stopped on exit, error or Ctrl-C.
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
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cluster import HOST_ADDRESSES_ENV, RAY_PORT_ENV, RAY_START_ARGS_ENV, free_ports, wait_gone
from .rendezvous import SECRET_ENV

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # rllib_common/sagemaker_rl -> the project (editable install)
# The project's SageMaker job: what `battlesnake-rl sagemaker launch` ships as source_dir and dependencies.
DEFAULT_SOURCE_DIR = PROJECT_ROOT / "rllib_src"
DEFAULT_ENTRY_POINT = "train-mabs.py"
DEFAULT_DEPENDENCIES = (PROJECT_ROOT / "battlesnake_gym", PROJECT_ROOT / "battlesnake_policy",
                        PROJECT_ROOT / "rllib_common" / "sagemaker_rl")
MODES = ("single", "homogeneous", "heterogeneous")
RENDEZVOUS = ("launcher", "post")  # what the jobs share: run id and secret (the launcher's way), or bucket and prefix
LOCAL_BUCKET = "sagemaker-rl-local"
OBJECT_STORE_BYTES = 256 * 1024**2  # per simulated host: Ray's default (30% of RAM per node) does not fit N nodes
STOP_GRACE_S = 10.0  # a failed job's other hosts get this long to leave on their own before they are killed
ENV_PREFIXES_NOT_INHERITED = ("SM_", "SAGEMAKER_", "RAY_ADDRESS", "RAY_AUTH_", "AWS_ENDPOINT_URL", "TRAINING_JOB")


class LocalJobError(RuntimeError):
    """A local job failed; the message carries the failing host's ``output/failure`` (or its log's end)."""

    def __init__(self, message: str, result: LocalJobResult | None = None) -> None:
        super().__init__(message)
        self.result = result


# ---------------------------------------------------------------------------------------------------------- results
@dataclass
class HostResult:
    """One simulated host: where its files are and how it ended."""

    job: str
    host: str
    address: str  # its loopback IP for Ray
    base_dir: Path  # its SAGEMAKER_BASE_DIR
    log: Path  # its stdout and stderr
    exit_code: int | None = None  # None while running (or never started); negative: ended by that signal
    stopped_by_runner: str | None = None  # "killed": a simulated instance failure; "stopped": the job had ended
    ended_at: float = 0.0  # monotonic seconds

    @property
    def failure(self) -> str | None:
        path = self.base_dir / "output" / "failure"
        return path.read_text() if path.exists() else None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class JobResult:
    """One training job (two for a primary + secondary cluster) and its artifacts."""

    name: str
    hosts: list[HostResult]
    model_tar: Path
    output_tar: Path
    failure: str | None  # None when every host exited 0

    @property
    def success(self) -> bool:
        return self.failure is None


@dataclass
class LocalJobResult:
    """What a local run left: one :class:`JobResult` per job, the first being the primary (or only) job."""

    work_dir: Path
    jobs: list[JobResult]
    elapsed_s: float

    @property
    def success(self) -> bool:
        return all(j.success for j in self.jobs)

    @property
    def failure(self) -> str | None:
        return next((f"{j.name}: {j.failure}" for j in self.jobs if j.failure), None)

    @property
    def model_tar(self) -> Path:
        return self.jobs[0].model_tar

    @property
    def output_tar(self) -> Path:
        return self.jobs[0].output_tar

    @property
    def hosts(self) -> list[HostResult]:
        return [h for j in self.jobs for h in j.hosts]

    def host(self, host: str, job: int | str = 0) -> HostResult:
        the_job = self.jobs[job] if isinstance(job, int) else next(j for j in self.jobs if j.name == job)
        return next(h for h in the_job.hosts if h.host == host)

    def check(self) -> LocalJobResult:
        if not self.success:
            raise LocalJobError(f"local SageMaker job failed — {self.failure}", self)
        return self


# ---------------------------------------------------------------------------------------------------------- local S3
class LocalS3:
    """A moto S3 server on 127.0.0.1 (a free port) for the two-job rendezvous; a context manager."""

    def __init__(self, bucket: str = LOCAL_BUCKET) -> None:
        self.bucket = bucket
        self.endpoint = ""
        self._server: Any = None

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalS3:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per request otherwise
        port = _free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._server.start()
        self.endpoint = f"http://127.0.0.1:{port}"
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def environment(self) -> dict[str, str]:
        """What a host needs to reach this S3 with boto3 (fake credentials: moto accepts any)."""
        return {"AWS_ENDPOINT_URL_S3": self.endpoint, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="local",
                            aws_secret_access_key="local", region_name="us-east-1")


# ---------------------------------------------------------------------------------------------------------- job specs
@dataclass
class JobSpec:
    """One simulated SageMaker training job."""

    name: str
    hosts: list[str]  # algo-1 ... algo-N
    hyperparameters: dict[str, Any]  # user hyperparameters, Python values
    instance_groups: list[tuple[str, list[str]]] = field(default_factory=list)  # (group name, its hosts)


def plan_jobs(mode: str, instances: int, secondary_instances: int, instance_groups: Mapping[str, int] | None,
              head_group: str | None, hyperparameters: Mapping[str, Any], job_name: str,
              s3: LocalS3 | None, rendezvous: str = "launcher") -> list[JobSpec]:
    """The jobs of a local run, with the platform hyperparameters each needs (the user's own win).

    Two jobs share ``s3_bucket``, ``s3_prefix`` and (``rendezvous="launcher"``) a fresh ``rl_run_id``.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if rendezvous not in RENDEZVOUS:
        raise ValueError(f"rendezvous must be one of {', '.join(RENDEZVOUS)}, got {rendezvous!r}")
    if instances < 1:
        raise ValueError(f"instances must be >= 1, got {instances}")
    user = dict(hyperparameters)
    if mode == "single":
        if instances != 1 or secondary_instances or instance_groups:
            raise ValueError("mode single runs exactly one host: drop --instances/--secondary-instances/"
                             "--instance-groups, or use homogeneous or heterogeneous")
        return [JobSpec(job_name, ["algo-1"], user)]
    if mode == "homogeneous":
        if instances < 2 or secondary_instances or instance_groups:
            raise ValueError("mode homogeneous needs --instances >= 2 and no secondary instances or instance groups")
        return [JobSpec(job_name, _algo(instances), user)]
    if bool(secondary_instances) == bool(instance_groups):
        raise ValueError("mode heterogeneous needs either --secondary-instances M (two jobs meeting through S3) "
                         "or --instance-groups NAME=COUNT,... with --head-group (one job with instance groups)")
    if instance_groups:
        if any(n < 1 for n in instance_groups.values()):
            raise ValueError(f"every instance group needs >= 1 host, got {dict(instance_groups)}")
        if head_group not in instance_groups:
            raise ValueError(f"--head-group must name one of the instance groups {list(instance_groups)}, "
                             f"got {head_group!r}")
        hosts = _algo(sum(instance_groups.values()))
        groups, start = [], 0
        for name, count in instance_groups.items():
            groups.append((name, hosts[start:start + count]))
            start += count
        return [JobSpec(job_name, hosts, {"rl_head_instance_group": head_group, **user}, groups)]
    if s3 is None:
        raise ValueError("a primary + secondary run needs a local S3")
    shared = {"s3_bucket": s3.bucket, "s3_prefix": f"rendezvous/{job_name}"}
    if rendezvous == "launcher":
        shared["rl_run_id"] = f"{job_name}-{uuid.uuid4().hex[:8]}"
    shared |= {k: user.pop(k) for k in list(shared) if k in user}
    primary = {"rl_cluster_type": "primary", "rl_num_instances_secondary": secondary_instances, **shared, **user}
    secondary = {"rl_cluster_type": "secondary", **shared, **{k: v for k, v in user.items()
                                                              if k not in ("rl_num_instances_secondary",)}}
    return [JobSpec(f"{job_name}-primary", _algo(instances), primary),
            JobSpec(f"{job_name}-secondary", _algo(secondary_instances), secondary)]


def _algo(n: int) -> list[str]:
    return [f"algo-{i}" for i in range(1, n + 1)]


# ---------------------------------------------------------------------------------------------------------- the toolkit
def toolkit_value(value: Any) -> str:
    """A hyperparameter as the toolkit puts it on the command line: str(), a mapping as ``k=v,k2=v2``."""
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in sorted(value.items()))
    return "" if value is None else str(value)


def toolkit_args(hyperparameters: Mapping[str, Any]) -> list[str]:
    """``--key value`` pairs, keys sorted (``-k`` for one-letter keys), as sagemaker-training builds them."""
    args: list[str] = []
    for key in sorted(hyperparameters):
        args += [f"--{key}" if len(key) > 1 else f"-{key}", toolkit_value(hyperparameters[key])]
    return args


def _env_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return "" if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))


def toolkit_environment(*, job: str, host: str, hosts: Sequence[str], base_dir: Path, code_dir: Path,
                        entry_point: str, hyperparameters: Mapping[str, Any], resource_config: Mapping[str, Any],
                        channels: Sequence[str], num_cpus: int, num_gpus: int) -> dict[str, str]:
    """The ``SM_*`` variables the toolkit gives a script entry point (the subset a training script reads)."""
    group = resource_config.get("current_group_name", "homogeneousCluster")
    groups = resource_config.get("instance_groups", [])
    training_env = {
        "job_name": job, "current_host": host, "hosts": list(hosts), "current_instance_group": group,
        "current_instance_type": resource_config.get("current_instance_type", "local"),
        "current_instance_group_hosts": next((g["hosts"] for g in groups if g["instance_group_name"] == group), []),
        "instance_groups": [g["instance_group_name"] for g in groups], "is_hetero": len(groups) > 1,
        "hyperparameters": dict(hyperparameters), "user_entry_point": entry_point,
        "module_name": Path(entry_point).stem, "module_dir": str(code_dir), "num_cpus": num_cpus,
        "num_gpus": num_gpus, "model_dir": str(base_dir / "model"), "output_dir": str(base_dir / "output"),
        "output_data_dir": str(base_dir / "output" / "data"), "input_dir": str(base_dir / "input"),
        "input_config_dir": str(base_dir / "input" / "config"),
        "channel_input_dirs": {c: str(base_dir / "input" / "data" / c) for c in channels},
        "resource_config": dict(resource_config), "network_interface_name": "lo", "log_level": 20,
    }
    env = {
        "SM_TRAINING_ENV": json.dumps(training_env), "SM_HOSTS": json.dumps(list(hosts)), "SM_CURRENT_HOST": host,
        "SM_CURRENT_INSTANCE_GROUP": group, "SM_CURRENT_INSTANCE_TYPE": training_env["current_instance_type"],
        "SM_CURRENT_INSTANCE_GROUP_HOSTS": json.dumps(training_env["current_instance_group_hosts"]),
        "SM_INSTANCE_GROUPS": json.dumps(training_env["instance_groups"]),
        "SM_IS_HETERO": json.dumps(training_env["is_hetero"]),
        "SM_NUM_CPUS": str(num_cpus), "SM_NUM_GPUS": str(num_gpus), "SM_MODEL_DIR": training_env["model_dir"],
        "SM_OUTPUT_DIR": training_env["output_dir"], "SM_OUTPUT_DATA_DIR": training_env["output_data_dir"],
        "SM_INPUT_DIR": training_env["input_dir"], "SM_INPUT_CONFIG_DIR": training_env["input_config_dir"],
        "SM_CHANNELS": json.dumps(sorted(channels)), "SM_HPS": json.dumps(dict(hyperparameters)),
        "SM_USER_ARGS": json.dumps(toolkit_args(hyperparameters)), "SM_USER_ENTRY_POINT": entry_point,
        "SM_MODULE_NAME": training_env["module_name"], "SM_MODULE_DIR": str(code_dir),
        "SM_RESOURCE_CONFIG": json.dumps(dict(resource_config)), "SM_NETWORK_INTERFACE_NAME": "lo",
        "SM_LOG_LEVEL": "20", "SM_FRAMEWORK_PARAMS": "{}", "TRAINING_JOB_NAME": job,
    }
    env |= {f"SM_CHANNEL_{c.upper()}": training_env["channel_input_dirs"][c] for c in channels}
    env |= {f"SM_HP_{k.upper()}": _env_value(v) for k, v in hyperparameters.items()}
    return env


def sdk_hyperparameters(user: Mapping[str, Any], *, entry_point: str, code_dir: Path, job: str) -> dict[str, str]:
    """hyperparameters.json as an SDK v2 estimator writes it: every value JSON-encoded, plus its sagemaker_* keys."""
    written = {k: json.dumps(v) for k, v in user.items()}
    written |= {"sagemaker_program": json.dumps(entry_point),
                "sagemaker_submit_directory": json.dumps(code_dir.as_uri()), "sagemaker_container_log_level": "20",
                "sagemaker_job_name": json.dumps(job), "sagemaker_region": json.dumps("us-east-1")}
    return written


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

    def __init__(self, *, mode: str = "single", instances: int = 1, secondary_instances: int = 0,
                 instance_groups: Mapping[str, int] | None = None, head_group: str | None = None,
                 hyperparameters: Mapping[str, Any] | None = None,
                 source_dir: str | os.PathLike = DEFAULT_SOURCE_DIR, entry_point: str = DEFAULT_ENTRY_POINT,
                 dependencies: Sequence[str | os.PathLike] = DEFAULT_DEPENDENCIES,
                 channels: Mapping[str, str | os.PathLike] | None = None, cpus_per_host: int = 2,
                 gpus_per_host: int = 0, work_dir: str | os.PathLike | None = None, job_name: str | None = None,
                 environment: Mapping[str, str] | None = None, s3: LocalS3 | None = None,
                 start_secondary: bool = True, stream: Callable[[str], None] | None = None,
                 rendezvous: str = "launcher") -> None:
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
        two_jobs = mode == "heterogeneous" and secondary_instances > 0
        self._own_s3 = s3 is None and two_jobs
        self.s3 = LocalS3() if self._own_s3 else s3
        self.specs = plan_jobs(mode, instances, secondary_instances, instance_groups, head_group,
                               hyperparameters or {}, self.job_name, self.s3, rendezvous)
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
            port = _free_port()
            for host in spec.hosts:
                self.hosts.append(self._prepare_host(spec, host, addresses, port))
        for h in self.hosts:
            if self.start_secondary or h.result.job == self.specs[0].name:
                self._launch(h)
        return self

    def _prepare_host(self, spec: JobSpec, host: str, addresses: dict[str, str], port: int) -> _Host:
        base = self.work_dir / spec.name / host
        if base.exists():
            shutil.rmtree(base)
        config = base / "input" / "config"
        config.mkdir(parents=True)
        for sub in ("model", "output/data", "checkpoints"):
            (base / sub).mkdir(parents=True)
        code = base / "code"
        shutil.copytree(self.source_dir, code, symlinks=True)
        for dep in self.dependencies:  # the SDK copies each dependency folder into the root of sourcedir.tar.gz
            shutil.copytree(dep, code / dep.name, symlinks=True, dirs_exist_ok=True)
        for name, path in self.channels.items():
            target = base / "input" / "data" / name
            if path.is_dir():
                shutil.copytree(path, target)
            else:
                target.mkdir(parents=True)
                shutil.copy2(path, target / path.name)

        groups = spec.instance_groups or [("homogeneousCluster", spec.hosts)]
        group = next(name for name, hosts in groups if host in hosts)
        resource_config = {"current_host": host, "current_instance_type": "local", "current_group_name": group,
                           "hosts": spec.hosts, "network_interface_name": "lo",
                           "instance_groups": [{"instance_group_name": name, "instance_type": "local",
                                                "hosts": hosts} for name, hosts in groups]}
        (config / "resourceconfig.json").write_text(json.dumps(resource_config))
        (config / "hyperparameters.json").write_text(json.dumps(sdk_hyperparameters(
            spec.hyperparameters, entry_point=self.entry_point, code_dir=code, job=spec.name)))
        (config / "inputdataconfig.json").write_text(json.dumps({c: {
            "TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
            for c in self.channels}))

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
        h.pids[h.process.pid] = _create_time(h.process.pid)

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
        import psutil

        try:
            for child in psutil.Process(h.process.pid).children(recursive=True):
                h.pids.setdefault(child.pid, _create_time(child.pid))
        except psutil.NoSuchProcess:
            pass

    def _stop_tree(self, h: _Host, graceful: bool) -> None:
        """Every process ever seen in the host's tree (Ray detaches its own into new process groups)."""
        import psutil

        if h.process is None:
            return
        if h.process.poll() is None:
            self._remember_tree(h)
            h.result.stopped_by_runner = "stopped" if graceful else "killed"
            h.result.ended_at = time.monotonic()
        sig = signal.SIGTERM if graceful else signal.SIGKILL
        procs = []  # the entry point's descendants; the entry point itself is waited through Popen (its exit code)
        for pid, created in h.pids.items():
            try:
                proc = psutil.Process(pid)
                if pid != h.process.pid and abs(proc.create_time() - created) < 0.01:  # not a reused pid
                    procs.append(proc)
            except psutil.NoSuchProcess:
                pass
        if h.process.poll() is None:
            h.process.send_signal(sig)
        for proc in procs:
            try:
                proc.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        try:
            h.process.wait(10 if graceful else 3)
        except subprocess.TimeoutExpired:
            h.process.kill()
            h.process.wait()
        for proc in wait_gone(procs, 10.0 if graceful else 3.0):
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass

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
            model_tar = _tar(folder / "model.tar.gz", [h.base_dir / "model" for h in hosts])
            output_tar = _tar(folder / "output.tar.gz", [h.base_dir / "output" / "data" for h in hosts])
            started = any(h.exit_code is not None for h in hosts)
            failure = _job_failure(hosts, timed_out, timeout_s) if started else "never started (start_secondary=False)"
            jobs.append(JobResult(spec.name, hosts, model_tar, output_tar, failure))
        return LocalJobResult(self.work_dir, jobs, time.monotonic() - self._started)


def _job_failure(hosts: list[HostResult], timed_out: bool, timeout_s: float | None) -> str | None:
    """Why a job failed: hosts the runner killed (simulated instance failures) first, then the first host that failed
    by itself (its output/failure, else its log's end); hosts the runner stopped after a failure say nothing."""
    reasons = [f"{h.host} was killed (a simulated instance failure)" for h in hosts if h.stopped_by_runner == "killed"]
    own = sorted((h for h in hosts if h.exit_code not in (0, None) and h.stopped_by_runner is None),
                 key=lambda h: (h.failure is None, h.ended_at))
    if own:
        h = own[0]
        reasons.append(f"{h.host} exited with code {h.exit_code}: {(h.failure or _tail(h.log_text())).strip()}")
    if timed_out:
        reasons.append(f"timed out after {timeout_s:g} s; every host was stopped")
    return "; ".join(reasons) or None


def _tail(text: str, lines: int = 20) -> str:
    return "(no output/failure; the end of its log:)\n" + "\n".join(text.splitlines()[-lines:])


def _tar(path: Path, folders: Sequence[Path]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for folder in folders:
            if folder.is_dir():
                for item in sorted(folder.iterdir()):
                    tar.add(item, arcname=item.name)
    return path


def _free_port() -> int:
    return free_ports(1)[0]


def _create_time(pid: int) -> float:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return 0.0


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


def _hyperparameter(value: str) -> Any:
    try:
        return json.loads(value)  # numbers, booleans, lists as JSON; anything else stays a string
    except json.JSONDecodeError:
        return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="battlesnake-rl sagemaker local", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=MODES, default="single")
    parser.add_argument("--instances", type=int, default=None, help="hosts of the (primary) job (default 1, or 2 "
                        "for homogeneous)")
    parser.add_argument("--secondary-instances", type=int, default=0, help="hosts of the secondary job (two jobs)")
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
        hyperparameters |= {k: _hyperparameter(v) for k, v in _key_values(ns.hp, "--hp").items()}
        groups = None
        if ns.instance_groups:
            groups = {k: int(v) for k, v in _key_values(ns.instance_groups.split(","), "--instance-groups").items()}
        instances = ns.instances or (2 if ns.mode == "homogeneous" else 1)
        job = LocalJob(mode=ns.mode, instances=instances, secondary_instances=ns.secondary_instances,
                       instance_groups=groups, head_group=ns.head_group, hyperparameters=hyperparameters,
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
