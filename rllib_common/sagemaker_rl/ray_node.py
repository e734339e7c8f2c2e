"""One host's Ray node and the few GCS calls the bootstrap makes: process control, no cluster logic.

A node is a ``ray start --block`` subprocess, stopped by its process id — never ``ray stop``, which would stop every
Ray node of the machine — that dies with the entry point (``PR_SET_PDEATHSIG``). The head's GCS listens on
``$SM_RL_RAY_PORT`` (default 6379); every other port of a node is a free one picked at start, so several nodes (and
other Ray instances) share one machine; ``$SM_RL_RAY_START_ARGS`` adds ``ray start`` options. A host's address is
``$SM_RL_HOST_ADDRESSES`` (a JSON object host -> IP) when it names the host, else DNS (SageMaker's resolves ``algo-N``);
the local runner gives each simulated host its own loopback address that way. Every wait has a deadline.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass

from .cluster_plan import ClusterError, host_label
from .net import free_ports, tcp_answers
from .processes import die_with_parent, kill_all, wait_gone

DEFAULT_RAY_PORT = 6379
HOST_ADDRESSES_ENV = "SM_RL_HOST_ADDRESSES"  # {"algo-1": "127.0.0.2", ...}: wins over DNS (the local runner sets it)
RAY_PORT_ENV = "SM_RL_RAY_PORT"  # the head's GCS port (default 6379)
RAY_START_ARGS_ENV = "SM_RL_RAY_START_ARGS"  # extra `ray start` options, e.g. "--object-store-memory 300000000"
NODE_STARTUP_TIMEOUT_S = 180.0  # a node's own `ray start` until it is registered; distinct from waiting for peers
POLL_S = 1.0
KV_NAMESPACE = b"sagemaker_rl"
HOST_LABEL = "sm-host"  # Ray node labels: which host (and which job of a two-job cluster) a node is
JOB_LABEL = "sm-job"


# ---------------------------------------------------------------------------------------------------------- addresses
def resolve_host(host: str, environ: Mapping[str, str], deadline: float | None = None) -> str:
    """The IP address of a host of this job: ``$SM_RL_HOST_ADDRESSES`` first, then DNS (retried to ``deadline``)."""
    raw = environ.get(HOST_ADDRESSES_ENV)
    if raw:
        try:
            table = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ClusterError(f"${HOST_ADDRESSES_ENV} is not valid JSON: {exc}") from None
        if not isinstance(table, dict):
            raise ClusterError(f"${HOST_ADDRESSES_ENV} must be a JSON object host -> address, got {raw!r}")
        if host in table:
            return str(table[host])
    while True:
        try:
            return socket.gethostbyname(host)
        except OSError as exc:
            if deadline is None or time.monotonic() >= deadline:
                raise ClusterError(f"cannot resolve host {host!r} ({exc}); SageMaker's DNS names every host of a job "
                                   f"(algo-1, algo-2, ...), and ${HOST_ADDRESSES_ENV} can map names to IPs") from None
            time.sleep(POLL_S)



# ---------------------------------------------------------------------------------------------------------- Ray node
class RayNode:
    """One ``ray start --block`` subprocess: this host's Ray node, stopped by its process id (never ``ray stop``)."""

    def __init__(self, process: subprocess.Popen, ip: str) -> None:
        self.process = process
        self.ip = ip

    @classmethod
    def start(cls, *, ip: str, head_port: int | None, join: str | None, num_cpus: int, num_gpus: int,
              labels: Mapping[str, str], environ: Mapping[str, str]) -> RayNode:
        """Start a head (``head_port``) or a worker joining the GCS at ``join`` (``ip:port``)."""
        ports = free_ports(6)
        command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--node-ip-address", ip,
                   f"--num-cpus={num_cpus}", f"--num-gpus={num_gpus}", "--disable-usage-stats",
                   "--labels", ",".join(f"{k}={v}" for k, v in labels.items()),
                   # workers bind random free ports: no fixed range to collide with another node of this machine
                   "--min-worker-port=0", "--max-worker-port=0",
                   f"--node-manager-port={ports[0]}", f"--object-manager-port={ports[1]}",
                   f"--metrics-export-port={ports[2]}", f"--dashboard-agent-listen-port={ports[3]}",
                   f"--dashboard-agent-grpc-port={ports[4]}", f"--runtime-env-agent-port={ports[5]}"]
        if head_port is not None:
            command += ["--head", f"--port={head_port}", "--include-dashboard=false"]
            if _ray_client_installed():
                command.append(f"--ray-client-server-port={free_ports(1)[0]}")
        else:
            command += ["--address", str(join)]
        if environ.get("RAY_TMPDIR"):  # a worker node would otherwise use the head's temp folder path
            command.append(f"--temp-dir={os.path.join(environ['RAY_TMPDIR'], 'ray')}")
        command += shlex.split(environ.get(RAY_START_ARGS_ENV, ""))
        env = dict(environ)
        env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "0"  # we stop a node when its work is over: nothing to drain
        env["RAY_USAGE_STATS_ENABLED"] = "0"
        process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
        return cls(process, ip)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float = 20.0, force: bool = False) -> None:
        """SIGTERM (``ray start --block`` then stops its raylet, workers and GCS), SIGKILL what outlives it.

        ``force`` kills at once: for a node whose head is gone, whose raylet would wait on the GCS to deregister.
        """
        import psutil

        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        if force:
            kill_all(children)
            timeout_s = 0.0
        if self.alive():
            self.process.send_signal(signal.SIGKILL if force else signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        kill_all(wait_gone(children, 5.0))



def _ray_client_installed() -> bool:
    try:
        from ray._private.utils import get_ray_client_dependency_error

        return get_ray_client_dependency_error() is None
    except ImportError:
        return False


@dataclass(frozen=True)
class NodeInfo:
    """One Ray node as the GCS sees it."""

    ip: str
    label: str  # host label ("algo-2", "secondary/algo-1"); "" for a node this layer did not start
    alive: bool
    cpus: int
    gpus: int


class Gcs:
    """The few GCS calls the bootstrap needs, each with a timeout (a dead GCS raises instead of hanging).

    Create it only once the GCS answers TCP: Ray's client blocks ~40 s fetching the cluster id of a dead address.
    """

    def __init__(self, address: str) -> None:
        from ray._raylet import GcsClient

        self.address = address
        self.client = GcsClient(address=address)

    def nodes(self, timeout_s: float = 5.0) -> list[NodeInfo]:
        infos = self.client.get_all_node_info(timeout=timeout_s).values()
        out = []
        for info in infos:
            labels = dict(info.labels)
            label = host_label(labels.get(JOB_LABEL, ""), labels[HOST_LABEL]) if HOST_LABEL in labels else ""
            resources = dict(info.resources_total)
            out.append(NodeInfo(ip=info.node_manager_address, label=label, alive=info.state == 0,
                                cpus=int(resources.get("CPU", 0)), gpus=int(resources.get("GPU", 0))))
        return out

    def get(self, key: str, timeout_s: float = 3.0) -> bytes | None:
        return self.client.internal_kv_get(key.encode(), KV_NAMESPACE, timeout=timeout_s)

    def put(self, key: str, value: bytes, timeout_s: float = 3.0) -> None:
        self.client.internal_kv_put(key.encode(), value, True, KV_NAMESPACE, timeout=timeout_s)


def use_auth(token: str | None) -> dict[str, str]:
    """Set this process's Ray auth settings (inherited by ``ray start`` and used by ``ray.init``)."""
    settings = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token} if token else {"RAY_AUTH_MODE": "disabled"}
    os.environ.update(settings)
    if not token:
        os.environ.pop("RAY_AUTH_TOKEN", None)
    if "ray._raylet" in sys.modules:  # Ray read its config already: make it see the new settings
        try:
            from ray._raylet import AuthenticationTokenLoader, Config

            Config.initialize("")
            AuthenticationTokenLoader.instance().reset_cache()
        except (ImportError, AttributeError):
            pass
    return settings



