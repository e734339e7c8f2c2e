"""Ray cluster bootstrap for SageMaker training jobs: one Ray node per host, one head, workers that serve until the end.

How to use (the entry point's side)::

    from sagemaker_rl import contract as sm, cluster
    c = sm.load()
    settings, training_hps = cluster.ClusterSettings.from_hyperparameters(c.hyperparameters)
    node = cluster.bootstrap(c, settings)       # head: returns once every expected host's node joined
    if not node.is_head:
        sys.exit(node.serve_until_done())       # worker: 0 when the head announces a good end
    ray.init(address=node.address)              # None on a plain single host: a local Ray
    ...  node.num_env_runners, node.num_gpus, node.host_of_address(ip)
    node.finish(success=True)                   # workers leave, the head's node stops

Cluster modes (``rl_cluster_type``):

- ``auto``: one host is a plain local Ray (no node started here); several hosts of one job are a homogeneous cluster
  whose head is the first host in sorted order (``algo-2`` before ``algo-10``); a job with several instance groups is
  a native heterogeneous cluster whose head is the first host of the group ``rl_head_instance_group`` names.
- ``primary`` / ``secondary``: two jobs (e.g. a GPU job and a CPU job) meet through an S3 rendezvous
  (:mod:`sagemaker_rl.rendezvous`): the primary's first host is the head, every other host of both jobs joins it.

Hosts find each other by name (SageMaker's DNS resolves ``algo-N``); ``$SM_RL_HOST_ADDRESSES`` (a JSON object host ->
IP) wins over DNS, which is how the local runner gives each simulated host its own loopback address. The head's Ray
port is ``$SM_RL_RAY_PORT`` (default 6379); every other port of a node is a free one picked at start, so several
nodes (and other Ray instances) share one machine. ``$SM_RL_RAY_START_ARGS`` adds options to ``ray start``.

Ray auth token (Ray 2.60 turns token auth on by default; every node of one cluster needs the same token), in order:
``$RAY_AUTH_TOKEN`` when the environment sets it (every host of the run must then have it; it is never published);
with an S3 rendezvous and a rendezvous secret (``$SM_RL_RENDEZVOUS_SECRET``, the same in every job of the run, as
``battlesnake-rl sagemaker launch`` gives them) a token every node derives from the secret and the head's session,
never stored; with an S3 rendezvous and no secret a random token published in ``token.json`` beside the head record
and deleted as soon as every host has joined (and at the end); otherwise (one job, no ``s3_bucket``) token auth is off
and the cluster relies on the job's private network, which SageMaker does not share with other jobs. The token never
appears in a log line or a repr. Nodes are started with ``ray start --block`` subprocesses and stopped by their
process id — never ``ray stop``, which would stop every Ray node of the machine.

Resources (the blog post's ``rl.training.config.*`` hyperparameters, taken here, not by the entry point):
:func:`plan_rollouts` turns ``num_workers`` (env runners), ``num_cpus`` (CPUs for env runners, one each; the driver
keeps one more) and ``num_gpus`` (the learner's) into what the cluster can run, adjusting (and logging) a request for
more env runners than the cluster's CPUs and refusing more GPUs than the head has.

Faults: every wait has a deadline and a message naming what was missing; a worker leaves with a failure when the head
is unreachable for ``rl_head_lost_timeout_s``; the head fails fast (writes ``output/failure``, tells the other hosts,
exits 1) when a worker host's node dies during training, rather than go on with fewer env runners.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import contract as sm
from .rendezvous import SECRET_ENV, HeadRecord, Rendezvous, RendezvousTimeout, S3Store, check_secret

CLUSTER_TYPES = ("auto", "primary", "secondary")
SECONDARY = "secondary/"  # label prefix of the secondary job's hosts
DEFAULT_RAY_PORT = 6379
HOST_ADDRESSES_ENV = "SM_RL_HOST_ADDRESSES"  # {"algo-1": "127.0.0.2", ...}: wins over DNS (the local runner sets it)
RAY_PORT_ENV = "SM_RL_RAY_PORT"  # the head's GCS port (default 6379)
RAY_START_ARGS_ENV = "SM_RL_RAY_START_ARGS"  # extra `ray start` options, e.g. "--object-store-memory 300000000"
NODE_STARTUP_TIMEOUT_S = 180.0  # a node's own `ray start` until it is registered; distinct from waiting for peers
LEAVE_TIMEOUT_S = 30.0  # how long the head waits for workers to acknowledge the end before stopping its node
POLL_S = 1.0
KV_NAMESPACE = b"sagemaker_rl"
HOST_LABEL = "sm-host"  # Ray node labels: which host (and which job of a two-job cluster) a node is
JOB_LABEL = "sm-job"


class ClusterError(RuntimeError):
    """The cluster could not be formed or kept: a missing host, a timeout, a bad setting. The message says which."""


# ---------------------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class ClusterSettings:
    """The platform hyperparameters: how this job's hosts form one Ray cluster."""

    cluster_type: str = "auto"  # rl_cluster_type: auto | primary | secondary
    head_instance_group: str | None = None  # rl_head_instance_group: the group whose first host is the head
    num_instances_secondary: int = 0  # rl_num_instances_secondary: hosts of the secondary job (primary only)
    s3_bucket: str | None = None  # s3_bucket: the rendezvous bucket (two-job clusters; optional otherwise)
    s3_prefix: str = ""  # s3_prefix: the rendezvous folder in that bucket
    run_id: str | None = None  # rl_run_id: the same fresh value in both jobs of one run
    rendezvous_timeout_s: float = 600.0  # rl_rendezvous_timeout_s: how long hosts wait for each other to join
    head_lost_timeout_s: float = 60.0  # rl_head_lost_timeout_s: how long a worker waits for an unreachable head
    aws_region: str | None = None  # aws_region: the region of the S3 rendezvous client (default: boto3's)
    num_workers: int | None = None  # rl.training.config.num_workers: env runners (the blog post's rollout workers)
    num_cpus: int | None = None  # rl.training.config.num_cpus: CPUs for env runners (one each); the driver keeps one
    num_gpus: float | None = None  # rl.training.config.num_gpus: GPUs for the learner (at most the head's)

    KEYS = {"rl_cluster_type": "cluster_type", "rl_head_instance_group": "head_instance_group",
            "rl_num_instances_secondary": "num_instances_secondary", "s3_bucket": "s3_bucket",
            "s3_prefix": "s3_prefix", "rl_run_id": "run_id", "rl_rendezvous_timeout_s": "rendezvous_timeout_s",
            "rl_head_lost_timeout_s": "head_lost_timeout_s", "aws_region": "aws_region",
            "rl.training.config.num_workers": "num_workers", "rl.training.config.num_cpus": "num_cpus",
            "rl.training.config.num_gpus": "num_gpus"}

    def __post_init__(self) -> None:
        if self.cluster_type not in CLUSTER_TYPES:
            raise ClusterError(f"rl_cluster_type must be one of {', '.join(CLUSTER_TYPES)}, got {self.cluster_type!r}")
        for name in ("rendezvous_timeout_s", "head_lost_timeout_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
                raise ClusterError(f"rl_{name} must be a positive number of seconds, got {value!r}")
        if not isinstance(self.num_instances_secondary, int) or isinstance(self.num_instances_secondary, bool) \
                or self.num_instances_secondary < 0:
            raise ClusterError(f"rl_num_instances_secondary must be a whole number >= 0, "
                               f"got {self.num_instances_secondary!r}")
        for name in ("head_instance_group", "s3_bucket", "run_id", "aws_region"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ClusterError(f"{_key_of(name)} must be a non-empty string, got {value!r}")
        if not isinstance(self.s3_prefix, str):
            raise ClusterError(f"s3_prefix must be a string, got {self.s3_prefix!r}")
        if self.run_id is not None and "/" in self.run_id:
            raise ClusterError(f"rl_run_id must not contain '/', got {self.run_id!r}")
        if self.aws_region is not None and not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d+", self.aws_region):
            raise ClusterError(f"aws_region must be an AWS region name like us-east-1, got {self.aws_region!r}")
        for name, least in (("num_workers", 0), ("num_cpus", 1)):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
                raise ClusterError(f"{_key_of(name)} must be a whole number >= {least}, got {value!r}")
        if self.num_gpus is not None and (isinstance(self.num_gpus, bool) or not isinstance(self.num_gpus, int | float)
                                          or not self.num_gpus >= 0):
            raise ClusterError(f"rl.training.config.num_gpus must be a number >= 0, got {self.num_gpus!r}")
        if self.cluster_type in ("primary", "secondary") and self.s3_bucket is None:
            raise ClusterError(f"rl_cluster_type={self.cluster_type} meets the other job through S3: set s3_bucket "
                               f"(and s3_prefix; the same values in both jobs)")
        if self.cluster_type == "primary" and self.num_instances_secondary < 1:
            raise ClusterError("rl_cluster_type=primary needs rl_num_instances_secondary >= 1 (the secondary job's "
                               "instance count), got " + str(self.num_instances_secondary))
        if self.cluster_type != "primary" and self.num_instances_secondary:
            raise ClusterError(f"rl_num_instances_secondary is for rl_cluster_type=primary only "
                               f"(this job is {self.cluster_type!r})")

    @classmethod
    def from_hyperparameters(cls, hyperparameters: Mapping[str, Any]) -> tuple[ClusterSettings, dict[str, Any]]:
        """Split decoded hyperparameters into these settings and the rest (the training's own, untouched)."""
        values: dict[str, Any] = {}
        rest: dict[str, Any] = {}
        for key, value in hyperparameters.items():
            if key in cls.KEYS:
                values[cls.KEYS[key]] = value
            else:
                rest[key] = value
        for name in ("rendezvous_timeout_s", "head_lost_timeout_s", "num_instances_secondary", "num_workers",
                     "num_cpus", "num_gpus"):
            if isinstance(values.get(name), str):  # a console-typed "600" that was not JSON-decoded
                try:
                    values[name] = float(values[name]) if name.endswith(("_s", "gpus")) else int(values[name])
                except ValueError:
                    raise ClusterError(f"{_key_of(name)} must be a number, got {values[name]!r}") from None
        for name in ("head_instance_group", "s3_bucket", "s3_prefix", "run_id"):
            if name in values and isinstance(values[name], int | float) and not isinstance(values[name], bool):
                values[name] = str(values[name])  # JSON decoding turned a numeric-looking name into a number
        if values.get("s3_prefix") is None:
            values.pop("s3_prefix", None)
        return cls(**values), rest


def _key_of(field_name: str) -> str:
    return next(key for key, name in ClusterSettings.KEYS.items() if name == field_name)


# ---------------------------------------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class ClusterPlan:
    """Who is the head and who is expected, decided from the contract and settings alone (no network)."""

    mode: str  # "single" | "homogeneous" | "heterogeneous" | "primary" | "secondary"
    host: str  # this host's name in the job (algo-N)
    job: str  # "primary" | "secondary" for two-job clusters, "" otherwise
    is_head: bool
    head_host: str | None  # the head's host name in this job; None in a secondary job (learned through S3)
    expected: tuple[str, ...]  # labels of this job's hosts in the Ray cluster, head first (as the head counts them)
    uses_s3: bool  # the head record, auth token and end announcement go through the S3 rendezvous
    secondary_hosts: int = 0  # primary: how many hosts of the secondary job must join too (their names are theirs)
    slot: int = 1  # this host's place in its job, from 1 (algo-N, or algo-N-xxxxx in SDK local mode: N)

    @property
    def label(self) -> str:
        return host_label(self.job, self.host)


def host_label(job: str, host: str) -> str:
    """How a host is named in reports: ``algo-1``, or ``secondary/algo-1`` for the secondary job's hosts."""
    return f"{SECONDARY}{host}" if job == "secondary" else host


def plan(contract: sm.Contract, settings: ClusterSettings) -> ClusterPlan:
    """Decide this host's role. Raises :class:`ClusterError` for settings that do not fit the job's hosts."""
    hosts = contract.hosts
    if settings.cluster_type == "secondary":
        if settings.head_instance_group:
            raise ClusterError("rl_head_instance_group is for the primary job: the head is never in the secondary job")
        return ClusterPlan(mode="secondary", host=contract.current_host, job="secondary", is_head=False,
                           head_host=None, expected=tuple(host_label("secondary", h) for h in hosts), uses_s3=True,
                           slot=sm.host_slot(contract))

    groups = [g for g in contract.instance_groups if g.hosts]
    if settings.head_instance_group is not None:
        try:
            head_group = contract.hosts_of_group(settings.head_instance_group)
        except sm.ContractError as exc:
            raise ClusterError(f"rl_head_instance_group: {exc}") from None
        if not head_group:
            raise ClusterError(f"rl_head_instance_group {settings.head_instance_group!r} has no hosts")
        head = head_group[0]
    elif len(groups) > 1:
        names = ", ".join(f"{g.name} ({g.instance_type or '?'} x{len(g.hosts)})" for g in groups)
        raise ClusterError(f"this job has several instance groups ({names}): set rl_head_instance_group to the group "
                           "whose first host should be the Ray head (the learner's, e.g. the GPU group)")
    else:
        head = hosts[0]
    ordered = (head, *(h for h in hosts if h != head))

    if settings.cluster_type == "primary":
        # the secondary job's host names are its own (algo-N, or algo-N-xxxxx in SDK local mode): counted, not named
        return ClusterPlan(mode="primary", host=contract.current_host, job="primary",
                           is_head=contract.current_host == head, head_host=head, expected=ordered, uses_s3=True,
                           secondary_hosts=settings.num_instances_secondary, slot=sm.host_slot(contract))
    if len(hosts) == 1:
        mode = "single"
    else:
        mode = "heterogeneous" if len(groups) > 1 else "homogeneous"
    return ClusterPlan(mode=mode, host=contract.current_host, job="", is_head=contract.current_host == head,
                       head_host=head, expected=ordered, uses_s3=mode != "single" and settings.s3_bucket is not None,
                       slot=sm.host_slot(contract))


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


def tcp_answers(address: str, timeout_s: float = 2.0) -> bool:
    """Whether something accepts TCP connections at ``ip:port``."""
    ip, _, port = address.rpartition(":")
    try:
        with socket.create_connection((ip, int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def free_ports(count: int) -> list[int]:
    """Free TCP ports (on every address) for the servers of a Ray node."""
    # Hold every socket until all are picked so the picks differ; bound on all addresses, as Ray binds some servers.
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


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
        process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
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
            for proc in children:
                try:
                    proc.kill()
                except psutil.NoSuchProcess:
                    pass
            timeout_s = 0.0
        if self.alive():
            self.process.send_signal(signal.SIGKILL if force else signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        for proc in wait_gone(children, 5.0):
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass


def wait_gone(procs: list, timeout_s: float) -> list:
    """Wait until these ``psutil`` processes have exited; the ones still running at the timeout.

    A zombie counts as gone: an orphan's zombie stays until PID 1 reaps it, which some containers never do.
    """
    import psutil

    deadline = time.monotonic() + timeout_s
    while True:
        running = []
        for proc in procs:
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    running.append(proc)
            except psutil.NoSuchProcess:
                pass
        if not running or time.monotonic() >= deadline:
            return running
        time.sleep(0.1)


def _die_with_parent() -> None:
    # Linux: the node gets SIGTERM when the entry point dies, as a container's processes die with it.
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


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


def _use_auth(token: str | None) -> dict[str, str]:
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


# ---------------------------------------------------------------------------------------------------------- the node
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
        _log(self.plan.label, f"training ended ({'success' if success else 'failure'}); "
             + (f"stopping with {len(workers)} worker(s) still not gone: {', '.join(workers)}" if workers
                else "every worker left; stopping the head node"))
        self.ray_node.stop()

    def _announce_end(self, success: bool, reason: str) -> None:
        record = json.dumps({"session": self.session, "success": success, "reason": reason[:2000]}).encode()
        try:
            if self.gcs is not None:
                self.gcs.put("done", record)
        except Exception as exc:  # noqa: BLE001 - S3 (if any) still carries the announcement
            _log(self.plan.label, f"could not announce the end in the GCS: {exc}")
        if self.rendezvous is not None:
            try:
                self.rendezvous.announce_done(self.session, success, reason)
            except Exception as exc:  # noqa: BLE001 - workers still leave when the head is gone
                _log(self.plan.label, f"could not announce the end at "
                     f"{self.rendezvous.url(self.rendezvous.done_key())}: {exc}")
        self._delete_token()

    def _delete_token(self) -> None:
        """Head: remove the published Ray token (no host needs it once all joined, nor after the end)."""
        if self.rendezvous is None or self.auth != "published":
            return
        try:
            self.rendezvous.delete_token()
        except Exception as exc:  # noqa: BLE001 - the token dies with the cluster anyway; say what is left
            _log(self.plan.label, f"could not delete the Ray token record "
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
        _log(self.plan.label, "error: " + message)
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
            _log(self.plan.label, "error: " + failure)
            sm.write_failure(self.contract, failure)
        else:
            _log(self.plan.label, "the head announced the end of training; leaving")
        self.ray_node.stop(timeout_s=10, force=ended is None)
        return 1 if failure else 0


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


def _log(host: str, message: str) -> None:
    print(f"[sagemaker_rl.cluster {host}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------- bootstrap
def bootstrap(contract: sm.Contract, settings: ClusterSettings) -> Node:
    """Start or join this host's Ray node.

    The head returns once every expected host's node has joined; a worker returns once its own node has joined (then
    call :meth:`Node.serve_until_done`). Raises :class:`ClusterError` with a clear message at any deadline.
    """
    the_plan = plan(contract, settings)
    environ = dict(os.environ) | dict(contract.environment)
    if the_plan.mode == "single":
        return Node(contract=contract, settings=settings, plan=the_plan, address=None, num_gpus=contract.num_gpus,
                    cpus_by_host={the_plan.label: contract.num_cpus})
    rendezvous = _rendezvous(settings, the_plan, environ) if the_plan.uses_s3 else None
    deadline = time.monotonic() + settings.rendezvous_timeout_s
    my_ip = resolve_host(contract.current_host, environ, deadline)
    labels = {HOST_LABEL: contract.current_host, **({JOB_LABEL: the_plan.job} if the_plan.job else {})}
    if the_plan.is_head:
        return _start_head(contract, settings, the_plan, rendezvous, my_ip, labels, environ, deadline)
    return _join(contract, settings, the_plan, rendezvous, my_ip, labels, environ, deadline)


def _rendezvous(settings: ClusterSettings, the_plan: ClusterPlan, environ: Mapping[str, str]) -> Rendezvous:
    """The run's records: under ``rl_run_id`` when given; two jobs without one meet at the prefix itself (one job
    falls back on its own ``$TRAINING_JOB_NAME``, which all its hosts share)."""
    two_jobs = the_plan.mode in ("primary", "secondary")
    run_id = settings.run_id or (None if two_jobs else environ.get("TRAINING_JOB_NAME"))
    if not run_id and not two_jobs:
        raise ClusterError("an S3 rendezvous of one job needs rl_run_id (or $TRAINING_JOB_NAME, which SageMaker sets)")
    if settings.s3_bucket is None:
        raise ClusterError("an S3 rendezvous needs s3_bucket")
    try:
        secret = check_secret(environ.get(SECRET_ENV))
    except ValueError as exc:
        raise ClusterError(str(exc)) from None
    return Rendezvous(S3Store(settings.s3_bucket, settings.s3_prefix, region=settings.aws_region), run_id,
                      secret=secret)


def _start_head(contract: sm.Contract, settings: ClusterSettings, the_plan: ClusterPlan,
                rendezvous: Rendezvous | None, ip: str, labels: dict[str, str], environ: dict[str, str],
                deadline: float) -> Node:
    session = uuid.uuid4().hex
    token, auth = _head_token(rendezvous, session, environ)
    environ |= _use_auth(token)
    _log(the_plan.label, {
        "environment": "Ray token auth is on, with the token from $RAY_AUTH_TOKEN (never published: every host "
                       "needs it in its environment)",
        "derived": "Ray token auth is on, with a token every node derives from the rendezvous secret "
                   f"(${SECRET_ENV}) and this head's session: stored nowhere",
        "published": "Ray token auth is on, with a token from this head, shared through the S3 rendezvous (no "
                     f"${SECRET_ENV}): readable by whoever may read the prefix until every host has joined, then "
                     "deleted",
        "off": "Ray token auth is off: no $RAY_AUTH_TOKEN and no S3 rendezvous to share one through (set s3_bucket "
               "to turn it on); the cluster relies on the job's private network",
    }[auth])
    if rendezvous is not None and not rendezvous.signed:
        _log(the_plan.label, f"the rendezvous records are not signed (no ${SECRET_ENV}): hosts trust any head record "
             f"under {rendezvous.url('')} that answers, i.e. whoever may write that prefix")
    port = _env_port(environ)
    address = f"{ip}:{port}"
    if tcp_answers(address, 1.0):
        raise ClusterError(f"something already listens at {address}: set ${RAY_PORT_ENV} to a free port")
    secondary = f" + {the_plan.secondary_hosts} of the secondary job" if the_plan.secondary_hosts else ""
    _log(the_plan.label, f"starting the Ray head at {address} ({the_plan.mode} cluster of "
         f"{len(the_plan.expected) + the_plan.secondary_hosts} hosts: {', '.join(the_plan.expected)}{secondary})")
    ray_node = RayNode.start(ip=ip, head_port=port, join=None, num_cpus=contract.num_cpus, num_gpus=contract.num_gpus,
                             labels=labels, environ=environ)
    node = Node(contract=contract, settings=settings, plan=the_plan, address=address, num_gpus=contract.num_gpus,
                cpus_by_host={}, ray_node=ray_node, rendezvous=rendezvous, session=session, auth=auth)
    try:
        node.gcs = _wait_for_gcs(ray_node, address, the_plan.label)
        _wait_for_node(node.gcs, ray_node, the_plan.label)
        node.gcs.put("session", node.session.encode())  # workers of this job match the end announcement against it
        if rendezvous is not None:
            if auth == "published":  # before the head record: a host that finds the head finds its token
                rendezvous.publish_token(session, token)
            rendezvous.publish_head(HeadRecord(address=address, host=the_plan.label, session=session, auth=auth,
                                               written_at=time.time()))
            _log(the_plan.label, f"published the head record at {rendezvous.url(rendezvous.head_key())}"
                 + (" (signed)" if rendezvous.signed else ""))
        nodes = _wait_for_hosts(node.gcs, ray_node, the_plan, rendezvous, settings, deadline)
        if auth == "published":
            node._delete_token()
            _log(the_plan.label, f"every host has joined: deleted the Ray token record "
                 f"{rendezvous.url(rendezvous.token_key())}")
    except BaseException as exc:
        if node.gcs is not None:  # hosts that did join leave now, with the reason, instead of waiting for the head
            node._announce_end(False, f"the head could not form the cluster: {exc}")
        else:
            node._delete_token()
        ray_node.stop()
        raise
    node.cpus_by_host = {n.label: n.cpus for n in nodes}
    node.addresses = {n.ip: n.label for n in nodes}
    node.members = tuple(n.label for n in nodes)
    _log(the_plan.label, "every host joined: " + ", ".join(f"{n.label}={n.ip} ({n.cpus} CPU, {n.gpus} GPU)"
                                                           for n in nodes))
    threading.Thread(target=node._watch_workers, name="sagemaker_rl-watchdog", daemon=True).start()
    atexit.register(node.finish, False, "the entry point exited without calling finish()")
    return node


def _join(contract: sm.Contract, settings: ClusterSettings, the_plan: ClusterPlan, rendezvous: Rendezvous | None,
          ip: str, labels: dict[str, str], environ: dict[str, str], deadline: float) -> Node:
    session = ""
    if rendezvous is not None:
        rendezvous.announce_host(the_plan.job or "job", the_plan.slot, contract.current_host, ip)
        remaining = max(0.0, deadline - time.monotonic())
        _log(the_plan.label, f"waiting up to {remaining:.0f} s for the head record at "
             f"{rendezvous.url(rendezvous.head_key())}" + ("" if rendezvous.signed else
                                                            f" (unsigned: no ${SECRET_ENV})"))
        try:
            head, token = rendezvous.wait_for_head(remaining, lambda record: tcp_answers(record.address),
                                                   env_token=environ.get("RAY_AUTH_TOKEN"),
                                                   log=lambda message: _log(the_plan.label, message))
        except RendezvousTimeout as exc:
            raise ClusterError(str(exc)) from None
        address, session = head.address, head.session
    else:
        assert the_plan.head_host is not None
        address = f"{resolve_host(the_plan.head_host, environ, deadline)}:{_env_port(environ)}"
        _log(the_plan.label, f"waiting for the Ray head {the_plan.head_host} at {address}")
        while not tcp_answers(address):
            if time.monotonic() >= deadline:
                raise ClusterError(f"the Ray head {the_plan.head_host} ({address}) did not accept connections within "
                                   f"{settings.rendezvous_timeout_s:g} s (rl_rendezvous_timeout_s); see its log")
            time.sleep(POLL_S)
        token = environ.get("RAY_AUTH_TOKEN")
    environ |= _use_auth(token)
    _log(the_plan.label, f"joining the Ray head at {address}")
    ray_node = RayNode.start(ip=ip, head_port=None, join=address, num_cpus=contract.num_cpus,
                             num_gpus=contract.num_gpus, labels=labels, environ=environ)
    node = Node(contract=contract, settings=settings, plan=the_plan, address=address, num_gpus=0, cpus_by_host={},
                ray_node=ray_node, rendezvous=rendezvous, session=session)
    try:
        node.gcs = Gcs(address)
        _wait_for_node(node.gcs, ray_node, the_plan.label)
        if not session:  # one job: the head's session is in the GCS, where the end will be announced
            node.session = _head_session(node.gcs, ray_node, the_plan.label)
    except BaseException:
        ray_node.stop()
        raise
    _log(the_plan.label, f"joined the Ray cluster at {address} as {the_plan.label} ({ip})")
    return node


def _env_port(environ: Mapping[str, str]) -> int:
    raw = environ.get(RAY_PORT_ENV, str(DEFAULT_RAY_PORT))
    try:
        port = int(raw)
    except ValueError:
        raise ClusterError(f"${RAY_PORT_ENV} must be a port number, got {raw!r}") from None
    if not 1024 <= port <= 65535:
        raise ClusterError(f"${RAY_PORT_ENV} must be between 1024 and 65535, got {port}")
    return port


def _wait_for_gcs(ray_node: RayNode, address: str, label: str) -> Gcs:
    deadline = time.monotonic() + NODE_STARTUP_TIMEOUT_S
    while not tcp_answers(address, 1.0):
        _check_started(ray_node, label, deadline, f"the head's GCS at {address} to answer")
        time.sleep(0.2)
    return Gcs(address)


def _wait_for_node(gcs: Gcs, ray_node: RayNode, label: str) -> None:
    """Until this host's own node is registered and alive (its `ray start` finished starting)."""
    deadline = time.monotonic() + NODE_STARTUP_TIMEOUT_S
    while True:
        try:
            if any(n.alive and n.label == label and n.ip == ray_node.ip for n in gcs.nodes()):
                return
        except Exception:  # noqa: BLE001 - keep waiting until the deadline
            pass
        _check_started(ray_node, label, deadline, f"this host's Ray node ({ray_node.ip}) to register")
        time.sleep(0.5)


def _check_started(ray_node: RayNode, label: str, deadline: float, what: str) -> None:
    if not ray_node.alive():
        raise ClusterError(f"{label}: `ray start` exited with code {ray_node.process.returncode} while waiting for "
                           f"{what}; its messages are above in this host's log")
    if time.monotonic() >= deadline:
        raise ClusterError(f"{label}: timed out after {NODE_STARTUP_TIMEOUT_S:g} s waiting for {what}")


def _head_session(gcs: Gcs, ray_node: RayNode, label: str) -> str:
    deadline = time.monotonic() + NODE_STARTUP_TIMEOUT_S
    while True:
        try:
            raw = gcs.get("session")
            if raw:
                return raw.decode()
        except Exception:  # noqa: BLE001 - keep waiting until the deadline
            pass
        _check_started(ray_node, label, deadline, "the head's session id in the GCS")
        time.sleep(0.5)


def _wait_for_hosts(gcs: Gcs, ray_node: RayNode, the_plan: ClusterPlan, rendezvous: Rendezvous | None,
                    settings: ClusterSettings, deadline: float) -> list[NodeInfo]:
    """Head: until a live node carries every expected host label, and as many secondary hosts as the primary
    expects have joined; then those nodes, head first, the secondary job's last."""
    while True:
        nodes = {n.label: n for n in gcs.nodes() if n.alive and n.label}
        missing = [h for h in the_plan.expected if h not in nodes]
        secondary = sorted((label for label in nodes if label.startswith(SECONDARY)),
                           key=lambda label: sm._host_order(label[len(SECONDARY):]))
        if not missing and len(secondary) >= the_plan.secondary_hosts:
            if len(secondary) > the_plan.secondary_hosts:
                raise ClusterError(f"{len(secondary)} hosts of a secondary job joined ({', '.join(secondary)}), but "
                                   f"rl_num_instances_secondary={the_plan.secondary_hosts}: give the primary the "
                                   "secondary job's instance count (or two runs share one rendezvous: give each its "
                                   "own s3_prefix or rl_run_id)")
            return [nodes[h] for h in (*the_plan.expected, *secondary)]
        if not ray_node.alive():
            raise ClusterError(f"the head's Ray node exited (code {ray_node.process.returncode}) while waiting for "
                               f"{', '.join(missing) or 'the secondary job'} to join")
        if time.monotonic() >= deadline:
            raise ClusterError(_missing_hosts_message(the_plan, missing, secondary, rendezvous, settings))
        time.sleep(POLL_S)


def _missing_hosts_message(the_plan: ClusterPlan, missing: list[str], secondary_joined: list[str],
                           rendezvous: Rendezvous | None, settings: ClusterSettings) -> str:
    """Which hosts did not join, and for each what the rendezvous knows of it (announced itself or not)."""
    total = len(the_plan.expected) + the_plan.secondary_hosts
    joined = len(the_plan.expected) - len(missing) + min(len(secondary_joined), the_plan.secondary_hosts)
    details: list[tuple[str, str]] = []
    for label in missing:  # this job's hosts: known by name; their slot is their place in the sorted host list
        host = label
        slot = sorted(the_plan.expected, key=sm._host_order).index(host) + 1
        details.append((label, _announcement_note(rendezvous, the_plan.job or "job", slot, label)))
    unjoined = the_plan.secondary_hosts - len(secondary_joined)
    for slot in range(1, the_plan.secondary_hosts + 1):  # the secondary job's: known by slot (algo-<slot>)
        if unjoined <= 0:
            break
        record = _announcement(rendezvous, "secondary", slot)
        if isinstance(record, dict) and host_label("secondary", str(record.get("host"))) in secondary_joined:
            continue
        label = host_label("secondary", str(record["host"])) if isinstance(record, dict) else \
            host_label("secondary", f"algo-{slot}")
        details.append((label, _announcement_note(rendezvous, "secondary", slot, label, record)))
        unjoined -= 1
    lines = [f"only {joined} of {total} hosts joined the Ray cluster within {settings.rendezvous_timeout_s:g} s "
             f"(rl_rendezvous_timeout_s); missing: {', '.join(label for label, _ in details)}"]
    lines += [f"  {label}: {note}" for label, note in details if note]
    return "\n".join(lines)


def _announcement(rendezvous: Rendezvous | None, job: str, slot: int) -> dict[str, Any] | str | None:
    """The host's announcement record, None when there is none, or why it could not be read."""
    if rendezvous is None:
        return None
    try:
        return rendezvous.host_announcement(job, slot)
    except Exception as exc:  # noqa: BLE001 - the message is still useful without it
        return f"unreadable: {exc}"


def _announcement_note(rendezvous: Rendezvous | None, job: str, slot: int, label: str,
                       record: dict[str, Any] | str | None = "") -> str:
    if rendezvous is None:
        return ""
    url = rendezvous.url(rendezvous.host_key(job, slot))
    if record == "":
        record = _announcement(rendezvous, job, slot)
    if isinstance(record, str):
        return f"its announcement {url} is {record}"
    if record is None:
        hint = (" — did the secondary job start, with the same s3_bucket and s3_prefix"
                + (" and rl_run_id" if rendezvous.run_id and job == "secondary" else "")
                + (f" (and ${SECRET_ENV})" if rendezvous.signed else "") + "?") if job == "secondary" else ""
        return f"never announced itself at {url}{hint}"
    return (f"announced itself from {record.get('address')} but its Ray node never joined — can it reach the head "
            "(security groups between the jobs allow all TCP)?")


def _head_token(rendezvous: Rendezvous | None, session: str, environ: Mapping[str, str]) -> tuple[str | None, str]:
    """The head's Ray auth token and where the other nodes get it (rendezvous.AUTH_MODES)."""
    given = environ.get("RAY_AUTH_TOKEN")
    if given:
        return given, "environment"
    if rendezvous is not None and rendezvous.signed:
        return rendezvous.token(session), "derived"
    if rendezvous is not None:
        return secrets.token_hex(32), "published"
    return None, "off"


# ---------------------------------------------------------------------------------------------------------- resources
@dataclass(frozen=True)
class Rollouts:
    """What the training runs on the cluster: env runners (one CPU each) and the learner's GPUs."""

    num_env_runners: int
    num_gpus: float
    notes: tuple[str, ...] = ()  # adjustments to what was asked, for the job's log


def plan_rollouts(node: Node, settings: ClusterSettings, *, env_runners: tuple[str, int] | None = None,
                  gpus: tuple[str, float] | None = None) -> Rollouts:
    """Env runners and learner GPUs from the blog post's resource hyperparameters (``settings``) or the entry point's
    own (``env_runners`` / ``gpus``: (hyperparameter name, value)), fitted to the cluster.

    - ``rl.training.config.num_workers`` or the entry point's own count: that many env runners;
      ``rl.training.config.num_cpus`` alone: one env runner per CPU given to rollouts; none: every CPU of the cluster
      but the driver's. More env runners than the cluster's CPUs leave beside the driver are cut to that (logged):
      Ray would otherwise wait forever for CPUs to place them.
    - ``rl.training.config.num_gpus`` or the entry point's own: the learner's GPUs (one learner: at most 1, more is
      cut and logged); more than the head host has is an error; none given: 1 when the head has a GPU.

    Raises :class:`ClusterError` naming both keys when two of them ask the same thing.
    """
    notes: list[str] = []
    cpus = sum(node.cpus_by_host.values())
    free = max(1, cpus - 1)
    asked = [(key, value) for key, value in (("rl.training.config.num_workers", settings.num_workers),
                                             env_runners or (None, None)) if key and value is not None]
    if len(asked) > 1:
        raise ClusterError(f"{asked[0][0]}={asked[0][1]} and {asked[1][0]}={asked[1][1]} both set the number of env "
                           "runners: give one of them")
    if asked:
        key, runners = asked[0]
        if settings.num_cpus is not None and runners > settings.num_cpus:
            raise ClusterError(f"{key}={runners} env runners need {runners} CPUs (one each), but "
                               f"rl.training.config.num_cpus={settings.num_cpus} gives rollouts only "
                               f"{settings.num_cpus}: raise num_cpus or lower {key}")
    elif settings.num_cpus is not None:
        key, runners = "rl.training.config.num_cpus", settings.num_cpus
    else:
        key, runners = "", node.num_env_runners
    if key and runners > free:
        notes.append(f"{key}={runners} asks for more env runners than the cluster's {cpus} CPUs leave beside the "
                     f"driver ({free}; each env runner takes one CPU, the driver and its learner one): using {free}")
        runners = free
    asked_gpus = [(key, value) for key, value in (("rl.training.config.num_gpus", settings.num_gpus),
                                                  gpus or (None, None)) if key and value is not None]
    if len(asked_gpus) > 1:
        raise ClusterError(f"{asked_gpus[0][0]}={asked_gpus[0][1]:g} and {asked_gpus[1][0]}={asked_gpus[1][1]:g} "
                           "both set the learner's GPUs: give one of them")
    if asked_gpus:
        key, learner = asked_gpus[0]
        if learner > node.num_gpus:
            raise ClusterError(f"{key}={learner:g}: the learner runs on the head host ({node.host}), which has "
                               f"{node.num_gpus} GPU(s); use a GPU instance for the head (the primary job, or "
                               f"rl_head_instance_group) or set {key}=0")
        if learner > 1:
            notes.append(f"{key}={learner:g}: one learner uses one GPU: using 1")
            learner = 1.0
    else:
        learner = 1.0 if node.num_gpus else 0.0
    return Rollouts(num_env_runners=int(runners), num_gpus=float(learner), notes=tuple(notes))
