"""What the notebooks share: one switch between real AWS and local stand-ins, and the few steps every notebook takes.

Every notebook in ``notebooks/`` runs against real AWS by default. One environment variable switches it to this
machine, with tiny budgets (CI runs every notebook that way)::

    BATTLESNAKE_RL_LOCAL=1 jupyter lab notebooks/

In local mode ``connect()`` starts a moto server in the notebook's own process as the S3 and SageMaker APIs (the same
stand-in the tests use), points every AWS client of the process, and of the commands it starts, at it, and hands back
a session, a dummy role and a bucket on it: nothing reaches AWS, no credentials are read. Training jobs submitted
there are recorded, not run; the docker-free local runner (``sagemaker_rl.local``) runs them on this machine.

How a notebook uses it::

    from sagemaker_rl import notebook as nb

    aws = nb.connect()                       # real AWS, or the local stand-ins when BATTLESNAKE_RL_LOCAL=1
    MINUTES = nb.pick(60, local=0.3)         # the real budget, or CI's
    nb.run("battlesnake-rl", "train", "--minutes", MINUTES)      # streams its output, fails the cell on error

Like the rest of the platform layer this module knows nothing of Battlesnake: commands are run by name, the metric
definitions come from the launcher, and endpoints are any SageMaker inference script with the four handler functions.
"""

from __future__ import annotations

import atexit
import html
import importlib.util
import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .launch import BUCKET_ENV, IMAGE_URI_ENV, ROLE_ENV, _import_sagemaker
from .standins import REAL_ACCOUNT_VARIABLES, aws_environment, start_moto_server

#: The switch: ``1`` runs a notebook against the local stand-ins with tiny budgets; unset or ``0``: real AWS.
LOCAL_ENV = "BATTLESNAKE_RL_LOCAL"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")

#: What the local stand-ins call themselves: moto's account, and names that cannot be mistaken for real resources.
LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT = "123456789012"
LOCAL_BUCKET = "battlesnake-rl-local"
LOCAL_ROLE = f"arn:aws:iam::{LOCAL_ACCOUNT}:role/battlesnake-rl-local"
LOCAL_IMAGE_URI = f"{LOCAL_ACCOUNT}.dkr.ecr.{LOCAL_REGION}.amazonaws.com/battlesnake-rl:local"
#: Where SageMaker sends training jobs' logs.
LOG_GROUP = "/aws/sagemaker/TrainingJobs"


class NotebookError(RuntimeError):
    """A notebook step that cannot go on: a missing setting, or a command that failed; the message says which."""


class CommandError(NotebookError):
    """A command ``run`` started ended with a non-zero status; ``tail`` holds its last output lines."""

    def __init__(self, argv: Sequence[str], returncode: int, tail: Sequence[str]):
        self.argv, self.returncode, self.tail = list(argv), returncode, list(tail)
        shown = "\n".join(self.tail)
        super().__init__(f"{' '.join(self.argv)} exited with status {returncode}; its last lines:\n{shown}")


# ---------------------------------------------------------------------------------------------- the switch