def env_port(environ: Mapping[str, str]) -> int:
    raw = environ.get(RAY_PORT_ENV, str(DEFAULT_RAY_PORT))
    try:
        port = int(raw)
    except ValueError:
        raise ClusterError(f"${RAY_PORT_ENV} must be a port number, got {raw!r}") from None
    if not 1024 <= port <= 65535:
        raise ClusterError(f"${RAY_PORT_ENV} must be between 1024 and 65535, got {port}")
    return port


def wait_for_gcs(ray_node: RayNode, address: str, label: str) -> Gcs:
    deadline = time.monotonic() + NODE_STARTUP_TIMEOUT_S
    while not tcp_answers(address, 1.0):
        check_started(ray_node, label, deadline, f"the head's GCS at {address} to answer")
        time.sleep(0.2)
    return Gcs(address)


def wait_for_node(gcs: Gcs, ray_node: RayNode, label: str) -> None:
    """Until this host's own node is registered and alive (its `ray start` finished starting)."""
    deadline = time.monotonic() + NODE_STARTUP_TIMEOUT_S
    while True:
        try:
            if any(n.alive and n.label == label and n.ip == ray_node.ip for n in gcs.nodes()):
                return
        except Exception:  # noqa: BLE001 - keep waiting until the deadline
            pass
        check_started(ray_node, label, deadline, f"this host's Ray node ({ray_node.ip}) to register")
        time.sleep(0.5)


def check_started(ray_node: RayNode, label: str, deadline: float, what: str) -> None:
    if not ray_node.alive():
        raise ClusterError(f"{label}: `ray start` exited with code {ray_node.process.returncode} while waiting for "
                           f"{what}; its messages are above in this host's log")
    if time.monotonic() >= deadline:
        raise ClusterError(f"{label}: timed out after {NODE_STARTUP_TIMEOUT_S:g} s waiting for {what}")


def head_session(gcs: Gcs, ray_node: RayNode, label: str) -> str:
    deadline = time.monotonic() + NODE_STARTUP_TIMEOUT_S
    while True:
        try:
            raw = gcs.get("session")
            if raw:
                return raw.decode()
        except Exception:  # noqa: BLE001 - keep waiting until the deadline
            pass
        check_started(ray_node, label, deadline, "the head's session id in the GCS")
        time.sleep(0.5)



def reassert_signal_handlers(signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)) -> None:
    """Give the process's Python signal handlers back to the kernel.

    ``ray.shutdown()`` resets the SIGTERM action to the default behind Python's back (``signal.getsignal`` still
    names the Python handler): a SIGTERM then (docker-compose stopping the job as it ends, a spot interruption) would
    kill the process mid-exit. Call this after it.
    """
    for sig in signals:
        handler = signal.getsignal(sig)
        if handler is not None:
            signal.signal(sig, handler)

