"""Cluster bootstrap and S3 rendezvous, without starting Ray: settings, roles, exact keys, stale records, timeouts,
and the worker's serve loop and the head's end announcement against a stand-in GCS."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from sagemaker_rl import cluster
from sagemaker_rl import contract as sm
from sagemaker_rl.cluster import ClusterError, ClusterPlan, ClusterSettings, Node, NodeInfo, plan_rollouts
from sagemaker_rl.rendezvous import HeadRecord, Rendezvous, RendezvousTimeout, S3Store, derive_token

boto3 = pytest.importorskip("boto3")
moto = pytest.importorskip("moto")


def job(tmp_path: Path, hosts: list[str], current: str, groups: list[tuple[str, str, list[str]]] = (),
        environ: dict[str, str] | None = None) -> sm.Contract:
    """A job's contract read from a resourceconfig.json as SageMaker writes it."""
    config = tmp_path / current / "input" / "config"
    config.mkdir(parents=True)
    resources: dict[str, Any] = {"current_host": current, "hosts": hosts}
    if groups:
        resources["instance_groups"] = [{"instance_group_name": n, "instance_type": t, "hosts": h}
                                        for n, t, h in groups]
        resources["current_group_name"] = next(n for n, _, h in groups if current in h)
    (config / "resourceconfig.json").write_text(json.dumps(resources))
    return sm.load(tmp_path / current, environ={"SM_NUM_CPUS": "4", **(environ or {})})


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
    the_plan = cluster.plan(sm.load("/nonexistent", environ={}), ClusterSettings())
    assert (the_plan.mode, the_plan.is_head, the_plan.expected, the_plan.uses_s3) == ("single", True, ("algo-1",),
                                                                                      False)


def test_the_homogeneous_head_is_the_first_host_in_numeric_order_not_string_order(tmp_path: Path) -> None:
    hosts = ["algo-10", "algo-2", "algo-1", "algo-9"]
    plans = {h: cluster.plan(job(tmp_path, hosts, h), ClusterSettings()) for h in hosts}
    assert [h for h, p in plans.items() if p.is_head] == ["algo-1"]
    assert plans["algo-10"].expected == ("algo-1", "algo-2", "algo-9", "algo-10")
    assert {p.mode for p in plans.values()} == {"homogeneous"}
    assert {p.head_host for p in plans.values()} == {"algo-1"}


def test_the_heterogeneous_head_is_in_the_named_group_whatever_the_host_order(tmp_path: Path) -> None:
    groups = [("cpu", "ml.c5.4xlarge", ["algo-1", "algo-2"]), ("gpu", "ml.g5.xlarge", ["algo-3"])]
    settings = ClusterSettings(head_instance_group="gpu")
    plans = {h: cluster.plan(job(tmp_path, ["algo-1", "algo-2", "algo-3"], h, groups), settings)
             for h in ("algo-1", "algo-2", "algo-3")}
    assert [h for h, p in plans.items() if p.is_head] == ["algo-3"]
    assert plans["algo-1"].expected == ("algo-3", "algo-1", "algo-2")
    assert plans["algo-1"].mode == "heterogeneous"


def test_several_instance_groups_without_a_head_group_fail_listing_the_groups(tmp_path: Path) -> None:
    groups = [("cpu", "ml.c5.4xlarge", ["algo-1"]), ("gpu", "ml.g5.xlarge", ["algo-2"])]
    listing = r"cpu \(ml.c5.4xlarge x1\), gpu \(ml.g5.xlarge x1\).*rl_head_instance_group"
    with pytest.raises(ClusterError, match=listing):
        cluster.plan(job(tmp_path, ["algo-1", "algo-2"], "algo-1", groups), ClusterSettings())


def test_an_unknown_head_group_fails_naming_the_jobs_groups(tmp_path: Path) -> None:
    groups = [("cpu", "ml.c5.4xlarge", ["algo-1"]), ("gpu", "ml.g5.xlarge", ["algo-2"])]
    with pytest.raises(ClusterError, match="no instance group named 'learner'; this job's groups: cpu, gpu"):
        cluster.plan(job(tmp_path, ["algo-1", "algo-2"], "algo-2", groups),
                     ClusterSettings(head_instance_group="learner"))


