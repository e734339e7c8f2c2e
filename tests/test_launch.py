"""The SageMaker launchers: what each mode submits, read back from a local SageMaker API and S3 (moto in server mode,
real HTTP on 127.0.0.1), the metric regexes run over real metric lines, and bad settings refused before anything is
submitted.

moto keeps every CreateTrainingJob field except the metric definitions (it answers with fixed ones), so those are
read from the request the SDK sent over the wire (a botocore ``before-send`` hook on the session's client).
"""

from __future__ import annotations

import ast
import inspect
import io
import json
import math
import re
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from battlesnake_gym.bots import BOTS
from battlesnake_rllib.run import REPORTED, RunOutputs, metric_lines
from sagemaker_rl import cli
from sagemaker_rl.launch import (
    BUCKET_ENV,
    DEFAULT_METRIC_NAMES,
    IMAGE_URI_ENV,
    PROJECT_ROOT_ENV,
    ROLE_ENV,
    GroupSpec,
    LaunchError,
    LaunchSettings,
    LaunchWarning,
    build_estimators,
    find_sources,
    launch,
    metric_definitions,
    parse_hyperparameter,
    plan_launch,
)

BUCKET = "battlesnake-launch-test"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/battlesnake-rl:ray2.60"
ROLE = "arn:aws:iam::123456789012:role/SageMakerTraining"
TRAINING = {"algorithm": "APPO", "num_games": 256, "lr": 0.0005, "minutes": 30, "opponents": ["safe", "greedy"],
            "rl.training.lr": 0.0005}
PLATFORM_KEYS = {"rl_cluster_type", "rl_run_id", "s3_bucket", "s3_prefix", "rl_rendezvous_timeout_s"}
BASE = {"image_uri": IMAGE, "role": ROLE, "bucket": BUCKET, "prefix": "runs/test", "hyperparameters": TRAINING}


# ---------------------------------------------------------------------------------------------- local AWS


@dataclass
class LocalAws:
    url: str
    session: object  # sagemaker.Session on the moto server
    sent: list[dict]  # CreateTrainingJob request bodies, as sent over HTTP

    def job(self, name: str) -> dict:
        return self.session.sagemaker_client.describe_training_job(TrainingJobName=name)

    def job_names(self) -> list[str]:
        summaries = self.session.sagemaker_client.list_training_jobs()["TrainingJobSummaries"]
        return [summary["TrainingJobName"] for summary in summaries]

    def keys(self) -> list[str]:
        listing = self.session.boto_session.client("s3").list_objects_v2(Bucket=BUCKET)
        return [o["Key"] for o in listing.get("Contents", [])]

    def source_files(self, job: dict) -> dict[str, int]:
        """Files of the job's uploaded sourcedir.tar.gz: path -> size."""
        uri = json.loads(job["HyperParameters"]["sagemaker_submit_directory"])
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        body = self.session.boto_session.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(body)) as tar:
            return {m.name.removeprefix("./"): m.size for m in tar.getmembers() if m.isfile()}


@pytest.fixture(scope="module")
def local_aws(standin_aws: tuple[str, str]) -> Iterator[LocalAws]:
    """The stand-in AWS (moto on 127.0.0.1) and one SageMaker session on it (a session is slow to build: the SDK
    validates its config file, here the telemetry opt-out, on every lookup)."""
    import boto3
    import sagemaker

    url, region = standin_aws
    boto_session = boto3.Session(region_name=region)
    client = boto_session.client("sagemaker", endpoint_url=url)
    sent: list[dict] = []
    client.meta.events.register("before-send.sagemaker.CreateTrainingJob",
                                lambda request, **_: sent.append(json.loads(request.body)))
    yield LocalAws(url, sagemaker.Session(boto_session=boto_session, sagemaker_client=client), sent)


