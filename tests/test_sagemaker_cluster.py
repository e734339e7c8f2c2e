"""The cluster bootstrap's process side without starting Ray: host addresses, the head's wait for every host and its
report of the missing ones, the worker's serve loop and the head's end announcement against a stand-in GCS, and the
signal handlers Ray's shutdown resets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cluster_fakes import FakeGcs, FakeRayNode, head, keys, meet, node_with, publish

from sagemaker_rl import cluster
from sagemaker_rl.cluster import ClusterError, ClusterPlan, ClusterSettings, NodeInfo


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
