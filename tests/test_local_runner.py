"""The docker-free local runner, end to end: containers' files and command lines as SageMaker makes them, Ray clusters
of several simulated hosts (one job, or a primary and a secondary job meeting through a local S3), and the faults the
platform layer must turn into clear, prompt failures.

The Ray jobs run tests/sagemaker_jobs/ray_probe.py (the platform layer alone); the training jobs run train-mabs.py on
a tiny budget. Each simulated host offers 2 CPUs to Ray, so a 2-host cluster has 3 env runners.
"""

from __future__ import annotations

import json
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from sagemaker_rl import contract as sm
from sagemaker_rl.launch import LaunchSettings, plan_launch
from sagemaker_rl.local import (
    LocalJob,
    LocalJobError,
    LocalS3,
    plan_jobs,
    run_local_job,
    sdk_hyperparameters,
    toolkit_args,
)
from sagemaker_rl.rendezvous import HeadRecord, Rendezvous, S3Store, derive_token

REPO = Path(__file__).resolve().parents[1]
JOBS = REPO / "tests" / "sagemaker_jobs"
PLATFORM = REPO / "rllib_common" / "sagemaker_rl"
PROBE = {"source_dir": JOBS, "entry_point": "ray_probe.py", "dependencies": [PLATFORM]}
ECHO = {"source_dir": JOBS, "entry_point": "echo_contract.py", "dependencies": [PLATFORM]}


def objects(s3: LocalS3) -> dict[str, bytes]:
    """Every object of the local S3's bucket (moto keeps one store per process: other tests' too): key -> body."""
    client = s3.client()
    listing = client.list_objects_v2(Bucket=s3.bucket).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=s3.bucket, Key=o["Key"])["Body"].read() for o in listing}


def metric(log: str, name: str) -> dict[str, int]:
    """A ``name: host=count,host=count`` line of a host's log, as a dict."""
    line = next(line for line in log.splitlines() if line.startswith(f"{name}: "))
    return {host: int(n) for host, n in (item.split("=") for item in line.split(": ", 1)[1].split(","))}


def tar_names(path: Path) -> list[str]:
    with tarfile.open(path) as tar:
        return sorted(tar.getnames())


def wait_for_line(job: LocalJob, host: str, text: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in job.host_log(host):
        assert time.monotonic() < deadline, f"{host} never printed {text!r}:\n{job.host_log(host)[-3000:]}"
        time.sleep(0.5)


# ---------------------------------------------------------------------------------------------------------- no Ray
def test_the_toolkit_command_line_sorts_keys_and_formats_values_as_sagemaker_training_does() -> None:
    assert toolkit_args({"lr": 0.001, "a": True, "name": "ppo", "layers": [64, 64], "env": {"y": 2, "x": 1}}) == [
        "-a", "True", "--env", "x=1,y=2", "--layers", "[64, 64]", "--lr", "0.001", "--name", "ppo"]


def test_hyperparameters_are_written_json_encoded_and_read_back_as_the_same_values(tmp_path: Path) -> None:
    user = {"iterations": 2, "lr": 0.0005, "algorithm": "PPO", "eval": False, "filters": [16, 32], "run_id": "0012"}
    written = sdk_hyperparameters(user, entry_point="train-mabs.py", code_dir=tmp_path, job="j")
    assert written["iterations"] == "2" and written["algorithm"] == '"PPO"' and written["run_id"] == '"0012"'
    assert written["sagemaker_program"] == '"train-mabs.py"'
    assert {k: v for k, v in sm.decode_hyperparameters(written).items() if not k.startswith("sagemaker_")} == user


def test_bad_local_job_shapes_are_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="mode single runs exactly one host"):
        plan_jobs("single", 2, 0, None, None, {}, "j", None)
    with pytest.raises(ValueError, match="homogeneous needs --instances >= 2"):
        plan_jobs("homogeneous", 1, 0, None, None, {}, "j", None)
    with pytest.raises(ValueError, match="either --secondary-instances M .* or --instance-groups"):
        plan_jobs("heterogeneous", 1, 0, None, None, {}, "j", None)
    with pytest.raises(ValueError, match="--head-group must name one of the instance groups"):
        plan_jobs("heterogeneous", 1, 0, {"cpu": 1, "gpu": 1}, "learner", {}, "j", None)
    with pytest.raises(ValueError, match="entry point 'nope.py' not found"):
        LocalJob(source_dir=JOBS, entry_point="nope.py", dependencies=[PLATFORM])