def local_mode(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``BATTLESNAKE_RL_LOCAL`` asks for the local stand-ins (1/true/yes/on); False when it is unset or
    0/false/no/off. Any other value is an error rather than a guess: a typo must not send a notebook to real AWS."""
    value = (os.environ if environ is None else environ).get(LOCAL_ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise NotebookError(f"{LOCAL_ENV}={value!r}: use 1 (local stand-ins, tiny budgets) or 0 / unset (real AWS)")


def pick(default: Any, *, local: Any) -> Any:
    """``default`` normally, ``local`` in local mode: the one place a notebook's budgets differ between the two."""
    return local if local_mode() else default


# ---------------------------------------------------------------------------------------------- AWS or stand-ins


@dataclass
class StandIns:
    """A moto server on 127.0.0.1 answering as S3 and the SageMaker API, and the files that point clients at it."""

    url: str
    server: Any
    folder: tempfile.TemporaryDirectory

    def stop(self) -> None:
        self.server.stop()
        self.folder.cleanup()


_STANDINS: StandIns | None = None
_STANDINS_LOCK = threading.Lock()


def start_standins(region: str = LOCAL_REGION) -> StandIns:
    """Start the stand-ins once per process (stopped when it exits) and point this process's AWS settings at them.

    The variables are set in ``os.environ``, so the commands a notebook starts (the local runner, its hosts)
    inherit them: dummy credentials, no AWS config or credentials files, ``AWS_ENDPOINT_URL`` on the server, and the
    SageMaker SDK's telemetry switched off (it would try to reach AWS).
    """
    global _STANDINS
    with _STANDINS_LOCK:
        if _STANDINS is not None:
            return _STANDINS
        server, url = start_moto_server()
        folder = tempfile.TemporaryDirectory(prefix="battlesnake-rl-standins-")
        for name in REAL_ACCOUNT_VARIABLES:
            os.environ.pop(name, None)
        os.environ.update(aws_environment(url, region, folder.name))
        _STANDINS = StandIns(url, server, folder)
        atexit.register(_STANDINS.stop)
        return _STANDINS


@dataclass
class Aws:
    """Where a notebook's jobs, models and endpoints go: a SageMaker session, the role they run as, a bucket.

    ``local`` is True on the stand-ins (``endpoint_url`` is then the moto server's address).
    """

    local: bool
    session: Any  # sagemaker.Session
    role: str
    bucket: str
    region: str
    endpoint_url: str | None = None
    image: str | None = field(default=None, repr=False)

    @property
    def image_uri(self) -> str:
        """The training image in ECR ($BATTLESNAKE_RL_IMAGE_URI); a clear error when it is not set."""
        if not self.image:
            raise NotebookError(f"set ${IMAGE_URI_ENV} to the training image in ECR: build it with docker/build.sh "
                                f"(on an AWS deep-learning base image), push it to ECR, and pass its URI, e.g. "
                                f"{LOCAL_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/battlesnake-rl:cpu")
        return self.image

    def s3(self) -> Any:
        """A boto3 S3 client on this session's credentials and region (the stand-in in local mode)."""
        return self.session.boto_session.client("s3")

    def __str__(self) -> str:
        where = f"local stand-ins at {self.endpoint_url}" if self.local else f"AWS, region {self.region}"
        return (f"{where}\n  role:   {self.role}\n  bucket: s3://{self.bucket}\n"
                f"  image:  {self.image or f'(not set: ${IMAGE_URI_ENV})'}")


def connect(region: str | None = None) -> Aws:
    """A SageMaker session on real AWS, or on the local stand-ins in local mode.

    Real AWS: the default credentials and region (a SageMaker Studio space has both); the role is
    ``$BATTLESNAKE_RL_ROLE``, else the notebook's execution role; the bucket ``$BATTLESNAKE_RL_S3_BUCKET``, else the
    session's default bucket (created if needed). Local: ``start_standins``, a bucket on it, a dummy role and image.
    """
    sagemaker = _import_sagemaker()
    logging.getLogger("botocore").setLevel(logging.WARNING)  # where each client found its endpoint, at INFO
    logging.getLogger("sagemaker.telemetry").setLevel(logging.WARNING)  # an opt-out notice on every call, at INFO
    if local_mode():
        standins = start_standins(region or LOCAL_REGION)
        import boto3

        boto_session = boto3.Session(region_name=region or LOCAL_REGION)
        boto_session.client("s3").create_bucket(Bucket=LOCAL_BUCKET)
        # An explicit default bucket: the SDK would otherwise ask STS (not stood in) for the account to name one.
        session = sagemaker.Session(boto_session=boto_session, default_bucket=LOCAL_BUCKET)
        return Aws(True, session, LOCAL_ROLE, LOCAL_BUCKET, boto_session.region_name, standins.url, LOCAL_IMAGE_URI)
    import boto3

    boto_session = boto3.Session(region_name=region)
    if not boto_session.region_name:
        raise NotebookError("no AWS region: pass connect(region=...), set AWS_DEFAULT_REGION or run `aws configure`")
    bucket = os.environ.get(BUCKET_ENV)
    session = sagemaker.Session(boto_session=boto_session, default_bucket=bucket)
    role = os.environ.get(ROLE_ENV)
    if not role:
        try:
            role = sagemaker.get_execution_role(sagemaker_session=session)
        except Exception as exc:  # noqa: BLE001 - the SDK raises ValueError or botocore errors outside SageMaker
            raise NotebookError(f"no IAM role for SageMaker: outside a SageMaker notebook or Studio space set "
                                f"${ROLE_ENV} to the ARN of a role SageMaker can assume ({exc})") from None
    return Aws(False, session, role, session.default_bucket(), boto_session.region_name, None,
               os.environ.get(IMAGE_URI_ENV))


# ---------------------------------------------------------------------------------------------- commands


def _resolve(program: str) -> str:
    """A console script of the notebook kernel's own environment when there is one (a kernel's PATH may not hold
    its virtual environment's ``bin``), else the name as given."""
    beside = Path(sys.executable).parent / program
    return str(beside) if os.sep not in program and beside.is_file() else program


def run(*argv: Any, cwd: str | os.PathLike | None = None, echo: Callable[[str], bool] | None = None,
        log: str | os.PathLike | None = None, tail: int = 40) -> list[str]:
    """Run a command to its end, printing its output (stdout and stderr, merged) as it comes; return the lines.

    A failing command raises ``CommandError`` with its last ``tail`` lines, so the notebook cell fails (a shell
    escape, ``!cmd``, would carry on). ``echo`` chooses the lines printed (all by default); ``log`` receives them all.
    Arguments are turned into strings (numbers, paths).
    """
    args = [str(a) for a in argv]
    if not args:
        raise NotebookError("run() needs a command")
    args[0] = _resolve(args[0])
    last: deque[str] = deque(maxlen=tail)
    lines: list[str] = []
    try:
        process = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   bufsize=1, errors="replace")
    except FileNotFoundError:
        raise NotebookError(f"no command {argv[0]!r}: is the project installed in this kernel's environment "
                            f"({sys.executable})? pip install -e '.[test]'") from None
    log_file = open(log, "w", encoding="utf-8") if log is not None else None  # noqa: SIM115 - closed below
    try:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip("\n")
            lines.append(line)
            last.append(line)
            if log_file is not None:
                log_file.write(raw)
            if echo is None or echo(line):
                print(line, flush=True)
        process.wait()
    except BaseException:  # an interrupted cell (KeyboardInterrupt) must not leave the command running
        _end(process)
        raise
    finally:
        process.stdout.close()
        if log_file is not None:
            log_file.close()
    if process.returncode != 0:
        raise CommandError(args, process.returncode, list(last))
    return lines


