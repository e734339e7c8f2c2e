"""Plumbing of the real SageMaker SDK local-mode jobs the Docker stage runs (docker/blog_post_jobs.py,
docker/spot_stop_job.py): one S3 that the SDK and the containers share, local sessions, a time budget per job, each
container's log and exit code, and the checks of a job's artifacts.

What runs is what SageMaker runs, minus AWS: ``instance_type="local"`` makes the SDK pack ``source_dir`` with its
``dependencies`` into sourcedir.tar.gz, upload it to S3, write each host's ``/opt/ml/input/config`` and start one
container per host (``algo-1-xxxxx``, ``algo-2-xxxxx``, ...: the suffix is per job) with docker-compose on the
``sagemaker-local`` network, where the image's init runs the toolkit's ``train``. S3 is a moto server listening on the
docker bridge's address, so the SDK on this machine and the containers reach it at the same URL (``LocalSession``
passes it into the containers as ``AWS_ENDPOINT_URL_S3``, with the session's dummy credentials). No AWS account is
used; the role is a dummy ARN.

Local mode runs ``fit()`` to its end in the calling thread (``wait=False`` changes nothing), so concurrent jobs run in
threads; and it stops every container of a job as soon as one exits, then calls the job a success after the first
exit 0: the checks here read every container's own exit code.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagemaker_rl.contract import host_order
from sagemaker_rl.sources import checkout_sources
from sagemaker_rl.standins import sdk_config, start_moto_server

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = checkout_sources(ROOT)  # what `battlesnake-rl sagemaker launch` ships, from this checkout
SOURCE_DIR = SHIPPED.source_dir
DEPENDENCIES = list(SHIPPED.dependencies)
ROLE = "arn:aws:iam::000000000000:role/battlesnake-local-mode"  # local mode never assumes it
REGION = "us-east-1"
JOB_LABEL = "battlesnake-rl.local-job"  # compose label on a job's containers: logs, exit codes, the watchdog
MODEL_FILES = ("policy.pt", "policy.onnx", "config.json")


class JobCheckError(RuntimeError):
    """A local-mode job did not run as it should, or left wrong artifacts; the message says what."""


# ------------------------------------------------------------------------------------------------------ S3, sessions
class LocalAws:
    """A moto S3 server on an address both this machine and the containers reach, with one bucket; a context manager.

    ``session(out, job_name)`` makes a ``LocalSession`` on it whose containers carry ``JOB_LABEL=job_name``.
    """

    def __init__(self, bucket: str = "battlesnake-local", host: str | None = None) -> None:
        self.bucket = bucket
        self.host = host
        self.endpoint = ""
        self._server: Any = None

    def __enter__(self) -> LocalAws:
        quiet_sdk()
        self._server, self.endpoint = start_moto_server(self.host or interface_ipv4("docker0"))
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def boto_session(self) -> Any:
        import boto3

        # Dummy credentials: moto accepts any, and botocore then never probes for real ones (no metadata service).
        return boto3.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name=REGION)

    def client(self) -> Any:
        return self.boto_session().client("s3", endpoint_url=self.endpoint)

    def session(self, out: Path, job_name: str) -> Any:
        from sagemaker.local import LocalSession

        # the bucket given: the SDK's default one is named after the account, which it would ask AWS STS for
        session = LocalSession(boto_session=self.boto_session(), s3_endpoint_url=self.endpoint,
                               default_bucket=self.bucket)
        (out / "containers").mkdir(parents=True, exist_ok=True)
        session.config = {"local": {
            "local_code": False,  # package source_dir + dependencies and ship them through S3, as on SageMaker
            "container_root": str(out / "containers"),
            # SageMaker instances have a large /dev/shm; Ray's object store lives there (docker's default: 64 MB).
            "container_config": {"shm_size": "1gb", "labels": {JOB_LABEL: job_name}},
        }}
        return session

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        """Every object under ``prefix``: key -> body."""
        client = self.client()
        listing = client.list_objects_v2(Bucket=self.bucket, Prefix=prefix).get("Contents", [])
        return {o["Key"]: client.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read() for o in listing}


# ---------------------------------------------------------------------------------------------------------- a job
@dataclass
class JobRun:
    """One finished local-mode job: each host's exit code and log, where its artifacts are."""

    name: str
    exits: dict[str, int] = field(default_factory=dict)  # host (algo-N-xxxxx) -> exit code of its container
    logs: dict[str, str] = field(default_factory=dict)  # host -> its container's stdout and stderr
    model_tar: Path | None = None
    error: str = ""  # what fit() raised, if anything
    seconds: float = 0.0

    @property
    def hosts(self) -> list[str]:
        return sorted(self.exits, key=host_order)

    @property
    def head_log(self) -> str:
        return self.logs[self.hosts[0]]

    def check_exits(self, hosts: int) -> None:
        """Every host ran to its own end, exit 0 (a container stopped by compose shows 137 or 143)."""
        if self.error or len(self.exits) != hosts or any(self.exits.values()):
            raise JobCheckError(f"job {self.name}: expected {hosts} host(s) exiting 0, got {self.exits}"
                                + (f"; fit() raised: {self.error}" if self.error else "") + self.failure_text())

    def failure_text(self) -> str:
        tails = [f"\n--- {host} (exit {code}), last lines ---\n" + "\n".join(self.logs.get(host, "").splitlines()[-25:])
                 for host, code in self.exits.items() if code]
        return "".join(tails)

    def expect_in_log(self, host: str, *texts: str) -> None:
        log = self.logs.get(host, "")
        missing = [t for t in texts if t not in log]
        if missing:
            raise JobCheckError(f"job {self.name}: {host}'s log lacks {missing}; its end:\n" + log[-3000:])