def test_a_two_job_run_shares_one_fresh_run_id_and_bucket_and_the_users_values_win() -> None:
    s3 = LocalS3()  # not started: only its bucket name is used here
    primary, secondary = plan_jobs("heterogeneous", 1, 2, None, None, {"iterations": 1}, "j", s3)
    assert primary.hyperparameters["rl_cluster_type"] == "primary"
    assert primary.hyperparameters["rl_num_instances_secondary"] == 2
    assert secondary.hyperparameters["rl_cluster_type"] == "secondary"
    shared = ("s3_bucket", "s3_prefix", "rl_run_id")
    assert [primary.hyperparameters[k] for k in shared] == [secondary.hyperparameters[k] for k in shared]
    assert secondary.hosts == ["algo-1", "algo-2"] and secondary.hyperparameters["iterations"] == 1
    again, _ = plan_jobs("heterogeneous", 1, 2, None, None, {"rl_run_id": "mine"}, "j", s3)
    assert again.hyperparameters["rl_run_id"] == "mine"
    assert again.hyperparameters["rl_run_id"] != plan_jobs("heterogeneous", 1, 2, None, None, {}, "j", s3)[0] \
        .hyperparameters["rl_run_id"]


PLATFORM_SHAPE = ("rl_cluster_type", "rl_head_instance_group", "rl_num_instances_secondary")


@pytest.mark.parametrize(("mode", "launched", "local"), [
    ("single", {}, (1, 0, None, None)),
    ("homogeneous", {"instance_count": 3}, (3, 0, None, None)),
    ("heterogeneous", {"instance_groups": ["cpu=ml.c5.xlarge:2", "gpu=ml.g5.xlarge:1"], "head_instance_group": "gpu"},
     (1, 0, {"cpu": 2, "gpu": 1}, "gpu")),
    ("heterogeneous", {"secondary_instance_type": "ml.c5.xlarge", "secondary_instance_count": 2}, (1, 2, None, None)),
])
def test_the_local_runner_runs_each_mode_as_the_launcher_submits_it(mode: str, launched: dict, local: tuple) -> None:
    plan = plan_launch(LaunchSettings(mode=mode, image_uri="image", role="role", bucket="bucket", project_root=REPO,
                                      **launched))
    specs = plan_jobs(mode, *local, {}, "run", LocalS3())
    for job, spec in zip(plan.jobs, specs, strict=True):
        hosts = job.instance_count or sum(g.instance_count for g in job.instance_groups)
        assert (spec.name.removeprefix("run"), len(spec.hosts)) == (job.name.removeprefix(plan.base_job_name + "-"
                                                                                          + plan.run_id), hosts)
        assert {k: spec.hyperparameters.get(k, "auto" if k == "rl_cluster_type" else None) for k in PLATFORM_SHAPE} \
            == {k: job.hyperparameters.get(k) for k in PLATFORM_SHAPE}


def test_the_local_runners_older_argument_names_still_work_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match=r"LocalJob\(instances=...\) is now instance_count=..."):
        job = LocalJob(mode="homogeneous", instances=3, **PROBE)
    assert job.specs[0].hosts == ["algo-1", "algo-2", "algo-3"]
    with pytest.raises(TypeError, match="unexpected keyword argument 'instancez'"):
        LocalJob(mode="homogeneous", instancez=3, **PROBE)


