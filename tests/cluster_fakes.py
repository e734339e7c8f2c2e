"""Stand-ins for the cluster tests: a job's contract, an S3 rendezvous on a clock that moves only when the code
sleeps, a GCS and a Ray node in memory, and a formed cluster's Node built from them (no Ray, no network)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sagemaker_rl import contract as sm
from sagemaker_rl.cluster import ClusterPlan, ClusterSettings, Node, NodeInfo
from sagemaker_rl.rendezvous import HeadRecord, Rendezvous, S3Store


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
