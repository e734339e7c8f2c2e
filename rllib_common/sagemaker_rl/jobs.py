"""Training jobs a notebook submitted: followed to their end, their metrics and artifacts read back, and in local
mode run on this machine by the docker-free local runner (the stand-in API only records them).

The jobs are what the launcher submitted (``estimator.fit(wait=False)``); a two-job run is read back into the shared
mode planner's words (``sagemaker_rl.modes``: ``instance_count``, ``secondary_instance_count``, ``instance_groups``,
``head_instance_group``) and run as one local run.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .commands import NotebookError

if TYPE_CHECKING:
    from .notebook import Aws

#: Where SageMaker sends training jobs' logs.
LOG_GROUP = "/aws/sagemaker/TrainingJobs"


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
    from .local import run_local_job
    from .standins import LocalS3

    jobs = Jobs(aws, list(names))
    described = [jobs.describe(i) for i in range(len(names))]
    hyperparameters = {key: value for key, value in jobs.hyperparameters(0).items() if not key.startswith("sagemaker_")}
    resources = described[0]["ResourceConfig"]
    cluster_type = hyperparameters.pop("rl_cluster_type", "auto")
    if cluster_type == "primary":
        if len(described) != 2 or not names[0].endswith("-primary") or names[1] != names[0][:-8] + "-secondary":
            raise NotebookError(f"a two-job run is a NAME-primary and a NAME-secondary job, got {list(names)}")
        hyperparameters.pop("rl_num_instances_secondary", None)  # the runner sets it from the secondary's hosts
        shape = {"mode": "heterogeneous", "instance_count": resources["InstanceCount"],
                 "secondary_instance_count": described[1]["ResourceConfig"]["InstanceCount"],
                 "job_name": names[0][:-8]}
    elif len(described) != 1:
        raise NotebookError(f"run one job at a time, or the two jobs of a primary/secondary run; got {list(names)}")
    elif resources.get("InstanceGroups"):
        shape = {"mode": "heterogeneous", "job_name": names[0],
                 "instance_groups": {g["InstanceGroupName"]: g["InstanceCount"] for g in resources["InstanceGroups"]},
                 "head_instance_group": hyperparameters.get("rl_head_instance_group")}
    else:
        count = resources["InstanceCount"]
        shape = {"mode": "single" if count == 1 else "homogeneous", "instance_count": count, "job_name": names[0]}
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