def run_job(estimator: Any, job_name: str, timeout_s: float, inputs: Any = None,
            log_dir: Path | None = None) -> JobRun:
    """``estimator.fit()`` as this job (in this thread), killed past ``timeout_s``; then each container's exit code
    and log are read (and written to ``log_dir/<job>/<host>.log``), and the containers removed."""
    run = JobRun(job_name)
    watchdog = threading.Timer(timeout_s, kill_job, args=(job_name, "KILL", "over its time budget"))
    watchdog.daemon = True
    watchdog.start()
    started = time.monotonic()
    try:
        estimator.fit(inputs=inputs, job_name=job_name, wait=True, logs="None")
    except Exception as exc:  # noqa: BLE001 - the SDK raises on a failed job; the containers say why
        run.error = f"{type(exc).__name__}: {exc}"
    finally:
        watchdog.cancel()
        run.seconds = time.monotonic() - started
        ids = job_containers(job_name)
        for container in ids:
            host = docker("inspect", "-f", '{{index .Config.Labels "com.docker.compose.service"}}', container).strip()
            run.exits[host] = int(docker("inspect", "-f", "{{.State.ExitCode}}", container).strip())
            run.logs[host] = docker("logs", container, stderr=True).replace("\r\n", "\n")
            if log_dir is not None:
                (log_dir / job_name).mkdir(parents=True, exist_ok=True)
                (log_dir / job_name / f"{host}.log").write_text(run.logs[host])
        if ids:
            docker("rm", "-f", *ids)
    if not run.error:
        model = getattr(estimator, "model_data", None)
        model = model if isinstance(model, str) else None
        run.model_tar = Path(model.removeprefix("file://")) if model else None
    if timeout_s <= run.seconds:
        run.error = run.error or f"ran past its {timeout_s:g} s budget: its containers were killed"
    return run


def run_concurrently(jobs: list[tuple[Any, str, float, Any, Path | None]]) -> list[JobRun]:
    """Several ``run_job(estimator, name, timeout, inputs, log_dir)`` at once, one thread each; their runs in order."""
    runs: list[JobRun | None] = [None] * len(jobs)

    def one(i: int) -> None:
        runs[i] = run_job(*jobs[i])

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
        time.sleep(2)  # the SDK's local mode is not written for concurrent setup: let each start its containers
    for thread in threads:
        thread.join()
    return [run for run in runs if run is not None]