def test_a_primary_job_expects_its_hosts_and_a_count_of_secondary_hosts_and_heads_on_its_first_host(
        tmp_path: Path) -> None:
    settings = ClusterSettings(cluster_type="primary", num_instances_secondary=2, s3_bucket="b")
    head = cluster.plan(job(tmp_path, ["algo-1", "algo-2"], "algo-1"), settings)
    assert head.is_head and head.uses_s3 and head.label == "algo-1"
    assert (head.expected, head.secondary_hosts) == (("algo-1", "algo-2"), 2)  # whatever the secondary's names
    assert not cluster.plan(job(tmp_path, ["algo-1", "algo-2"], "algo-2"), settings).is_head


def test_a_secondary_job_never_heads_and_learns_the_head_through_s3(tmp_path: Path) -> None:
    settings = ClusterSettings(cluster_type="secondary", s3_bucket="b", run_id="r")
    the_plan = cluster.plan(job(tmp_path, ["algo-1"], "algo-1"), settings)
    assert (the_plan.is_head, the_plan.head_host, the_plan.label, the_plan.uses_s3) == (False, None,
                                                                                        "secondary/algo-1", True)


def test_sdk_local_mode_host_names_keep_their_numeric_order_and_slots(tmp_path: Path) -> None:
    hosts = ["algo-10-x7k2p", "algo-2-x7k2p", "algo-1-x7k2p"]  # SageMaker SDK local mode: algo-N-<suffix>
    settings = ClusterSettings(cluster_type="secondary", s3_bucket="b")
    plans = {h: cluster.plan(job(tmp_path, hosts, h), settings) for h in hosts}
    assert {h: p.slot for h, p in plans.items()} == {"algo-1-x7k2p": 1, "algo-2-x7k2p": 2, "algo-10-x7k2p": 3}
    assert plans["algo-2-x7k2p"].expected == ("secondary/algo-1-x7k2p", "secondary/algo-2-x7k2p",
                                               "secondary/algo-10-x7k2p")


def test_a_one_job_cluster_uses_s3_only_when_given_a_bucket(tmp_path: Path) -> None:
    contract = job(tmp_path, ["algo-1", "algo-2"], "algo-1")
    assert not cluster.plan(contract, ClusterSettings()).uses_s3
    assert cluster.plan(contract, ClusterSettings(s3_bucket="b")).uses_s3


def test_host_addresses_from_the_environment_win_over_dns_and_bad_tables_are_named() -> None:
    env = {cluster.HOST_ADDRESSES_ENV: json.dumps({"algo-1": "127.0.0.2", "algo-10": "127.0.0.11"})}
    assert cluster.resolve_host("algo-10", env) == "127.0.0.11"
    with pytest.raises(ClusterError, match="SM_RL_HOST_ADDRESSES is not valid JSON"):
        cluster.resolve_host("algo-1", {cluster.HOST_ADDRESSES_ENV: "{algo-1"})
    with pytest.raises(ClusterError, match="must be a JSON object"):
        cluster.resolve_host("algo-1", {cluster.HOST_ADDRESSES_ENV: '["127.0.0.2"]'})


@pytest.mark.parametrize(("cpus", "runners"), [({"algo-1": 4}, 3), ({"algo-1": 2, "algo-2": 2}, 3),
                                               ({"algo-1": 1}, 1), ({"algo-1": 1, "algo-2": 1}, 1),
                                               ({"algo-1": 8, "secondary/algo-1": 16}, 23)])
def test_env_runners_use_every_cpu_of_the_cluster_but_the_drivers(cpus: dict[str, int], runners: int) -> None:
    assert node_with(cpus=cpus).num_env_runners == runners


def test_an_unknown_env_runner_address_is_an_error_naming_the_known_hosts() -> None:
    node = node_with(addresses={"127.0.0.2": "algo-1", "127.0.0.3": "algo-2"})
    assert node.host_of_address("127.0.0.3") == "algo-2"
    with pytest.raises(ClusterError, match="no host of this cluster has address '10.0.0.9'.*127.0.0.2=algo-1"):
        node.host_of_address("10.0.0.9")


# ---------------------------------------------------------------------------------------------------------- rendezvous
@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    with moto.mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="rl-rendezvous")
        yield client


