"""The cluster's plan without starting anything: the platform settings, each host's role in every mode, and the env
runners and learner GPUs a formed cluster runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from cluster_fakes import job, node_with

from sagemaker_rl import cluster_plan
from sagemaker_rl import contract as sm
from sagemaker_rl.cluster_plan import ClusterError, ClusterSettings, plan_rollouts


# ---------------------------------------------------------------------------------------------------------- settings
def test_settings_take_the_platform_keys_and_leave_every_other_hyperparameter_to_training() -> None:
    hps = {"rl_cluster_type": "primary", "rl_num_instances_secondary": 2, "s3_bucket": "b", "s3_prefix": "p/q",
           "rl_run_id": "run-7", "rl_rendezvous_timeout_s": 30, "rl_head_lost_timeout_s": 9,
           "iterations": 3, "rl_not_a_platform_key": "x"}
    settings, rest = ClusterSettings.from_hyperparameters(hps)
    assert settings == ClusterSettings(cluster_type="primary", num_instances_secondary=2, s3_bucket="b",
                                       s3_prefix="p/q", run_id="run-7", rendezvous_timeout_s=30, head_lost_timeout_s=9)
    assert rest == {"iterations": 3, "rl_not_a_platform_key": "x"}


def test_the_blog_posts_resource_and_region_keys_are_the_clusters_and_its_game_keys_go_to_training() -> None:
    post = {"s3_prefix": "battlesnake", "s3_bucket": "b", "aws_region": "eu-west-1", "rl_cluster_type": "primary",
            "rl_num_instances_secondary": 2, "rl.training.config.num_workers": 11,
            "rl.training.config.num_gpus": 1, "rl.training.config.num_cpus": 12, "num_iters": 10, "num_agents": 5}
    settings, rest = ClusterSettings.from_hyperparameters(post)
    assert (settings.num_workers, settings.num_cpus, settings.num_gpus, settings.aws_region) == (11, 12, 1,
                                                                                                 "eu-west-1")
    assert settings.run_id is None  # the post's two jobs meet through s3_bucket + s3_prefix alone
    assert rest == {"num_iters": 10, "num_agents": 5}


def test_settings_default_to_one_job_with_a_ten_minute_rendezvous() -> None:
    settings, rest = ClusterSettings.from_hyperparameters({})
    assert (settings.cluster_type, settings.rendezvous_timeout_s, settings.s3_bucket, rest) == ("auto", 600, None, {})


def test_settings_accept_numbers_typed_as_strings_and_names_decoded_as_numbers() -> None:
    settings, _ = ClusterSettings.from_hyperparameters({"rl_rendezvous_timeout_s": "45", "rl_run_id": 20260101,
                                                        "rl_cluster_type": "secondary", "s3_bucket": "b",
                                                        "rl.training.config.num_workers": "3",
                                                        "rl.training.config.num_gpus": "0.5"})
    assert (settings.rendezvous_timeout_s, settings.run_id) == (45.0, "20260101")
    assert (settings.num_workers, settings.num_gpus) == (3, 0.5)


@pytest.mark.parametrize(("hps", "words"), [
    ({"rl_cluster_type": "hetero"}, "rl_cluster_type must be one of auto, primary, secondary"),
    ({"rl_cluster_type": "primary", "rl_num_instances_secondary": 1}, "meets the other job through S3: set s3_bucket"),
    ({"rl_cluster_type": "secondary"}, "meets the other job through S3: set s3_bucket"),
    ({"rl_cluster_type": "primary", "s3_bucket": "b"}, "needs rl_num_instances_secondary >= 1"),
    ({"rl_num_instances_secondary": 2}, "is for rl_cluster_type=primary only"),
    ({"rl_rendezvous_timeout_s": 0}, "rl_rendezvous_timeout_s must be a positive number"),
    ({"rl_rendezvous_timeout_s": "soon"}, "rl_rendezvous_timeout_s must be a number, got 'soon'"),
    ({"rl_head_lost_timeout_s": -1}, "rl_head_lost_timeout_s must be a positive number"),
    ({"rl_num_instances_secondary": 1.5, "rl_cluster_type": "primary"}, "must be a whole number"),
    ({"rl_run_id": "a/b"}, "must not contain '/'"),
    ({"s3_bucket": ""}, "s3_bucket must be a non-empty string"),
    ({"aws_region": "the moon"}, "aws_region must be an AWS region name like us-east-1, got 'the moon'"),
    ({"rl.training.config.num_workers": -1}, "rl.training.config.num_workers must be a whole number >= 0"),
    ({"rl.training.config.num_cpus": 0}, "rl.training.config.num_cpus must be a whole number >= 1"),
    ({"rl.training.config.num_cpus": 2.5}, "rl.training.config.num_cpus must be a whole number >= 1"),
    ({"rl.training.config.num_gpus": "one"}, "rl.training.config.num_gpus must be a number, got 'one'"),
    ({"rl.training.config.num_gpus": -1}, "rl.training.config.num_gpus must be a number >= 0"),
])
def test_bad_platform_settings_fail_naming_the_hyperparameter(hps: dict, words: str) -> None:
    with pytest.raises(ClusterError, match=words.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        ClusterSettings.from_hyperparameters(hps)


# ---------------------------------------------------------------------------------------------------------- roles
def test_one_host_is_a_plain_local_ray_head() -> None:
    the_plan = cluster_plan.plan(sm.load("/nonexistent", environ={}), ClusterSettings())
    assert (the_plan.mode, the_plan.is_head, the_plan.expected, the_plan.uses_s3) == ("single", True, ("algo-1",),
                                                                                      False)


def test_the_homogeneous_head_is_the_first_host_in_numeric_order_not_string_order(tmp_path: Path) -> None:
    hosts = ["algo-10", "algo-2", "algo-1", "algo-9"]
    plans = {h: cluster_plan.plan(job(tmp_path, hosts, h), ClusterSettings()) for h in hosts}
    assert [h for h, p in plans.items() if p.is_head] == ["algo-1"]
    assert plans["algo-10"].expected == ("algo-1", "algo-2", "algo-9", "algo-10")
    assert {p.mode for p in plans.values()} == {"homogeneous"}
    assert {p.head_host for p in plans.values()} == {"algo-1"}


def test_the_heterogeneous_head_is_in_the_named_group_whatever_the_host_order(tmp_path: Path) -> None:
    groups = [("cpu", "ml.c5.4xlarge", ["algo-1", "algo-2"]), ("gpu", "ml.g5.xlarge", ["algo-3"])]
    settings = ClusterSettings(head_instance_group="gpu")
    plans = {h: cluster_plan.plan(job(tmp_path, ["algo-1", "algo-2", "algo-3"], h, groups), settings)
             for h in ("algo-1", "algo-2", "algo-3")}
    assert [h for h, p in plans.items() if p.is_head] == ["algo-3"]
    assert plans["algo-1"].expected == ("algo-3", "algo-1", "algo-2")
    assert plans["algo-1"].mode == "heterogeneous"


def test_several_instance_groups_without_a_head_group_fail_listing_the_groups(tmp_path: Path) -> None:
    groups = [("cpu", "ml.c5.4xlarge", ["algo-1"]), ("gpu", "ml.g5.xlarge", ["algo-2"])]
    listing = r"cpu \(ml.c5.4xlarge x1\), gpu \(ml.g5.xlarge x1\).*rl_head_instance_group"
    with pytest.raises(ClusterError, match=listing):
        cluster_plan.plan(job(tmp_path, ["algo-1", "algo-2"], "algo-1", groups), ClusterSettings())


def test_an_unknown_head_group_fails_naming_the_jobs_groups(tmp_path: Path) -> None:
    groups = [("cpu", "ml.c5.4xlarge", ["algo-1"]), ("gpu", "ml.g5.xlarge", ["algo-2"])]
    with pytest.raises(ClusterError, match="no instance group named 'learner'; this job's groups: cpu, gpu"):
        cluster_plan.plan(job(tmp_path, ["algo-1", "algo-2"], "algo-2", groups),
                     ClusterSettings(head_instance_group="learner"))


def test_a_primary_job_expects_its_hosts_and_a_count_of_secondary_hosts_and_heads_on_its_first_host(
        tmp_path: Path) -> None:
    settings = ClusterSettings(cluster_type="primary", num_instances_secondary=2, s3_bucket="b")
    head = cluster_plan.plan(job(tmp_path, ["algo-1", "algo-2"], "algo-1"), settings)
    assert head.is_head and head.uses_s3 and head.label == "algo-1"
    assert (head.expected, head.secondary_hosts) == (("algo-1", "algo-2"), 2)  # whatever the secondary's names
    assert not cluster_plan.plan(job(tmp_path, ["algo-1", "algo-2"], "algo-2"), settings).is_head


def test_a_secondary_job_never_heads_and_learns_the_head_through_s3(tmp_path: Path) -> None:
    settings = ClusterSettings(cluster_type="secondary", s3_bucket="b", run_id="r")
    the_plan = cluster_plan.plan(job(tmp_path, ["algo-1"], "algo-1"), settings)
    assert (the_plan.is_head, the_plan.head_host, the_plan.label, the_plan.uses_s3) == (False, None,
                                                                                        "secondary/algo-1", True)


def test_sdk_local_mode_host_names_keep_their_numeric_order_and_slots(tmp_path: Path) -> None:
    hosts = ["algo-10-x7k2p", "algo-2-x7k2p", "algo-1-x7k2p"]  # SageMaker SDK local mode: algo-N-<suffix>
    settings = ClusterSettings(cluster_type="secondary", s3_bucket="b")
    plans = {h: cluster_plan.plan(job(tmp_path, hosts, h), settings) for h in hosts}
    assert {h: p.slot for h, p in plans.items()} == {"algo-1-x7k2p": 1, "algo-2-x7k2p": 2, "algo-10-x7k2p": 3}
    assert plans["algo-2-x7k2p"].expected == ("secondary/algo-1-x7k2p", "secondary/algo-2-x7k2p",
                                               "secondary/algo-10-x7k2p")


def test_a_one_job_cluster_uses_s3_only_when_given_a_bucket(tmp_path: Path) -> None:
    contract = job(tmp_path, ["algo-1", "algo-2"], "algo-1")
    assert not cluster_plan.plan(contract, ClusterSettings()).uses_s3
    assert cluster_plan.plan(contract, ClusterSettings(s3_bucket="b")).uses_s3


# ---------------------------------------------------------------------------------------------------------- resources
POST = "rl.training.config"


@pytest.mark.parametrize(("settings", "own", "runners", "note"), [
    ({}, None, 3, ""),  # every CPU but the driver's
    ({"num_cpus": 1}, None, 1, ""),  # the post's single job: num_cpus = CPUs - 1
    ({"num_workers": 3}, None, 3, ""),  # the post's homogeneous job: num_cpus * count - 1
    ({"num_workers": 0}, None, 0, ""),  # sample in the driver
    ({"num_workers": 15}, None, 3, f"{POST}.num_workers=15 asks for more env runners than the cluster's 4 CPUs "
                                   "leave beside the driver (3; each env runner takes one CPU, the driver and its "
                                   "learner one): using 3"),
    ({"num_cpus": 8}, None, 3, f"{POST}.num_cpus=8 asks for more env runners"),
    ({}, ("num_env_runners", 2), 2, ""),
    ({}, ("num_env_runners", 9), 3, "num_env_runners=9 asks for more env runners"),
])
def test_env_runners_follow_the_posts_meaning_and_never_exceed_the_clusters_cpus(
        settings: dict, own: tuple | None, runners: int, note: str) -> None:
    rollouts = plan_rollouts(node_with(cpus={"algo-1": 2, "algo-2": 2}), ClusterSettings(**settings),
                             env_runners=own)
    assert rollouts.num_env_runners == runners
    assert (note in rollouts.notes[0]) if note else rollouts.notes == ()


@pytest.mark.parametrize(("settings", "own", "words"), [
    ({"num_workers": 2}, ("num_env_runners", 2), f"{POST}.num_workers=2 and num_env_runners=2 both set the number"),
    ({"num_workers": 3, "num_cpus": 2}, None, f"{POST}.num_workers=3 env runners need 3 CPUs .* {POST}.num_cpus=2"),
])
def test_env_runner_settings_that_contradict_each_other_are_refused_naming_both(
        settings: dict, own: tuple | None, words: str) -> None:
    with pytest.raises(ClusterError, match=words):
        plan_rollouts(node_with(), ClusterSettings(**settings), env_runners=own)


def test_the_learner_takes_the_heads_gpu_and_never_more_than_the_head_has() -> None:
    cpu_head, gpu_head = node_with(), node_with()
    gpu_head.num_gpus = 1
    assert plan_rollouts(cpu_head, ClusterSettings()).num_gpus == 0
    assert plan_rollouts(gpu_head, ClusterSettings()).num_gpus == 1
    assert plan_rollouts(gpu_head, ClusterSettings(num_gpus=0)).num_gpus == 0
    four = plan_rollouts(gpu_head.__class__(**{**gpu_head.__dict__, "num_gpus": 4}), ClusterSettings(num_gpus=4))
    assert four.num_gpus == 1 and "one learner uses one GPU" in four.notes[0]
    with pytest.raises(ClusterError, match=rf"{POST}.num_gpus=1: the learner runs on the head host \(algo-1\), which "
                                           r"has 0 GPU\(s\)"):
        plan_rollouts(cpu_head, ClusterSettings(num_gpus=1))
    with pytest.raises(ClusterError, match="both set the learner's GPUs"):
        plan_rollouts(gpu_head, ClusterSettings(num_gpus=1), gpus=("num_gpus", 1.0))