def wait_for_log(job_name: str, text: str, timeout_s: float, host_index: int = 0) -> str:
    """Until the job's ``host_index``-th host (algo-1 first) has ``text`` in its log; that host's name."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        hosts = sorted(((docker("inspect", "-f", '{{index .Config.Labels "com.docker.compose.service"}}', c).strip(),
                         c) for c in job_containers(job_name, running_only=True)), key=lambda hc: host_order(hc[0]))
        if len(hosts) > host_index and text in docker("logs", hosts[host_index][1], stderr=True):
            return hosts[host_index][0]
        time.sleep(1)
    raise JobCheckError(f"job {job_name}: no running host printed {text!r} within {timeout_s:g} s")


def kill_job(job_name: str, signal_name: str = "TERM", why: str = "") -> list[str]:
    """``docker kill -s SIGNAL`` every running container of the job (SIGTERM: what SageMaker sends at a stop)."""
    ids = job_containers(job_name, running_only=True)
    if ids:
        print(f"job {job_name}: SIG{signal_name} to its containers {ids}" + (f" ({why})" if why else ""), flush=True)
        docker("kill", "-s", signal_name, *ids)
    return ids


# ---------------------------------------------------------------------------------------------------------- checks
def check_model(model_tar: Path | None, where: str) -> dict:
    """model.tar.gz holds the exports, and the TorchScript and ONNX policies, loaded without Ray, pick the same legal
    moves; returns its config.json."""
    import numpy as np

    if model_tar is None or not model_tar.is_file():
        raise JobCheckError(f"{where}: no model artifact at {model_tar}")
    with tarfile.open(model_tar) as tar:
        names = {Path(name).as_posix().removeprefix("./") for name in tar.getnames()}
        missing = [name for name in MODEL_FILES if name not in names]
        if missing:
            raise JobCheckError(f"{where}: {model_tar} lacks {missing}; it holds {sorted(names)}")
        folder = Path(tempfile.mkdtemp(prefix="battlesnake-model-"))
        tar.extractall(folder, filter="data")
    from battlesnake_policy import load_policy

    mask = np.array([[True, False, False, False], [False, False, True, True], [True, True, True, True]])
    chosen = {}
    for name in ("policy.pt", "policy.onnx"):
        policy = load_policy(folder / name)
        obs = np.random.default_rng(0).integers(0, 2, size=(len(mask), *policy.obs_shape), dtype=np.uint8)
        actions = np.asarray(policy(obs, mask))
        if actions.shape != (len(mask),) or not all(mask[i, a] for i, a in enumerate(actions)):
            raise JobCheckError(f"{where}: {name} chose {actions.tolist()} for action masks {mask.tolist()}")
        chosen[name] = actions.tolist()
    if chosen["policy.pt"] != chosen["policy.onnx"]:
        raise JobCheckError(f"{where}: policy.pt and policy.onnx disagree on the same observations: {chosen}")
    return json.loads((folder / "config.json").read_text())


def metric_values(definitions: list[dict[str, str]], log: str) -> dict[str, list[float]]:
    """What SageMaker records from a log with these metric definitions: per line, each regex's first group."""
    found: dict[str, list[float]] = {}
    for line in log.splitlines():
        line = re.sub(r"^\S+\s+\|\s", "", line)  # a docker-compose prefix, if any
        for definition in definitions:
            match = re.search(definition["Regex"], line)
            if match:
                found.setdefault(definition["Name"], []).append(float(match.group(1)))
    return found


def env_runner_hosts(log: str) -> dict[str, int]:
    """The ``env_runner_hosts: algo-1-xxxxx=1,secondary/algo-1-yyyyy=2`` line train-mabs.py prints."""
    line = next((line for line in log.splitlines() if line.startswith("env_runner_hosts: ")), None)
    if line is None:
        raise JobCheckError("the head's log has no env_runner_hosts line")
    return {host: int(n) for host, n in (item.split("=") for item in line.split(": ", 1)[1].split(","))}


# ---------------------------------------------------------------------------------------------------------- docker
def docker(*args: str, stderr: bool = False) -> str:
    done = subprocess.run(["docker", *args], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT if stderr else subprocess.PIPE, text=True, errors="replace")
    return done.stdout


def job_containers(job_name: str, running_only: bool = False) -> list[str]:
    """IDs of the job's containers, found by the label its session puts on them."""
    command = ["ps", "-q", "--filter", f"label={JOB_LABEL}={job_name}"]
    if not running_only:
        command.insert(1, "-a")
    return docker(*command).split()


def check_docker(image: str) -> None:
    try:
        subprocess.run(["docker", "info"], capture_output=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        raise JobCheckError("docker is not running (make test-docker installs and starts it)") from None
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode != 0:
        raise JobCheckError(f"no image {image!r} (build it with docker/build.sh)")
    if subprocess.run(["docker-compose", "version"], capture_output=True).returncode != 0:
        raise JobCheckError("docker-compose is missing (SageMaker local mode runs its containers with it)")


def interface_ipv4(name: str) -> str:
    """The IPv4 address of a network interface (SIOCGIFADDR), e.g. docker0's: the host as containers see it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            packed = fcntl.ioctl(sock.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))
        except OSError:
            raise JobCheckError(f"no network interface {name!r} with an IPv4 address (pass --s3-host)") from None
    return socket.inet_ntoa(packed[20:24])


def quiet_sdk() -> None:
    """No telemetry calls (there is no network to send them to) and no SDK v2 deprecation banner."""
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    if "SAGEMAKER_USER_CONFIG_OVERRIDE" not in os.environ:
        os.environ["SAGEMAKER_USER_CONFIG_OVERRIDE"] = str(sdk_config(tempfile.mkdtemp(prefix="sagemaker-config-")))


def main_guard(main: Callable[[], None], what: str) -> int:
    """Run a scenario: exit 0 when it passed, 1 with the reason when a check failed."""
    try:
        main()
    except JobCheckError as exc:
        print(f"{what} FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"{what} OK", flush=True)
    return 0