@pytest.mark.slow
def test_each_host_gets_its_own_container_tree_command_line_and_sm_variables(tmp_path: Path) -> None:
    data = tmp_path / "boards"
    data.mkdir()
    (data / "b1.json").write_text("{}")
    result = run_local_job(mode="heterogeneous", instance_groups={"cpu": 2, "gpu": 1}, head_instance_group="gpu",
                           hyperparameters={"iterations": 2, "name": "ppo"}, channels={"train": data},
                           work_dir=tmp_path / "run", job_name="echo", timeout_s=120, **ECHO)
    seen = {h.host: json.loads((h.base_dir / "model" / "contract.json").read_text()) for h in result.hosts}
    assert sorted(seen) == ["algo-1", "algo-2", "algo-3"]
    one, three = seen["algo-1"], seen["algo-3"]
    assert one["hosts"] == ["algo-1", "algo-2", "algo-3"] and one["num_cpus"] == 2
    assert (one["group"], three["group"], one["groups"]) == ("cpu", "gpu", {"cpu": ["algo-1", "algo-2"],
                                                                             "gpu": ["algo-3"]})
    assert one["hyperparameters"] == {"iterations": 2, "name": "ppo", "rl_head_instance_group": "gpu"}
    assert one["argv"] == ["--iterations", "2", "--name", "ppo", "--rl_head_instance_group", "gpu"]
    assert one["channels"] == {"train": ["b1.json"]}
    assert one["cwd"] == str(result.host("algo-1").base_dir / "code")
    assert one["sagemaker_rl"] == str(result.host("algo-1").base_dir / "code" / "sagemaker_rl" / "contract.py")
    assert json.loads(one["sm_env"]["SM_HPS"]) == one["hyperparameters"]  # no sagemaker_* entries, as the toolkit
    assert one["sm_env"]["SM_HP_NAME"] == "ppo" and one["sm_env"]["SM_CURRENT_HOST"] == "algo-1"
    # model.tar.gz merges every host's model/ (later hosts win a clash); output.tar.gz every host's output/data/
    with tarfile.open(result.model_tar) as tar:
        assert json.load(tar.extractfile("contract.json"))["host"] == "algo-3"
    assert tar_names(result.output_tar) == ["algo-1.txt", "algo-2.txt", "algo-3.txt"]


@pytest.mark.slow
def test_a_failing_host_fails_the_job_with_its_failure_file_text(tmp_path: Path) -> None:
    with pytest.raises(LocalJobError, match="algo-2 exited with code 1: algo-2 was told to fail") as caught:
        run_local_job(mode="homogeneous", instance_count=2, hyperparameters={"fail_on": "algo-2"},
                      work_dir=tmp_path, job_name="fails", timeout_s=120, **ECHO)
    assert caught.value.result.host("algo-1").exit_code == 0