class FakeClock:
    """Time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.on_sleep: list = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        for action in self.on_sleep:
            action(self.now)


SECRET = "s" * 64
OTHER_SECRET = "o" * 64


def meet(s3: Any, run_id: str | None = "run-2", clock: FakeClock | None = None, secret: str | None = None,
         prefix: str = "team/rendezvous") -> Rendezvous:
    clock = clock or FakeClock()
    store = S3Store("rl-rendezvous", prefix, client=s3)
    return Rendezvous(store, run_id, poll_s=1.0, secret=secret, clock=clock, sleep=clock.sleep)


def head(session: str, address: str = "10.0.0.1:6379", auth: str = "published") -> HeadRecord:
    return HeadRecord(address=address, host="algo-1", session=session, auth=auth, written_at=1.0)


def publish(rendezvous: Rendezvous, record: HeadRecord, token: str = "t0k3n") -> None:
    """What a head without a secret publishes: its token, then its record."""
    rendezvous.publish_token(record.session, token)
    rendezvous.publish_head(record)


def keys(s3: Any) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket="rl-rendezvous").get("Contents", []))


def test_host_announcements_are_read_by_exact_key_so_algo_1_never_matches_algo_10(s3: Any) -> None:
    rendezvous = meet(s3)
    rendezvous.announce_host("secondary", 10, "algo-10", "10.0.0.10")
    assert rendezvous.host_announcement("secondary", 1) is None
    assert rendezvous.host_announcement("secondary", 10)["address"] == "10.0.0.10"
    assert keys(s3) == ["team/rendezvous/run-2/hosts/secondary/algo-10.json"]


def test_records_of_an_earlier_run_id_are_never_read(s3: Any) -> None:
    earlier = meet(s3, run_id="run-1")
    publish(earlier, head("old", "10.0.0.99:6379"))
    earlier.announce_done("old", success=True)
    earlier.announce_host("secondary", 1, "algo-1", "10.0.0.98")
    current = meet(s3, run_id="run-2")
    assert (current.read_head(), current.done("old"), current.host_announcement("secondary", 1)) == (
        (None, None), None, None)
    with pytest.raises(RendezvousTimeout, match=r"no live Ray head at s3://rl-rendezvous/team/rendezvous/run-2/"
                                                r"head.json within 5 s \(the key never appeared\).*rl_run_id='run-2'"):
        current.wait_for_head(5, lambda record: True)


def test_without_a_run_id_the_jobs_meet_at_the_prefix_itself_past_an_earlier_runs_records(s3: Any) -> None:
    clock = FakeClock()
    rendezvous = meet(s3, run_id=None, clock=clock, prefix="battlesnake")  # the blog post: s3_bucket + s3_prefix
    publish(rendezvous, head("last-week", "10.0.0.9:6379"), token="old-token")  # an earlier run, ended
    rendezvous.announce_done("last-week", success=True)
    rendezvous.delete_token()
    clock.on_sleep.append(lambda now: now == 2 and publish(rendezvous, head("today", "10.0.0.5:6379")))
    found, token = rendezvous.wait_for_head(60, lambda record: True)
    assert (found.session, found.address, token, clock.now) == ("today", "10.0.0.5:6379", "t0k3n", 2)
    assert keys(s3) == ["battlesnake/done.json", "battlesnake/head.json", "battlesnake/token.json"]


def test_a_stale_head_of_the_same_run_is_waited_past_until_the_new_head_publishes(s3: Any) -> None:
    clock = FakeClock()
    rendezvous = meet(s3, clock=clock)
    publish(rendezvous, head("attempt-1", "10.0.0.1:6379"))  # a retried job: the first attempt's records remain
    rendezvous.announce_done("attempt-1", success=False, reason="spot interruption")
    clock.on_sleep.append(lambda now: now == 3 and publish(rendezvous, head("attempt-2", "10.0.0.5:6379"), "n3w"))
    found, token = rendezvous.wait_for_head(60, lambda record: True)
    assert (found.session, found.address, token, clock.now) == ("attempt-2", "10.0.0.5:6379", "n3w", 3)
    assert rendezvous.done("attempt-2") is None  # the first attempt's end does not end the second


def test_a_head_record_whose_address_does_not_answer_is_retried_then_named_at_the_timeout(s3: Any) -> None:
    clock = FakeClock()
    rendezvous = meet(s3, clock=clock)
    publish(rendezvous, head("crashed", "10.0.0.7:6379"))
    logged: list[str] = []
    with pytest.raises(RendezvousTimeout, match=r"within 8 s \(records ignored: session crashed at "
                                                r"10.0.0.7:6379 does not answer\)"):
        rendezvous.wait_for_head(8, lambda record: False, log=logged.append)
    assert clock.now == 8 and len(logged) == 1  # said once, not at every poll
    answers = iter([False, False, True])
    assert rendezvous.wait_for_head(8, lambda record: next(answers))[0].session == "crashed"


def test_a_published_token_serves_only_its_own_session(s3: Any) -> None:
    clock = FakeClock()
    rendezvous = meet(s3, clock=clock)
    rendezvous.publish_token("earlier", "old-token")  # a token an earlier head never got to delete
    rendezvous.publish_head(head("now"))
    with pytest.raises(RendezvousTimeout, match=r"session now no Ray token for session now at s3://rl-rendezvous/"
                                                r"team/rendezvous/run-2/token.json"):
        rendezvous.wait_for_head(3, lambda record: True)
    assert rendezvous.read_token("earlier") == "old-token" and rendezvous.read_token("now") is None


def test_the_end_announcement_only_ends_its_own_session(s3: Any) -> None:
    rendezvous = meet(s3)
    rendezvous.announce_done("s1", success=False, reason="boom")
    assert rendezvous.done("s2") is None
    assert rendezvous.done("s1")["reason"] == "boom"


def test_a_foreign_object_at_a_rendezvous_key_is_no_record(s3: Any) -> None:
    s3.put_object(Bucket="rl-rendezvous", Key="team/rendezvous/run-2/head.json", Body=b"not json")
    assert meet(s3).read_head() == (None, None)


def test_the_head_record_holds_no_token_and_neither_its_repr_nor_the_rendezvous_shows_one(s3: Any) -> None:
    rendezvous = meet(s3, secret=SECRET)
    record = head("s1", auth="derived")
    rendezvous.publish_head(record)
    token = rendezvous.token("s1")
    stored = s3.get_object(Bucket="rl-rendezvous", Key="team/rendezvous/run-2/head.json")
    assert stored["ServerSideEncryption"] == "AES256"
    body = stored["Body"].read().decode()
    assert token not in body and SECRET not in body
    assert token not in repr(record) and SECRET not in repr(rendezvous) and token not in repr(rendezvous)
    assert "auth_token" not in body


# ---------------------------------------------------------------------------------------------------------- trust
def test_with_a_secret_records_are_signed_and_the_token_is_derived_never_stored(s3: Any) -> None:
    primary, secondary = meet(s3, secret=SECRET), meet(s3, secret=SECRET)
    primary.publish_head(head("s1", auth="derived"))
    found, token = secondary.wait_for_head(5, lambda record: True)
    assert (found.session, token) == ("s1", derive_token(SECRET, "s1"))
    assert token != derive_token(SECRET, "s2") and token != derive_token(OTHER_SECRET, "s1")
    assert keys(s3) == ["team/rendezvous/run-2/head.json"]  # no token.json
    record = json.loads(s3.get_object(Bucket="rl-rendezvous", Key="team/rendezvous/run-2/head.json")["Body"].read())
    assert len(record["signature"]) == 64


@pytest.mark.parametrize(("planter", "why"), [
    (None, "it is not signed, and this job has a rendezvous secret"),
    (OTHER_SECRET, "its signature does not match this run's rendezvous secret"),
])
def test_a_planted_head_record_is_refused_with_a_clear_error(s3: Any, planter: str | None, why: str) -> None:
    clock = FakeClock()
    planted = meet(s3, secret=planter)  # someone who may write the prefix, without this run's secret
    publish(planted, head("evil", "10.9.9.9:6379"), token="evil-token")
    rendezvous = meet(s3, clock=clock, secret=SECRET)
    logged: list[str] = []
    answered: list[str] = []
    with pytest.raises(RendezvousTimeout, match=rf"records ignored: session evil refused: {why} \(written by another "
                                                rf"run, or planted\).*and \$SM_RL_RENDEZVOUS_SECRET\?"):
        rendezvous.wait_for_head(4, lambda record: answered.append(record.address) or True, log=logged.append)
    assert answered == []  # never even connected to
    assert logged == [f"not joining the head record at s3://rl-rendezvous/team/rendezvous/run-2/head.json (session "
                      f"evil): refused: {why} (written by another run, or planted)"]
    # the real head then overwrites it, signed: joined at once
    meet(s3, secret=SECRET).publish_head(head("real", auth="derived"))
    assert rendezvous.wait_for_head(4, lambda record: True)[0].session == "real"


def test_a_planted_end_or_announcement_is_no_record_for_a_signed_run(s3: Any) -> None:
    meet(s3).announce_done("s1", success=False, reason="planted")
    meet(s3).announce_host("secondary", 1, "algo-1", "10.9.9.9")
    signed = meet(s3, secret=SECRET)
    assert signed.done("s1") is None and signed.host_announcement("secondary", 1) is None


@pytest.mark.parametrize(("auth", "secret", "env_token", "why"), [
    ("derived", None, None, "the head derives the Ray token from a rendezvous secret, and this job has none"),
    ("environment", None, None, "set the same $RAY_AUTH_TOKEN in this job's environment"),
])
def test_a_head_this_host_cannot_get_the_token_of_is_named(s3: Any, auth: str, secret: str | None,
                                                            env_token: str | None, why: str) -> None:
    meet(s3, secret=secret).publish_head(head("s1", auth=auth))
    with pytest.raises(RendezvousTimeout, match=re.escape(why)):
        meet(s3, secret=secret).wait_for_head(2, lambda record: True, env_token=env_token)


def test_a_token_from_the_environment_is_used_and_never_published(s3: Any) -> None:
    meet(s3).publish_head(head("s1", auth="environment"))
    assert meet(s3).wait_for_head(2, lambda record: True, env_token="mine")[1] == "mine"
    assert keys(s3) == ["team/rendezvous/run-2/head.json"]


@pytest.mark.parametrize("secret", ["short", " " + "x" * 40])
def test_a_secret_too_short_to_be_one_is_refused_naming_the_variable(secret: str) -> None:
    with pytest.raises(ValueError, match=r"\$SM_RL_RENDEZVOUS_SECRET must be at least 32 characters"):
        Rendezvous(S3Store("b", client=object()), "r", secret=secret)


def test_a_secondary_that_never_arrives_is_named_with_the_key_it_should_have_written(s3: Any) -> None:
    rendezvous = meet(s3)
    rendezvous.announce_host("secondary", 2, "algo-2-x7k2p", "10.0.1.2")
    the_plan = ClusterPlan(mode="primary", host="algo-1", job="primary", is_head=True, head_host="algo-1",
                           expected=("algo-1",), uses_s3=True, secondary_hosts=2)
    message = cluster._missing_hosts_message(the_plan, [], [], rendezvous,
                                             ClusterSettings(cluster_type="primary", num_instances_secondary=2,
                                                             s3_bucket="rl-rendezvous", run_id="run-2",
                                                             rendezvous_timeout_s=20))
    assert message.splitlines()[0] == ("only 1 of 3 hosts joined the Ray cluster within 20 s (rl_rendezvous_timeout_s);"
                                       " missing: secondary/algo-1, secondary/algo-2-x7k2p")
    assert ("secondary/algo-1: never announced itself at s3://rl-rendezvous/team/rendezvous/run-2/hosts/secondary/"
            "algo-1.json — did the secondary job start, with the same s3_bucket and s3_prefix and rl_run_id?"
            ) in message
    assert "secondary/algo-2-x7k2p: announced itself from 10.0.1.2 but its Ray node never joined" in message


def test_the_head_counts_the_secondary_jobs_hosts_whatever_their_names_and_refuses_too_many() -> None:
    the_plan = ClusterPlan(mode="primary", host="algo-1-aaaaa", job="primary", is_head=True, head_host="algo-1-aaaaa",
                           expected=("algo-1-aaaaa",), uses_s3=True, secondary_hosts=2)
    joined = [NodeInfo("10.0.0.1", "algo-1-aaaaa", True, 2, 0), NodeInfo("10.0.0.3", "secondary/algo-2-bbbbb", True,
                                                                       2, 0),
              NodeInfo("10.0.0.2", "secondary/algo-1-bbbbb", True, 2, 0), NodeInfo("10.0.0.9", "", True, 2, 0)]
    nodes = cluster._wait_for_hosts(FakeGcs(joined), FakeRayNode(), the_plan, None, ClusterSettings(), 0.0)
    assert [n.label for n in nodes] == ["algo-1-aaaaa", "secondary/algo-1-bbbbb", "secondary/algo-2-bbbbb"]
    extra = NodeInfo("10.0.0.4", "secondary/algo-3-bbbbb", True, 2, 0)
    with pytest.raises(ClusterError, match=r"3 hosts of a secondary job joined .* rl_num_instances_secondary=2"):
        cluster._wait_for_hosts(FakeGcs([*joined, extra]), FakeRayNode(), the_plan, None, ClusterSettings(), 0.0)


# ------------------------------------------------------------------------------------------------ serving, finishing
class FakeGcs:
    """The GCS calls a node makes: a key-value table and a node table; ``reachable`` False raises like a dead GCS."""

    def __init__(self, nodes: list[NodeInfo] = ()) -> None:
        self.kv: dict[str, bytes] = {}
        self.node_table = list(nodes)
        self.reachable = True

    def _check(self) -> None:
        if not self.reachable:
            raise ConnectionError("Timed out while waiting for GCS to become available.")

    def get(self, key: str, timeout_s: float = 3.0) -> bytes | None:
        self._check()
        return self.kv.get(key)

    def put(self, key: str, value: bytes, timeout_s: float = 3.0) -> None:
        self._check()
        self.kv[key] = value

    def nodes(self, timeout_s: float = 5.0) -> list[NodeInfo]:
        self._check()
        return self.node_table


class FakeRayNode:
    def __init__(self) -> None:
        self.stopped: list[bool] = []
        self.process = type("P", (), {"returncode": None})()
        self.ip = "127.0.0.3"

    def alive(self) -> bool:
        return not self.stopped

    def stop(self, timeout_s: float = 20.0, force: bool = False) -> None:
        self.stopped.append(force)


def node_with(*, is_head: bool = True, cpus: dict[str, int] | None = None, addresses: dict[str, str] | None = None,
              gcs: FakeGcs | None = None, settings: ClusterSettings | None = None, base_dir: Path | None = None,
              rendezvous: Rendezvous | None = None) -> Node:
    contract = sm.load(base_dir or "/nonexistent", environ={})
    host = "algo-1" if is_head else "algo-2"
    the_plan = ClusterPlan(mode="homogeneous", host=host, job="", is_head=is_head, head_host="algo-1",
                           expected=("algo-1", "algo-2"), uses_s3=rendezvous is not None)
    return Node(contract=contract, settings=settings or ClusterSettings(), plan=the_plan, address="127.0.0.2:6379",
                num_gpus=0, cpus_by_host=cpus or {"algo-1": 2, "algo-2": 2}, addresses=dict(addresses or {}),
                ray_node=FakeRayNode(), gcs=gcs, rendezvous=rendezvous, session="s1")


def test_a_worker_leaves_with_success_when_the_head_announces_a_good_end_of_its_session(tmp_path: Path) -> None:
    gcs = FakeGcs()
    gcs.kv["done"] = json.dumps({"session": "an-earlier-head", "success": False}).encode()
    calls = []
    get = gcs.get

    def get_announcing_after_a_few_polls(key: str, timeout_s: float = 3.0) -> bytes | None:
        calls.append(key)
        if len(calls) == 3:
            gcs.kv["done"] = json.dumps({"session": "s1", "success": True}).encode()
        return get(key, timeout_s)

    gcs.get = get_announcing_after_a_few_polls
    node = node_with(is_head=False, gcs=gcs, base_dir=tmp_path)
    assert node.serve_until_done(poll_s=0) == 0
    assert calls == ["done"] * 3  # the earlier head's announcement did not end this session
    assert gcs.kv["left/algo-2"] == b"1"  # the head stops waiting for this host
    assert node.ray_node.stopped == [False]  # a graceful stop: the head is still there
    assert not (tmp_path / "output" / "failure").exists()


def test_a_worker_fails_with_the_heads_reason_when_the_head_announces_a_failure(tmp_path: Path) -> None:
    gcs = FakeGcs()
    gcs.kv["done"] = json.dumps({"session": "s1", "success": False, "reason": "learner out of memory"}).encode()
    node = node_with(is_head=False, gcs=gcs, base_dir=tmp_path)
    assert node.serve_until_done(poll_s=0) == 1
    assert (tmp_path / "output" / "failure").read_text() == ("the head ended training with a failure: "
                                                              "learner out of memory")


def test_a_worker_leaves_with_a_clear_failure_when_the_head_stays_unreachable(tmp_path: Path) -> None:
    gcs = FakeGcs()
    gcs.reachable = False
    node = node_with(is_head=False, gcs=gcs, base_dir=tmp_path, settings=ClusterSettings(head_lost_timeout_s=0.05))
    assert node.serve_until_done(poll_s=0.01) == 1
    failure = (tmp_path / "output" / "failure").read_text()
    assert "the Ray head (127.0.0.2:6379) has been unreachable" in failure
    assert "rl_head_lost_timeout_s=0.05" in failure
    assert node.ray_node.stopped == [True]  # killed at once: a raylet would wait on the gone GCS


def test_a_worker_that_missed_the_gcs_announcement_reads_the_end_from_s3(s3: Any, tmp_path: Path) -> None:
    rendezvous = meet(s3)
    rendezvous.announce_done("s1", success=True)
    gcs = FakeGcs()
    gcs.reachable = False
    node = node_with(is_head=False, gcs=gcs, base_dir=tmp_path, rendezvous=rendezvous,
                     settings=ClusterSettings(head_lost_timeout_s=60))
    assert node.serve_until_done(poll_s=0) == 0


def test_the_head_deletes_a_published_token_when_the_run_ends(s3: Any) -> None:
    rendezvous = meet(s3)
    publish(rendezvous, head("s1"))
    node = node_with(gcs=FakeGcs(), rendezvous=rendezvous)
    node.auth = "published"
    node.finish(success=True)
    assert keys(s3) == ["team/rendezvous/run-2/done.json", "team/rendezvous/run-2/head.json"]
    assert rendezvous.read_token("s1") is None


def test_the_head_announces_the_end_in_the_gcs_and_s3_waits_for_workers_and_finishes_once(s3: Any) -> None:
    gcs = FakeGcs([NodeInfo("127.0.0.2", "algo-1", True, 2, 0), NodeInfo("127.0.0.3", "algo-2", True, 2, 0)])
    gcs.kv["left/algo-2"] = b"1"
    rendezvous = meet(s3)
    node = node_with(gcs=gcs, rendezvous=rendezvous)
    node.finish(success=True)
    node.finish(success=False)  # e.g. the atexit hook after a normal end: nothing more happens
    assert json.loads(gcs.kv["done"]) == {"session": "s1", "success": True, "reason": ""}
    assert rendezvous.done("s1")["success"] is True
    assert node.ray_node.stopped == [False]


def test_a_worker_cannot_finish_and_the_head_cannot_serve() -> None:
    worker = node_with(is_head=False, gcs=FakeGcs())
    worker.finish(success=True)
    assert worker.ray_node.stopped == []
    with pytest.raises(ClusterError, match="serve_until_done is for worker hosts"):
        node_with(gcs=FakeGcs()).serve_until_done()


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


@pytest.mark.slow
def test_a_sigterm_handler_still_catches_sigterm_after_ray_shutdown_resets_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import signal

    ray = pytest.importorskip("ray")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")

    def caught() -> bool:  # what the kernel will do with SIGTERM, not what Python remembers
        status = Path("/proc/self/status").read_text()
        mask = int(next(line for line in status.splitlines() if line.startswith("SigCgt")).split()[1], 16)
        return bool(mask & (1 << (signal.SIGTERM - 1)))

    before = signal.getsignal(signal.SIGTERM)
    received: list[int] = []
    try:
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
        signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
        ray.shutdown()
        assert not caught()  # Ray's shutdown put the default action (death) back behind Python's back
        cluster.reassert_signal_handlers()
        assert caught()
        os.kill(os.getpid(), signal.SIGTERM)
        assert received == [signal.SIGTERM]
    finally:
        if ray.is_initialized():
            ray.shutdown()
        signal.signal(signal.SIGTERM, before)
