"""A host's life in a formed Ray cluster: the :class:`Node` that ``cluster.bootstrap`` returns.

The head trains and then calls :meth:`Node.finish` (workers leave, its node stops); a watchdog fails the job fast when
a worker host's node dies during training, rather than go on with fewer env runners. A worker calls
:meth:`Node.serve_until_done`: its node serves until the head announces the end, and it fails with a clear message
when the head stays unreachable for ``rl_head_lost_timeout_s``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from . import contract as sm
from .cluster_plan import ClusterError, ClusterPlan, ClusterSettings
from .ray_node import POLL_S, Gcs, RayNode, reassert_signal_handlers
from .rendezvous import Rendezvous

LEAVE_TIMEOUT_S = 30.0  # how long the head waits for workers to acknowledge the end before stopping its node


@dataclass
class Node:
    """This host's place in the cluster, returned by :func:`bootstrap`."""

    contract: sm.Contract
    settings: ClusterSettings
    plan: ClusterPlan
    address: str | None  # the GCS "ip:port" to ray.init(); None on a plain single host (a local Ray)
    num_gpus: int  # GPUs of the head, for the learner
    cpus_by_host: dict[str, int]  # host label -> CPUs its node offers to Ray
    addresses: dict[str, str] = field(default_factory=dict)  # node IP -> host label
    ray_node: RayNode | None = None
    gcs: Gcs | None = None
    rendezvous: Rendezvous | None = None
    session: str = ""
    auth: str = "off"  # where the nodes got the Ray auth token (rendezvous.AUTH_MODES); never the token itself
    members: tuple[str, ...] = ()  # head: the labels of every host that joined, head first
    _finished: bool = field(default=False, repr=False)
    _watchdog_stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def is_head(self) -> bool:
        return self.plan.is_head

    @property
    def host(self) -> str:
        return self.plan.label

    @property
    def workers(self) -> tuple[str, ...]:
        """Head: the labels of the other hosts of the cluster (those that joined, once they have)."""
        return tuple(h for h in (self.members or self.plan.expected) if h != self.plan.label)

    @property
    def num_env_runners(self) -> int:
        """Every CPU of the cluster but one, which the driver (and its local learner) keeps; at least one.

        Two 1-CPU hosts get one runner (the head's CPU is the driver's); a lone 1-CPU host gets one runner, which
        shares the CPU with the driver rather than sample inside it.
        """
        return max(1, sum(self.cpus_by_host.values()) - 1)

    def host_of_address(self, ip: str) -> str:
        """The host label of a node IP (where an env runner ran). Raises :class:`ClusterError` for an unknown IP."""
        if self.address is None:
            return self.plan.label  # one host: every local address is this host
        if ip not in self.addresses and self.gcs is not None:
            try:
                self.addresses.update({n.ip: n.label for n in self.gcs.nodes() if n.label})
            except Exception:  # noqa: BLE001 - the GCS may be gone at the end; the error below says enough
                pass
        if ip not in self.addresses:
            known = ", ".join(f"{a}={h}" for a, h in sorted(self.addresses.items()))
            raise ClusterError(f"no host of this cluster has address {ip!r} (known: {known})")
        return self.addresses[ip]

    # -------------------------------------------------------------------------------------------- the head's side
    def finish(self, success: bool = True, reason: str = "") -> None:
        """Head: announce the end (workers and the secondary job leave), then stop this node. Safe to call twice."""
        with self._lock:
            if self._finished or not self.is_head:
                return
            self._finished = True
        self._watchdog_stop.set()
        if "ray" in sys.modules:
            import ray

            if ray.is_initialized():
                ray.shutdown()  # before the node goes: a driver whose raylet dies is killed with it
                reassert_signal_handlers()
        if self.ray_node is None:
            return
        workers = list(self.workers)
        self._announce_end(success, reason)
        deadline = time.monotonic() + LEAVE_TIMEOUT_S
        while workers and time.monotonic() < deadline:
            try:
                alive = {n.label for n in self.gcs.nodes() if n.alive} if self.gcs else set()
                workers = [h for h in workers if h in alive and self.gcs.get(f"left/{h}") is None]
            except Exception:  # noqa: BLE001 - nothing more to wait for when the GCS is gone
                break
            time.sleep(0.5)
        log(self.plan.label, f"training ended ({'success' if success else 'failure'}); "
             + (f"stopping with {len(workers)} worker(s) still not gone: {', '.join(workers)}" if workers
                else "every worker left; stopping the head node"))
        self.ray_node.stop()

    def _announce_end(self, success: bool, reason: str) -> None:
        record = json.dumps({"session": self.session, "success": success, "reason": reason[:2000]}).encode()
        try:
            if self.gcs is not None:
                self.gcs.put("done", record)
        except Exception as exc:  # noqa: BLE001 - S3 (if any) still carries the announcement
            log(self.plan.label, f"could not announce the end in the GCS: {exc}")
        if self.rendezvous is not None:
            try:
                self.rendezvous.announce_done(self.session, success, reason)
            except Exception as exc:  # noqa: BLE001 - workers still leave when the head is gone
                log(self.plan.label, f"could not announce the end at "
                     f"{self.rendezvous.url(self.rendezvous.done_key())}: {exc}")
        self._delete_token()

    def _delete_token(self) -> None:
        """Head: remove the published Ray token (no host needs it once all joined, nor after the end)."""
        if self.rendezvous is None or self.auth != "published":
            return
        try:
            self.rendezvous.delete_token()
        except Exception as exc:  # noqa: BLE001 - the token dies with the cluster anyway; say what is left
            log(self.plan.label, f"could not delete the Ray token record "
                 f"{self.rendezvous.url(self.rendezvous.token_key())}: {exc}; delete it by hand")

    def _watch_workers(self) -> None:
        """Head, during training: a worker host whose node dies fails the job at once, with the host's name."""
        workers = set(self.workers)
        while not self._watchdog_stop.wait(2.0):
            try:
                nodes = self.gcs.nodes()
            except Exception:  # noqa: BLE001 - a slow GCS answer is no lost host
                continue
            alive = {n.label for n in nodes if n.alive}
            lost = sorted(workers - alive)
            if lost and not self._watchdog_stop.is_set():
                where = {n.label: n.ip for n in nodes}
                names = ", ".join(f"{h} ({where.get(h, '?')})" for h in lost)
                self._fail_fast(f"Ray node of host {names} left the cluster during training (host lost, or its "
                                "processes were killed). The job stops instead of continuing with fewer env runners; "
                                "resume from the last checkpoint.")
                return

    def _fail_fast(self, message: str) -> None:
        with self._lock:
            if self._finished:
                return
            self._finished = True
        log(self.plan.label, "error: " + message)
        sm.write_failure(self.contract, message)
        self._announce_end(False, message)
        if self.ray_node is not None:
            self.ray_node.stop(timeout_s=10)
        sm.write_failure(self.contract, message)  # again: the training loop may have written its own error meanwhile
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)

    # -------------------------------------------------------------------------------------------- a worker's side
    def serve_until_done(self, poll_s: float = POLL_S) -> int:
        """Worker: keep this host's node up until the head announces the end.

        Returns 0 when the head ends with success; 1 (with ``output/failure`` written) when it ends with a failure,
        when it stays unreachable for ``rl_head_lost_timeout_s``, or when this host's own node dies.
        """
        if self.is_head:
            raise ClusterError("serve_until_done is for worker hosts; the head trains and then calls finish()")
        assert self.ray_node is not None and self.gcs is not None
        last_contact = time.monotonic()
        ended: dict[str, Any] | None = None
        failure = ""
        while True:
            if not self.ray_node.alive():
                failure = (f"this host's Ray node exited (code {self.ray_node.process.returncode}) before the head "
                           "announced the end of training; see this host's log")
                break
            try:
                raw = self.gcs.get("done")
                last_contact = time.monotonic()
                if raw:
                    record = json.loads(raw)
                    if record.get("session") == self.session:
                        ended = record
                        break
            except Exception:  # noqa: BLE001 - an unreachable GCS: the head may be gone
                if self.rendezvous is not None:
                    try:
                        ended = self.rendezvous.done(self.session)
                    except Exception:  # noqa: BLE001 - S3 trouble: keep counting towards the head-lost timeout
                        ended = None
                    if ended is not None:
                        break
                silent = time.monotonic() - last_contact
                if silent >= self.settings.head_lost_timeout_s:
                    failure = (f"the Ray head ({self.address}) has been unreachable for {silent:.0f} s "
                               f"(rl_head_lost_timeout_s={self.settings.head_lost_timeout_s:g}) without announcing "
                               "the end of training: the head host failed or was stopped; see its log")
                    break
            time.sleep(poll_s)
        if ended is not None:
            try:
                self.gcs.put(f"left/{self.plan.label}", b"1", timeout_s=2.0)
            except Exception:  # noqa: BLE001 - the head stops soon anyway
                pass
            if not ended.get("success"):
                failure = f"the head ended training with a failure: {ended.get('reason') or 'see its log'}"
        if failure:  # reported first: stopping a node whose head is gone can take a while
            log(self.plan.label, "error: " + failure)
            sm.write_failure(self.contract, failure)
        else:
            log(self.plan.label, "the head announced the end of training; leaving")
        self.ray_node.stop(timeout_s=10, force=ended is None)
        return 1 if failure else 0


def log(host: str, message: str) -> None:
    print(f"[sagemaker_rl.cluster {host}] {message}", file=sys.stderr, flush=True)