# ---------------------------------------------------------------------------------------------------------- Ray
@pytest.mark.slow
def test_a_secondary_job_that_never_arrives_fails_the_primary_within_the_rendezvous_timeout(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_local_job(mode="heterogeneous", instance_count=1, secondary_instance_count=1, start_secondary=False,
                           hyperparameters={"rl_rendezvous_timeout_s": 10}, work_dir=tmp_path, job_name="alone",
                           timeout_s=180, check=False, **PROBE)
    assert time.monotonic() - started < 10 + 90  # the timeout, plus starting one Ray node on a busy machine
    failure = result.host("algo-1").failure
    assert "only 1 of 2 hosts joined the Ray cluster within 10 s (rl_rendezvous_timeout_s); missing: " \
           "secondary/algo-1" in failure
    assert "secondary/algo-1: never announced itself at s3://sagemaker-rl-local/rendezvous/alone/" in failure
    assert result.failure.startswith("alone-primary: algo-1 exited with code 1: ClusterError: only 1 of 2")


@pytest.mark.slow
def test_a_worker_host_killed_mid_training_fails_the_job_fast_naming_the_host(tmp_path: Path) -> None:
    job = LocalJob(mode="homogeneous", instance_count=2, hyperparameters={"probe_hold_s": 300}, work_dir=tmp_path,
                   job_name="killed", **PROBE)
    try:
        job.start()
        wait_for_line(job, "algo-1", "probe: holding")
        killed = time.monotonic()
        job.kill_host("algo-2")
        result = job.wait(timeout_s=120)
    finally:
        job.close()
    assert time.monotonic() - killed < 60  # Ray's health checks notice within ~15-30 s; the hold was 300 s
    head = result.host("algo-1")
    assert head.exit_code == 1 and head.stopped_by_runner is None
    assert head.failure.startswith("Ray node of host algo-2 (127.0.0.3) left the cluster during training")
    assert result.failure.startswith("killed: algo-2 was killed (a simulated instance failure); algo-1 exited with "
                                     "code 1: Ray node of host algo-2")


@pytest.mark.slow
def test_a_native_heterogeneous_job_heads_on_its_named_group_and_workers_leave_when_the_head_dies(
        tmp_path: Path) -> None:
    job = LocalJob(mode="heterogeneous", instance_groups={"cpu": 1, "learner": 1}, head_instance_group="learner",
                   hyperparameters={"probe_hold_s": 300, "rl_head_lost_timeout_s": 5}, work_dir=tmp_path,
                   job_name="groups", **PROBE)
    try:
        job.start()
        wait_for_line(job, "algo-2", "probe: holding")  # algo-2, the learner group's host, is the head
        assert "starting the Ray head" not in job.host_log("algo-1")
        killed = time.monotonic()
        job.kill_host("algo-2")
        result = job.wait(timeout_s=90)
    finally:
        job.close()
    assert time.monotonic() - killed < 40
    worker = result.host("algo-1")
    assert worker.exit_code == 1 and worker.stopped_by_runner is None
    assert "the Ray head (127.0.0.3:" in worker.failure and "rl_head_lost_timeout_s=5" in worker.failure


# ---------------------------------------------------------------------------------------------------------- training
def train_hyperparameters(**extra: Any) -> dict[str, Any]:
    """The smallest train-mabs.py run that still samples on every env runner: one iteration of a few short games."""
    return {"iterations": 1, "num_games": 4, "max_turns": 50, "train_batch_size": 256, "minibatch_size": 128,
            "num_epochs": 1, "eval_every": 0, "eval_games": 2, "eval_opponents": "safe", **extra}


@pytest.mark.slow
def test_a_two_host_homogeneous_training_job_samples_on_every_host_and_ships_the_model(tmp_path: Path) -> None:
    result = run_local_job(mode="homogeneous", instance_count=2, hyperparameters=train_hyperparameters(),
                           work_dir=tmp_path, job_name="train", timeout_s=480)
    head_log = result.host("algo-1").log_text()
    runners = metric(head_log, "env_runner_hosts")
    assert runners.keys() == {"algo-1", "algo-2"} and sum(runners.values()) == 3  # 2 hosts x 2 CPUs - the driver
    assert "Ray token auth is off" in head_log  # one job without s3_bucket: nothing to share a token through
    assert "the head announced the end of training; leaving" in result.host("algo-2").log_text()
    assert [h.exit_code for h in result.hosts] == [0, 0]
    names = tar_names(result.model_tar)
    assert {"policy.pt", "policy.onnx", "rl_module"} <= set(names)
    checkpoint = Path(next(line for line in head_log.splitlines() if line.startswith("checkpoint: ")).split(": ")[1])
    assert checkpoint.parent == result.host("algo-1").base_dir / "checkpoints" and checkpoint.is_dir()
    with tarfile.open(result.model_tar) as tar:  # what ran, recorded by the head (the worker writes no model files)
        assert json.load(tar.extractfile("config.json"))["training"]["num_env_runners"] == 3
    assert not (result.host("algo-2").base_dir / "model" / "config.json").exists()


@pytest.mark.slow
def test_a_primary_and_a_secondary_training_job_meet_through_s3_past_stale_keys_and_sample_on_every_host(
        tmp_path: Path) -> None:
    with LocalS3() as s3:
        store = S3Store(s3.bucket, "rendezvous/hetero", client=s3.client())
        earlier = Rendezvous(store, "run-1")  # an earlier run under the same prefix, its head long gone
        earlier.publish_token("old", "old-token")
        earlier.publish_head(HeadRecord("127.0.0.250:9", "algo-1", "old", "published", 1.0))
        earlier.announce_host("secondary", 1, "algo-1", "127.0.0.251")
        earlier.announce_done("old", success=True)
        retried = Rendezvous(store, "run-2")  # this run's id, left by a failed first attempt without a secret
        retried.publish_head(HeadRecord("127.0.0.252:9", "algo-1", "attempt-1", "published", 1.0))
        retried.announce_done("attempt-1", success=False, reason="first attempt")
        hyperparameters = train_hyperparameters(rl_run_id="run-2", s3_prefix="rendezvous/hetero", no_export=True,
                                                eval_opponents="")
        job = LocalJob(mode="heterogeneous", instance_count=1, secondary_instance_count=1, s3=s3,
                       hyperparameters=hyperparameters, work_dir=tmp_path, job_name="hetero")
        try:
            job.start()
            result = job.wait(480).check()
        finally:
            job.close()
        secret = job.environment["SM_RL_RENDEZVOUS_SECRET"]
        final, _ = Rendezvous(store, "run-2", secret=secret).read_head()
        left = {key: body for key, body in objects(s3).items() if "/run-2/" in key}
    head_log = result.host("algo-1").log_text()
    runners = metric(head_log, "env_runner_hosts")
    assert runners.keys() == {"algo-1", "secondary/algo-1"} and sum(runners.values()) == 3
    assert "Ray token auth is on, with a token every node derives from the rendezvous secret" in head_log
    assert final.session != "attempt-1" and final.address.startswith("127.0.0.2:") and final.auth == "derived"
    assert [j.success for j in result.jobs] == [True, True]
    assert "the head announced the end of training; leaving" in result.host("algo-1", job=1).log_text()
    assert "config.json" in tar_names(result.model_tar)
    token = derive_token(secret, final.session)  # the cluster's Ray token: in no log, no record, and never stored
    assert all(token not in h.log_text() and secret not in h.log_text() for h in result.hosts)
    assert sorted(left) == ["rendezvous/hetero/run-2/done.json", "rendezvous/hetero/run-2/head.json",
                            "rendezvous/hetero/run-2/hosts/secondary/algo-1.json"]
    assert not any(token.encode() in body or secret.encode() in body for body in left.values())


@pytest.mark.slow
def test_the_blog_posts_two_jobs_meet_with_only_bucket_and_prefix_and_leave_no_token(tmp_path: Path) -> None:
    post = {"num_iters": 1, "num_agents": 3, "rl.training.config.num_workers": 3, "rl.training.config.num_gpus": 0,
            "aws_region": "us-east-1"}
    tiny = {k: v for k, v in train_hyperparameters().items() if k != "iterations"}
    with LocalS3() as s3:
        result = run_local_job(mode="heterogeneous", instance_count=1, secondary_instance_count=1, s3=s3,
                               rendezvous="post",
                               hyperparameters={**tiny, **post, "no_export": True, "eval_opponents": ""},
                               work_dir=tmp_path, job_name="post", timeout_s=480)
        left = {key: body for key, body in objects(s3).items() if key.startswith("rendezvous/post/")}
    head_log = result.host("algo-1").log_text()
    written = json.loads((result.host("algo-1").base_dir / "input" / "config" / "hyperparameters.json").read_text())
    assert "rl_run_id" not in written and "s3_prefix" in written
    assert "shared through the S3 rendezvous (no $SM_RL_RENDEZVOUS_SECRET)" in head_log
    assert "every host has joined: deleted the Ray token record s3://sagemaker-rl-local/rendezvous/post/token.json" \
        in head_log
    assert sorted(left) == ["rendezvous/post/done.json", "rendezvous/post/head.json",
                            "rendezvous/post/hosts/secondary/algo-1.json"]  # no token.json: deleted
    assert not any(b"auth_token" in body for body in left.values())
    assert metric(head_log, "env_runner_hosts").keys() == {"algo-1", "secondary/algo-1"}
    with tarfile.open(result.model_tar) as tar:
        training = json.load(tar.extractfile("config.json"))["training"]
    assert (training["num_snakes"], training["num_env_runners"]) == (3, 3)  # num_agents, num_workers
    assert [line for line in head_log.splitlines() if line.startswith("iteration: ")][0] == "iteration: 1"