def _end(process: subprocess.Popen, timeout_s: float = 10.0) -> int:
    """SIGTERM, then SIGKILL after ``timeout_s``; returns the exit status."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (for a server the notebook starts)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class Background:
    """A command running beside the notebook (a server); ``stop()`` ends it. Its output goes to ``log``."""

    def __init__(self, *argv: Any, log: str | os.PathLike, ready_url: str | None = None, timeout_s: float = 60.0,
                 cwd: str | os.PathLike | None = None):
        args = [str(a) for a in argv]
        args[0] = _resolve(args[0])
        self.argv = args
        self.log = Path(log)
        self._log_file = open(self.log, "w", encoding="utf-8")  # noqa: SIM115 - closed by stop()
        self.process = subprocess.Popen(args, cwd=cwd, stdout=self._log_file, stderr=subprocess.STDOUT, text=True)
        if ready_url is not None:
            self.wait_until_ready(ready_url, timeout_s)

    def wait_until_ready(self, url: str, timeout_s: float) -> None:
        """Poll ``url`` until it answers 200; the command ending first, or the time running out, is an error."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                self._close_log()
                raise NotebookError(f"{' '.join(self.argv)} ended with status {self.process.returncode} before "
                                    f"{url} answered:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise NotebookError(f"{url} did not answer within {timeout_s:g} s; the command's output:\n"
                                    f"{self.log.read_text()[-3000:]}")
            time.sleep(0.25)

    def stop(self, timeout_s: float = 10.0) -> int:
        """End the command (SIGTERM, then SIGKILL after ``timeout_s``); returns its exit status."""
        code = _end(self.process, timeout_s)
        self._close_log()
        return code

    def _close_log(self) -> None:
        if not self._log_file.closed:
            self._log_file.close()


# ---------------------------------------------------------------------------------------------- jobs and models