@pytest.fixture
def aws(local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> LocalAws:
    """The local AWS emptied (no jobs, no buckets), with one bucket, and no launcher settings in the environment."""
    urllib.request.urlopen(urllib.request.Request(f"{local_aws.url}/moto-api/reset", method="POST")).close()
    local_aws.sent.clear()
    for name in (IMAGE_URI_ENV, ROLE_ENV, BUCKET_ENV, PROJECT_ROOT_ENV):
        monkeypatch.delenv(name, raising=False)
    local_aws.session.boto_session.client("s3").create_bucket(Bucket=BUCKET)
    return local_aws


def decoded(job: dict) -> dict:
    """The job's hyperparameters as the training job reads them (SDK v2 JSON-encodes every value)."""
    return {key: json.loads(value) for key, value in job["HyperParameters"].items()}


def assert_common_job(aws: LocalAws, name: str, run_id: str) -> dict:
    """What every job of every mode carries: image, role, storage, training settings, metrics and sources."""
    job = aws.job(name)
    assert job["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert job["RoleArn"] == ROLE
    assert job["OutputDataConfig"]["S3OutputPath"] == f"s3://{BUCKET}/runs/test/output"
    assert job["CheckpointConfig"]["S3Uri"] == f"s3://{BUCKET}/runs/test/checkpoints/{name}"
    hyper = decoded(job)
    assert {k: hyper[k] for k in TRAINING} == TRAINING
    assert hyper["rl_run_id"] == run_id and hyper["s3_bucket"] == BUCKET
    assert hyper["s3_prefix"] == "runs/test/rendezvous"
    assert hyper["rl_rendezvous_timeout_s"] == 1200
    assert hyper["sagemaker_program"] == "train-mabs.py" and hyper["sagemaker_job_name"] == name
    request = next(r for r in aws.sent if r["TrainingJobName"] == name)
    assert request["AlgorithmSpecification"]["MetricDefinitions"] == metric_definitions()
    files = aws.source_files(job)
    for path in ("train-mabs.py", "battlesnake_rllib/__init__.py", "battlesnake_rllib/config.py",
                 "battlesnake_gym/__init__.py", "battlesnake_gym/engine/__init__.py", "sagemaker_rl/__init__.py",
                 "sagemaker_rl/contract.py", "sagemaker_rl/launch.py"):
        assert path in files, f"{path} missing from the uploaded sources: {sorted(files)}"
    caches = [p for p in files if "__pycache__" in p or p.endswith((".pyc", ".nbi", ".nbc"))]
    assert caches == [], "bytecode and numba caches are not shipped"
    assert sum(files.values()) < 5_000_000
    return hyper


# ---------------------------------------------------------------------------------------------- the modes


@pytest.mark.slow
def test_a_single_job_runs_one_instance_from_the_estimators_the_api_builds(aws: LocalAws) -> None:
    from sagemaker.rl import RLEstimator

    estimators = build_estimators("single", sagemaker_session=aws.session, run_id="r1", **BASE)
    assert len(estimators) == 1 and isinstance(estimators[0], RLEstimator)
    assert aws.job_names() == [], "building estimators submits nothing"
    estimators[0].fit(wait=False)  # the README's form: fit() submits under the planned job name
    name = estimators[0].latest_training_job.name
    assert name == "battlesnake-rl-r1"
    job = aws.job(name)
    assert job["ResourceConfig"]["InstanceType"] == "ml.c5.4xlarge"
    assert job["ResourceConfig"]["InstanceCount"] == 1 and "InstanceGroups" not in job["ResourceConfig"]
    assert job["EnableManagedSpotTraining"] is False
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}
    hyper = assert_common_job(aws, name, "r1")
    assert hyper["rl_cluster_type"] == "auto"
    assert not {"rl_head_instance_group", "rl_num_instances_secondary"} & set(hyper)


@pytest.mark.slow
def test_a_homogeneous_spot_job_runs_n_hosts_and_checkpoints_to_s3(aws: LocalAws) -> None:
    names = launch("homogeneous", sagemaker_session=aws.session, instance_type="ml.c5.9xlarge", instance_count=3,
                   use_spot_instances=True, max_run=3600, max_wait=7200, run_id="r2", **BASE)
    assert names == ["battlesnake-rl-r2"] == aws.job_names()
    job = aws.job(names[0])
    assert (job["ResourceConfig"]["InstanceType"], job["ResourceConfig"]["InstanceCount"]) == ("ml.c5.9xlarge", 3)
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert assert_common_job(aws, names[0], "r2")["rl_cluster_type"] == "auto"


@pytest.mark.slow
def test_a_heterogeneous_job_uses_native_instance_groups_with_the_ray_head_in_the_gpu_group(aws: LocalAws) -> None:
    groups = ["rollout=ml.c5.4xlarge:2", GroupSpec("learner", "ml.g5.xlarge", 1)]
    names = launch("heterogeneous", sagemaker_session=aws.session, instance_groups=groups, run_id="r3", **BASE)
    assert names == ["battlesnake-rl-r3"]
    job = aws.job(names[0])
    assert job["ResourceConfig"]["InstanceGroups"] == [
        {"InstanceGroupName": "rollout", "InstanceType": "ml.c5.4xlarge", "InstanceCount": 2},
        {"InstanceGroupName": "learner", "InstanceType": "ml.g5.xlarge", "InstanceCount": 1}]
    assert "InstanceType" not in job["ResourceConfig"]
    hyper = assert_common_job(aws, names[0], "r3")
    assert (hyper["rl_cluster_type"], hyper["rl_head_instance_group"]) == ("auto", "learner")


@pytest.mark.slow
def test_a_two_job_heterogeneous_run_shares_its_run_id_bucket_and_vpc(aws: LocalAws) -> None:
    names = launch("heterogeneous", sagemaker_session=aws.session, instance_type="ml.g5.2xlarge",
                   secondary_instance_type="ml.c5.4xlarge", secondary_instance_count=2, subnets=["subnet-1a"],
                   security_group_ids=["sg-0123"], **BASE)
    primary, secondary = (aws.job(name) for name in names)
    assert names[0].endswith("-primary") and names[1].endswith("-secondary")
    run_id = decoded(primary)["rl_run_id"]
    assert names[0] == f"battlesnake-rl-{run_id}-primary"
    assert (primary["ResourceConfig"]["InstanceType"], primary["ResourceConfig"]["InstanceCount"]) == \
        ("ml.g5.2xlarge", 1)
    assert (secondary["ResourceConfig"]["InstanceType"], secondary["ResourceConfig"]["InstanceCount"]) == \
        ("ml.c5.4xlarge", 2)
    hypers = [assert_common_job(aws, name, run_id) for name in names]
    assert [h["rl_cluster_type"] for h in hypers] == ["primary", "secondary"]
    assert [h.get("rl_num_instances_secondary") for h in hypers] == [2, None]  # the primary waits for 2 hosts
    vpc = {"Subnets": ["subnet-1a"], "SecurityGroupIds": ["sg-0123"]}
    assert [r["VpcConfig"] for r in aws.sent] == [vpc, vpc]
    # one fresh rendezvous secret for both jobs, in their environment (the toolkit prints hyperparameters, not this)
    secrets = [r["Environment"]["SM_RL_RENDEZVOUS_SECRET"] for r in aws.sent]
    assert secrets[0] == secrets[1] and re.fullmatch("[0-9a-f]{64}", secrets[0])
    assert all(secrets[0] not in json.dumps(h) for h in hypers)
    again = build_estimators("heterogeneous", sagemaker_session=aws.session, instance_type="ml.g5.2xlarge",
                             secondary_instance_type="ml.c5.4xlarge", subnets=["subnet-1a"],
                             security_group_ids=["sg-0123"], **BASE)
    assert again[0].environment["SM_RL_RENDEZVOUS_SECRET"] != secrets[0]  # per run


@pytest.mark.slow
def test_the_command_line_submits_a_job_with_its_hyperparameters(aws: LocalAws,
                                                                  capsys: pytest.CaptureFixture) -> None:
    code = cli.main(["launch", "--mode", "homogeneous", "--instance-count", "2", "--image-uri", IMAGE, "--role", ROLE,
                     "--bucket", BUCKET, "--prefix", "runs/test", "--run-id", "cli1", "-H", "algorithm=APPO",
                     "-H", "num_games=256", "-H", "lr=0.0005", "-H", "minutes=30",
                     "--hyperparameter", 'opponents=["safe","greedy"]', "-H", "rl.training.lr=0.0005"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "battlesnake-rl-cli1" in out and f"s3://{BUCKET}/runs/test/checkpoints/battlesnake-rl-cli1" in out
    assert aws.job_names() == ["battlesnake-rl-cli1"]
    assert aws.job("battlesnake-rl-cli1")["ResourceConfig"]["InstanceCount"] == 2
    assert {k: decoded(aws.job("battlesnake-rl-cli1"))[k] for k in TRAINING} == TRAINING


@pytest.mark.slow
def test_a_dry_run_prints_the_jobs_as_json_and_submits_nothing(aws: LocalAws, capsys: pytest.CaptureFixture) -> None:
    code = cli.main(["launch", "--mode", "heterogeneous", "--secondary-instance-type", "ml.c5.4xlarge",
                     "--secondary-instance-count", "3", "--image-uri", IMAGE, "--role", ROLE, "--bucket", BUCKET,
                     "-H", "minutes=5", "--dry-run"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    plan = json.loads(captured.out)
    assert [j["hyperparameters"]["rl_cluster_type"] for j in plan["jobs"]] == ["primary", "secondary"]
    assert [j["instance_count"] for j in plan["jobs"]] == [1, 3]
    assert plan["jobs"][0]["instance_type"] == "ml.g5.xlarge" and plan["jobs"][0]["image_uri"] == IMAGE
    assert "subnets" in captured.err and plan["warnings"], "a two-job run without a VPC is warned about"
    assert aws.job_names() == [] and aws.keys() == []
    assert plan["jobs"][0]["environment"] == {"SM_RL_RENDEZVOUS_SECRET": "<a fresh secret, not shown>"}


# ---------------------------------------------------------------------------------------------- bad input

BAD = {
    "unknown mode": ({"mode": "cluster"}, "unknown mode 'cluster'"),
    "no image": ({"image_uri": None}, "missing image_uri"),
    "no role": ({"role": None}, "missing role"),
    "no hosts": ({"mode": "homogeneous", "instance_count": 0}, "instance_count must be a whole number >= 1"),
    "single on two hosts": ({"instance_count": 2}, "mode 'single' runs on one instance"),
    "spot without max_wait": ({"use_spot_instances": True}, "managed spot needs max_wait"),
    "spot waiting less than it runs": ({"use_spot_instances": True, "max_run": 7200, "max_wait": 3600},
                                       "max_wait >= max_run"),
    "budget beyond max_run": ({"max_run": 1200}, "minutes=30 is at least max_run=1200"),
    "platform key as hyperparameter": ({"hyperparameters": {"rl_cluster_type": "primary"}}, "set by the launcher"),
    "heterogeneous without a shape": ({"mode": "heterogeneous"}, "heterogeneous needs either instance_groups"),
    "one instance group": ({"mode": "heterogeneous", "instance_groups": ["a=ml.g5.xlarge:1"]}, "2 to 5 instance"),
    "head group not among the groups": ({"mode": "heterogeneous", "head_instance_group": "gpu",
                                         "instance_groups": ["a=ml.g5.xlarge", "b=ml.c5.xlarge:2"]}, "not one of"),
    "not an instance type": ({"instance_type": "c5.4xlarge"}, "not a SageMaker instance type"),
    "subnets without security groups": ({"subnets": ["subnet-1"]}, "both subnets and security_group_ids"),
    "unknown setting": ({"instance_typ": "ml.c5.xlarge"}, "unknown launch setting"),
    "secondary count outside a two-job run": ({"secondary_instance_count": 2}, "only apply to mode 'heterogeneous'"),
    "instance group without a type": ({"mode": "heterogeneous", "instance_groups": ["learner"]}, "NAME=TYPE[:COUNT]"),
    "bucket given as a URI": ({"bucket": "s3://my-bucket"}, "is not an S3 bucket name"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_settings_are_refused_before_anything_is_submitted(aws: LocalAws, case: str) -> None:
    changes, message = BAD[case]
    settings = {**BASE, **changes}
    mode = settings.pop("mode", "single")
    with pytest.raises(LaunchError, match=re.escape(message)):
        launch(mode, sagemaker_session=aws.session, **settings)
    assert aws.job_names() == [] and aws.keys() == [] and aws.sent == []


def test_a_hyperparameter_without_an_equals_sign_is_refused_by_the_command_line(
        capsys: pytest.CaptureFixture) -> None:
    code = cli.main(["launch", "--mode", "single", "--image-uri", IMAGE, "--role", ROLE, "--bucket", BUCKET,
                     "--hyperparameter", "lr", "--dry-run"])
    assert code == 2
    assert "hyperparameter 'lr': write it as KEY=VALUE" in capsys.readouterr().err


def test_an_unknown_mode_is_refused_by_the_command_line(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main(["launch", "--mode", "cluster"])
    assert stop.value.code == 2 and "invalid choice: 'cluster'" in capsys.readouterr().err


def test_a_missing_image_names_the_argument_and_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(IMAGE_URI_ENV, raising=False)
    with pytest.raises(LaunchError, match=f"missing image_uri .*\\${IMAGE_URI_ENV}"):
        plan_launch(LaunchSettings("single", role=ROLE, bucket=BUCKET))
    monkeypatch.setenv(IMAGE_URI_ENV, IMAGE)
    assert plan_launch(LaunchSettings("single", role=ROLE, bucket=BUCKET)).image_uri == IMAGE


def test_the_sources_are_found_in_a_project_checkout_and_missing_ones_are_named(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    assert find_sources(repo) == find_sources()  # the installed packages live in this checkout
    assert find_sources(repo).dependencies == (repo / "battlesnake_gym", repo / "battlesnake_policy",
                                               repo / "rllib_common" / "sagemaker_rl")
    with pytest.raises(LaunchError, match=r"missing .*train-mabs\.py \(the entry point\).*--project-root"):
        find_sources(tmp_path)


def test_the_launcher_imports_neither_the_game_nor_the_training_package() -> None:
    tree = ast.parse(Path(inspect.getsourcefile(plan_launch)).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert not imported & {"battlesnake_gym", "battlesnake_rllib", "battlesnake_rl", "ray", "torch"}


def test_command_line_values_are_json_when_they_parse_and_strings_otherwise() -> None:
    assert parse_hyperparameter("lr=1e-4") == ("lr", 1e-4)
    assert parse_hyperparameter("algorithm=PPO") == ("algorithm", "PPO")
    assert parse_hyperparameter("eval_opponents=safe,greedy") == ("eval_opponents", "safe,greedy")
    assert parse_hyperparameter("conv_filters=[8, 16]") == ("conv_filters", [8, 16])
    assert parse_hyperparameter("rl.training.lr=0.001") == ("rl.training.lr", 0.001)
    with pytest.raises(LaunchError, match="KEY=VALUE"):
        parse_hyperparameter("=3")


def test_a_two_job_plan_warns_without_a_shared_vpc_and_not_with_one() -> None:
    two_jobs = {"mode": "heterogeneous", "image_uri": IMAGE, "role": ROLE, "bucket": BUCKET,
                "secondary_instance_type": "ml.c5.4xlarge"}
    assert "cannot reach the primary" in " ".join(plan_launch(LaunchSettings(**two_jobs)).warnings)
    with_vpc = LaunchSettings(**two_jobs, subnets=["subnet-1"], security_group_ids=["sg-1"])
    assert plan_launch(with_vpc).warnings == ()
    native = LaunchSettings("heterogeneous", image_uri=IMAGE, role=ROLE, bucket=BUCKET,
                            instance_groups=["a=ml.c5.xlarge:2", "b=ml.c5.2xlarge"])
    plan = plan_launch(native)
    assert plan.warnings == () and plan.jobs[0].hyperparameters["rl_head_instance_group"] == "a"


@pytest.mark.slow
def test_building_a_two_job_run_without_a_vpc_warns(aws: LocalAws) -> None:
    with pytest.warns(LaunchWarning, match="secondary hosts cannot reach the primary"):
        estimators = build_estimators("heterogeneous", sagemaker_session=aws.session,
                                      secondary_instance_type="ml.c5.4xlarge", **BASE)
    assert [e.subnets for e in estimators] == [None, None] and aws.job_names() == []


def test_every_planned_job_is_a_valid_cluster_for_the_ray_bootstrap() -> None:
    from sagemaker_rl.cluster import ClusterSettings
    from sagemaker_rl.contract import decode_hyperparameters

    shared = {"image_uri": IMAGE, "role": ROLE, "bucket": BUCKET, "hyperparameters": TRAINING, "run_id": "r9"}
    plans = [plan_launch(LaunchSettings("single", **shared)),
             plan_launch(LaunchSettings("homogeneous", instance_count=3, **shared)),
             plan_launch(LaunchSettings("heterogeneous", instance_groups=["cpu=ml.c5.xlarge:2", "gpu=ml.g5.xlarge"],
                                        **shared)),
             plan_launch(LaunchSettings("heterogeneous", secondary_instance_type="ml.c5.xlarge",
                                        secondary_instance_count=4, **shared))]
    seen = []
    for job in (job for plan in plans for job in plan.jobs):
        sent = {key: json.dumps(value) for key, value in job.hyperparameters.items()}  # as SDK v2 submits them
        settings, training = ClusterSettings.from_hyperparameters(decode_hyperparameters(sent))
        assert training == TRAINING, "the bootstrap hands the training settings on untouched"
        assert (settings.s3_bucket, settings.s3_prefix, settings.run_id) == (BUCKET, "battlesnake-rl/rendezvous", "r9")
        seen.append((settings.cluster_type, settings.head_instance_group, settings.num_instances_secondary))
    assert seen == [("auto", None, 0), ("auto", None, 0), ("auto", "gpu", 0), ("primary", None, 4),
                    ("secondary", None, 0)]


# ---------------------------------------------------------------------------------------------- metrics


def sagemaker_metrics(definitions: list[dict], log: list[str]) -> dict[str, list[float]]:
    """What SageMaker records from a log: per line, each definition's regex; the first group as a float."""
    found: dict[str, list[float]] = {}
    for line in log:
        for definition in definitions:
            match = re.search(definition["Regex"], line)
            if match:
                found.setdefault(definition["Name"], []).append(float(match.group(1)))
    return found


def test_the_metric_definitions_cover_every_line_the_entry_point_prints() -> None:
    assert set(DEFAULT_METRIC_NAMES) == set(REPORTED) | {f"win_rate_vs_{bot}" for bot in BOTS}


def test_the_blog_posts_metric_definitions_read_the_entry_points_reward_lines(tmp_path: Path) -> None:
    from sagemaker.rl import RLEstimator, RLToolkit

    result = {"training_iteration": 4, "env_runners": {"episode_return_mean": -0.25, "episode_return_max": 1.02,
                                                       "episode_len_mean": 31.5,
                                                       "num_env_steps_sampled_lifetime": 4096}}
    metrics = RunOutputs(tmp_path).iteration_metrics(result, started=time.time() - 2, steps_before=2048)
    log = metric_lines(metrics)
    post = sagemaker_metrics(RLEstimator.default_metric_definitions(RLToolkit.RAY), log)
    assert post == {"episode_reward_mean": [-0.25], "episode_reward_max": [1.02]}
    assert sagemaker_metrics(metric_definitions(), log)["episode_reward_max"] == [1.02]  # the launcher's too


def test_the_metric_regexes_read_the_entry_points_lines_and_nothing_else() -> None:
    metrics = {"iteration": 12, "episode_return_mean": -0.25, "episode_len_mean": 87.5,
               "env_steps_per_s": 1234567.0, "num_env_steps_sampled_lifetime": 1048576, "iteration_s": 0.000123,
               **{f"win_rate_vs_{bot}": 0.875 - 0.125 * i for i, bot in enumerate(BOTS)}}
    log = ["progress: [##########          ]  50%   5.0/10 min  iteration 12  return -0.25  wins: safe 88%",
           *metric_lines(metrics), "model (onnx): runs/x/model/policy.onnx",
           *metric_lines({"iteration": 13, "episode_return_mean": math.nan})]
    found = sagemaker_metrics(metric_definitions(), log)
    expected = {name: [float(f"{value:.6g}" if isinstance(value, float) else value)] for name, value in metrics.items()}
    expected["iteration"].append(13.0)  # the nan return of iteration 13 is not a number: nothing is recorded
    assert found == expected
    assert found["env_steps_per_s"] == [1.23457e6]  # printed as 1.23457e+06