def metrics_from_log(lines: Iterable[str], definitions: Sequence[Mapping[str, str]]) -> Any:
    """The metrics a training job's log lines hold, read the way SageMaker reads them: each definition's ``Regex``
    searched in every line, its first group the value.

    Pass the definitions the job was submitted with (``estimator.metric_definitions``): this never keeps a copy of
    the regexes. Returns a pandas DataFrame like ``TrainingJobAnalytics.dataframe()`` (``timestamp``,
    ``metric_name``, ``value``) where ``timestamp`` is the line's position in the log (a log file has no clock).
    """
    import pandas as pd

    compiled = [(d["Name"], re.compile(d["Regex"])) for d in definitions]
    rows = []
    for position, line in enumerate(lines):
        for name, regex in compiled:
            found = regex.search(line)
            if found is None:
                continue
            try:
                rows.append((float(position), name, float(found.group(1))))
            except (IndexError, ValueError):
                continue  # a regex without a group, or a match that is no number: SageMaker records nothing either
    return pd.DataFrame(rows, columns=["timestamp", "metric_name", "value"])


def split_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of ``s3://bucket/key``."""
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise NotebookError(f"not an s3://bucket/key URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def fetch_archive(aws: Aws, uri: str, folder: str | os.PathLike) -> Path:
    """Download a ``.tar.gz`` from S3 (a job's ``model.tar.gz`` or ``output.tar.gz``) and unpack it into ``folder``;
    returns the folder."""
    bucket, key = split_s3_uri(uri)
    try:
        body = aws.s3().get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:  # noqa: BLE001 - botocore's NoSuchKey and access errors alike
        raise NotebookError(f"cannot read {uri}: {exc} (has the job finished and written it?)") from None
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        archive.extractall(folder, filter="data")
    return folder


# ---------------------------------------------------------------------------------------------- training jobs


@dataclass
class Jobs:
    """Training jobs a notebook submitted (``estimator.fit(wait=False)``), followed to their end by ``follow``.

    ``local`` is the local run (a ``sagemaker_rl.local.LocalJobResult``: every host's folder and log) in local
    mode, None on AWS.
    """

    aws: Aws
    names: list[str]
    local: Any = None

    def describe(self, job: int = 0) -> dict[str, Any]:
        """DescribeTrainingJob of the job (the first is the primary of a two-job run)."""
        return self.aws.session.sagemaker_client.describe_training_job(TrainingJobName=self.names[job])

    def hyperparameters(self, job: int = 0) -> dict[str, Any]:
        """The job's hyperparameters as it received them, decoded (the SDK v2 JSON-encodes every value)."""
        return {key: json.loads(value) for key, value in self.describe(job)["HyperParameters"].items()}

    def model_data(self, job: int = 0) -> str:
        """The S3 URI of the job's model.tar.gz (``estimator.model_data``)."""
        return self.describe(job)["ModelArtifacts"]["S3ModelArtifacts"]

    def output_data(self, job: int = 0) -> str:
        """The S3 URI of the job's output.tar.gz (what the job wrote to ``/opt/ml/output/data``)."""
        return f"{self.describe(job)['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{self.names[job]}/output/" \
               f"output.tar.gz"

    def log_lines(self, job: int = 0) -> list[str]:
        """Every host's log lines of the job: from CloudWatch Logs on AWS (the streams ``<job>/algo-N-...`` of
        ``/aws/sagemaker/TrainingJobs``, in time order), from the local run's host logs (host after host) in local
        mode, where the stand-in keeps no logs."""
        if self.local is not None:
            return [line for host in self.local.jobs[job].hosts for line in host.log_text().splitlines()]
        logs = self.aws.session.boto_session.client("logs")
        pages = logs.get_paginator("filter_log_events").paginate(logGroupName=LOG_GROUP,
                                                                 logStreamNamePrefix=f"{self.names[job]}/")
        return [line for page in pages for event in page["events"] for line in event["message"].splitlines()]

    def metrics(self, definitions: Sequence[Mapping[str, str]], job: int = 0) -> Any:
        """The job's metrics as SageMaker records them, with the definitions it was submitted with
        (``estimator.metric_definitions``): ``TrainingJobAnalytics`` on AWS (one averaged value a minute, from
        CloudWatch, which may lag the job's end by a minute or two); its hosts' logs through the same regexes in
        local mode. A pandas DataFrame: ``timestamp``, ``metric_name``, ``value``."""
        if self.local is not None:
            return metrics_from_log(self.log_lines(job), definitions)
        from sagemaker.analytics import TrainingJobAnalytics

        names = [d["Name"] for d in definitions]
        return TrainingJobAnalytics(self.names[job], metric_names=names, sagemaker_session=self.aws.session).dataframe()


def follow(aws: Aws, estimators: Sequence[Any], *, stream: Callable[[str], None] | None = print,
           cpus_per_host: int = 2) -> Jobs:
    """Follow submitted training jobs to their end; a failed job raises ``NotebookError`` with SageMaker's reason.

    On AWS the first job's CloudWatch log is streamed until it ends, then the others are waited for. In local mode
    the stand-in has only recorded the jobs: ``run_submitted`` runs them here first.
    """
    names = [estimator.latest_training_job.name for estimator in estimators]
    if aws.local:
        return Jobs(aws, names, run_submitted(aws, names, stream=stream, cpus_per_host=cpus_per_host))
    session = aws.session
    for i, name in enumerate(names):
        try:
            if i == 0:
                session.logs_for_job(name, wait=True, log_type="All")
            else:
                session.wait_for_job(name)
        except Exception as exc:  # noqa: BLE001 - the SDK's UnexpectedStatusException, with the failure reason
            raise NotebookError(f"training job {name} did not complete: {exc}") from None
    return Jobs(aws, names)


def run_submitted(aws: Aws, names: Sequence[str], *, stream: Callable[[str], None] | None = print,
                  cpus_per_host: int = 2, work_dir: str | os.PathLike | None = None) -> Any:
    """Run training jobs the local stand-in recorded, on this machine, with the docker-free local runner; then put
    each job's ``model.tar.gz`` and ``output.tar.gz`` where SageMaker would (``ModelArtifacts`` and the output path).

    What runs is what was submitted: each job's hosts (instance count, or instance groups and the head group), its
    hyperparameters as the job received them, and its ``MaxRuntimeInSeconds`` as the time limit. A two-job run
    (``rl_cluster_type`` primary + secondary) runs as one local run of both jobs, meeting through the stand-in's S3.
    Instance types do not matter here: every simulated host offers ``cpus_per_host`` CPUs and no GPU.

    The sources are this checkout's (the launcher packs the same folders): running the uploaded sourcedir.tar.gz
    would make every simulated host compile the engine's numba kernels from scratch, minutes on a small machine.
    Returns the ``LocalJobResult``; a failed job raises ``sagemaker_rl.local.LocalJobError``.
    """
    from .local import LocalS3, run_local_job

    jobs = Jobs(aws, list(names))
    described = [jobs.describe(i) for i in range(len(names))]
    hyperparameters = {key: value for key, value in jobs.hyperparameters(0).items() if not key.startswith("sagemaker_")}
    resources = described[0]["ResourceConfig"]
    cluster_type = hyperparameters.pop("rl_cluster_type", "auto")
    if cluster_type == "primary":
        if len(described) != 2 or not names[0].endswith("-primary") or names[1] != names[0][:-8] + "-secondary":
            raise NotebookError(f"a two-job run is a NAME-primary and a NAME-secondary job, got {list(names)}")
        hyperparameters.pop("rl_num_instances_secondary", None)  # the runner sets it from the secondary's hosts
        shape = {"mode": "heterogeneous", "instances": resources["InstanceCount"],
                 "secondary_instances": described[1]["ResourceConfig"]["InstanceCount"],
                 "job_name": names[0][:-8]}
    elif len(described) != 1:
        raise NotebookError(f"run one job at a time, or the two jobs of a primary/secondary run; got {list(names)}")
    elif resources.get("InstanceGroups"):
        shape = {"mode": "heterogeneous", "job_name": names[0],
                 "instance_groups": {g["InstanceGroupName"]: g["InstanceCount"] for g in resources["InstanceGroups"]},
                 "head_group": hyperparameters.get("rl_head_instance_group")}
    else:
        count = resources["InstanceCount"]
        shape = {"mode": "single" if count == 1 else "homogeneous", "instances": count, "job_name": names[0]}
    # The hosts reach S3 (the rendezvous records) on the stand-in, in the job's own bucket, with the job's environment
    # (the launcher's rendezvous secret).
    s3 = LocalS3(bucket=hyperparameters.get("s3_bucket", aws.bucket))
    s3.endpoint = aws.endpoint_url or ""
    timeout_s = described[0].get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
    result = run_local_job(**shape, hyperparameters=hyperparameters, s3=s3, cpus_per_host=cpus_per_host,
                           stream=stream, timeout_s=timeout_s, environment=dict(described[0].get("Environment") or {}),
                           **({"work_dir": Path(work_dir) / shape["job_name"]} if work_dir is not None else {}))
    s3_client = aws.s3()
    for i, job in enumerate(result.jobs):
        for archive, uri in ((job.model_tar, jobs.model_data(i)), (job.output_tar, jobs.output_data(i))):
            bucket, key = split_s3_uri(uri)
            s3_client.upload_file(str(archive), bucket, key)
    return result


class LocalEndpoint:
    """An endpoint's model served by its own inference script in this process: the stand-in for a real-time
    endpoint, which the local SageMaker API records but does not run.

    It reads what the endpoint's container would get, the model archive the SDK uploaded (``model.tar.gz`` with
    the inference code under ``code/``), loads ``code/<SAGEMAKER_PROGRAM>`` and calls its handler functions as the
    inference toolkit does: ``model_fn`` once, then ``input_fn``, ``predict_fn`` and ``output_fn`` per request.
    Packages the script imports come from this environment when it already has them.
    """

    def __init__(self, model_dir: str | os.PathLike, program: str = "inference.py"):
        self.model_dir = Path(model_dir)
        script = self.model_dir / "code" / program
        if not script.is_file():
            raise NotebookError(f"no inference script {script} in the endpoint's model archive")
        spec = importlib.util.spec_from_file_location(f"endpoint_{abs(hash(str(script)))}", script)
        assert spec is not None and spec.loader is not None
        self.handlers = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.handlers)
        missing = [f for f in ("model_fn", "input_fn", "predict_fn", "output_fn") if not hasattr(self.handlers, f)]
        if missing:
            raise NotebookError(f"{script} lacks the handler function(s) {', '.join(missing)}")
        self.model = self.handlers.model_fn(str(self.model_dir))

    @classmethod
    def for_model(cls, aws: Aws, model_name: str, folder: str | os.PathLike) -> LocalEndpoint:
        """The stand-in for SageMaker model ``model_name`` (as created by ``deploy``): its archive unpacked into
        ``folder``."""
        container = aws.session.sagemaker_client.describe_model(ModelName=model_name)["PrimaryContainer"]
        program = container.get("Environment", {}).get("SAGEMAKER_PROGRAM", "inference.py")
        return cls(fetch_archive(aws, container["ModelDataUrl"], folder), program)

    def predict(self, data: Any) -> Any:
        """JSON in, JSON out, as the SDK's predictor with JSON (de)serializers sends and reads it."""
        request = self.handlers.input_fn(json.dumps(data), "application/json")
        body, _ = self.handlers.output_fn(self.handlers.predict_fn(request, self.model), "application/json")
        return json.loads(body)


def delete_endpoint(aws: Aws, name: str) -> None:
    """Delete the endpoint, endpoint config and model ``deploy`` created under one ``name``: an endpoint is billed
    by the hour until it is deleted. Parts already gone are skipped."""
    client = aws.session.sagemaker_client
    for call, key in ((client.delete_endpoint, "EndpointName"), (client.delete_endpoint_config, "EndpointConfigName"),
                      (client.delete_model, "ModelName")):
        try:
            call(**{key: name})
        except client.exceptions.ClientError as exc:
            if "Could not find" not in str(exc) and "does not exist" not in str(exc):
                raise


# ---------------------------------------------------------------------------------------------- display


def inline_html_page(path: str | os.PathLike, height: int = 520) -> Any:
    """A self-contained HTML page shown inside the notebook (an iframe holding the page itself, so it works where
    the notebook server cannot serve files, and offline)."""
    from IPython.display import HTML

    page = Path(path).read_text(encoding="utf-8")
    return HTML(f'<div><iframe srcdoc="{html.escape(page, quote=True)}" style="width:100%;height:{int(height)}px;'
                f'border:0"></iframe></div>')
