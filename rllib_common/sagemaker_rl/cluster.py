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

The bootstrap is cut by concern: ``cluster_plan`` decides each host's role and the resources from the contract and
settings alone (the modes, ``rl_cluster_type``, and :func:`plan_rollouts`); ``ray_node`` starts and stops one host's
Ray node and talks to the GCS; ``cluster_node`` is a host's life in the formed cluster (:class:`Node`: serving,
finishing, failing fast); this module forms the cluster (:func:`bootstrap`: the head's start, the workers' join, the
wait for every host, the Ray auth token). Every public name of those is importable from here.

Ray auth token (Ray 2.60 turns token auth on by default; every node of one cluster needs the same token), in order:
``$RAY_AUTH_TOKEN`` when the environment sets it (every host of the run must then have it; it is never published);
with an S3 rendezvous and a rendezvous secret (``$SM_RL_RENDEZVOUS_SECRET``, the same in every job of the run, as
``battlesnake-rl sagemaker launch`` gives them) a token every node derives from the secret and the head's session,
never stored; with an S3 rendezvous and no secret a random token published in ``token.json`` beside the head record
and deleted as soon as every host has joined (and at the end); otherwise (one job, no ``s3_bucket``) token auth is off
and the cluster relies on the job's private network, which SageMaker does not share with other jobs. The token never
appears in a log line or a repr. Nodes are started with ``ray start --block`` subprocesses and stopped by their
process id — never ``ray stop``, which would stop every Ray node of the machine.

Faults: every wait has a deadline and a message naming what was missing; a worker leaves with a failure when the head
is unreachable for ``rl_head_lost_timeout_s``; the head fails fast (writes ``output/failure``, tells the other hosts,
exits 1) when a worker host's node dies during training, rather than go on with fewer env runners.
"""

from __future__ import annotations

import atexit
import os
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from . import contract as sm
from .cluster_node import Node, log
from .cluster_plan import (
    CLUSTER_TYPES,
    SECONDARY,
    ClusterError,
    ClusterPlan,
    ClusterSettings,
    Rollouts,
    host_label,
    plan,
    plan_rollouts,
)
from .net import tcp_answers
from .ray_node import (
    DEFAULT_RAY_PORT,
    HOST_ADDRESSES_ENV,
    HOST_LABEL,
    JOB_LABEL,
    POLL_S,
    RAY_PORT_ENV,
    RAY_START_ARGS_ENV,
    Gcs,
    NodeInfo,
    RayNode,
    env_port,
    head_session,
    reassert_signal_handlers,
    resolve_host,
    use_auth,
    wait_for_gcs,
    wait_for_node,
)
from .rendezvous import SECRET_ENV, HeadRecord, Rendezvous, RendezvousTimeout, S3Store, check_secret

__all__ = [  # the bootstrap's public names, wherever they are defined (an entry point imports them from here)
    "CLUSTER_TYPES", "DEFAULT_RAY_PORT", "HOST_ADDRESSES_ENV", "RAY_PORT_ENV", "RAY_START_ARGS_ENV", "SECONDARY",
    "ClusterError", "ClusterPlan", "ClusterSettings", "Gcs", "Node", "NodeInfo", "RayNode", "Rollouts", "bootstrap",
    "host_label", "plan", "plan_rollouts", "reassert_signal_handlers", "resolve_host", "tcp_answers",
]




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
    environ |= use_auth(token)
    log(the_plan.label, {
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
        log(the_plan.label, f"the rendezvous records are not signed (no ${SECRET_ENV}): hosts trust any head record "
             f"under {rendezvous.url('')} that answers, i.e. whoever may write that prefix")
    port = env_port(environ)
    address = f"{ip}:{port}"
    if tcp_answers(address, 1.0):
        raise ClusterError(f"something already listens at {address}: set ${RAY_PORT_ENV} to a free port")
    secondary = f" + {the_plan.secondary_hosts} of the secondary job" if the_plan.secondary_hosts else ""
    log(the_plan.label, f"starting the Ray head at {address} ({the_plan.mode} cluster of "
         f"{len(the_plan.expected) + the_plan.secondary_hosts} hosts: {', '.join(the_plan.expected)}{secondary})")
    ray_node = RayNode.start(ip=ip, head_port=port, join=None, num_cpus=contract.num_cpus, num_gpus=contract.num_gpus,
                             labels=labels, environ=environ)
    node = Node(contract=contract, settings=settings, plan=the_plan, address=address, num_gpus=contract.num_gpus,
                cpus_by_host={}, ray_node=ray_node, rendezvous=rendezvous, session=session, auth=auth)
    try:
        node.gcs = wait_for_gcs(ray_node, address, the_plan.label)
        wait_for_node(node.gcs, ray_node, the_plan.label)
        node.gcs.put("session", node.session.encode())  # workers of this job match the end announcement against it
        if rendezvous is not None:
            if auth == "published":  # before the head record: a host that finds the head finds its token
                rendezvous.publish_token(session, token)
            rendezvous.publish_head(HeadRecord(address=address, host=the_plan.label, session=session, auth=auth,
                                               written_at=time.time()))
            log(the_plan.label, f"published the head record at {rendezvous.url(rendezvous.head_key())}"
                 + (" (signed)" if rendezvous.signed else ""))
        nodes = _wait_for_hosts(node.gcs, ray_node, the_plan, rendezvous, settings, deadline)
        if auth == "published":
            node._delete_token()
            log(the_plan.label, f"every host has joined: deleted the Ray token record "
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
    log(the_plan.label, "every host joined: " + ", ".join(f"{n.label}={n.ip} ({n.cpus} CPU, {n.gpus} GPU)"
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
        log(the_plan.label, f"waiting up to {remaining:.0f} s for the head record at "
             f"{rendezvous.url(rendezvous.head_key())}" + ("" if rendezvous.signed else
                                                            f" (unsigned: no ${SECRET_ENV})"))
        try:
            head, token = rendezvous.wait_for_head(remaining, lambda record: tcp_answers(record.address),
                                                   env_token=environ.get("RAY_AUTH_TOKEN"),
                                                   log=lambda message: log(the_plan.label, message))
        except RendezvousTimeout as exc:
            raise ClusterError(str(exc)) from None
        address, session = head.address, head.session
    else:
        assert the_plan.head_host is not None
        address = f"{resolve_host(the_plan.head_host, environ, deadline)}:{env_port(environ)}"
        log(the_plan.label, f"waiting for the Ray head {the_plan.head_host} at {address}")
        while not tcp_answers(address):
            if time.monotonic() >= deadline:
                raise ClusterError(f"the Ray head {the_plan.head_host} ({address}) did not accept connections within "
                                   f"{settings.rendezvous_timeout_s:g} s (rl_rendezvous_timeout_s); see its log")
            time.sleep(POLL_S)
        token = environ.get("RAY_AUTH_TOKEN")
    environ |= use_auth(token)
    log(the_plan.label, f"joining the Ray head at {address}")
    ray_node = RayNode.start(ip=ip, head_port=None, join=address, num_cpus=contract.num_cpus,
                             num_gpus=contract.num_gpus, labels=labels, environ=environ)
    node = Node(contract=contract, settings=settings, plan=the_plan, address=address, num_gpus=0, cpus_by_host={},
                ray_node=ray_node, rendezvous=rendezvous, session=session)
    try:
        node.gcs = Gcs(address)
        wait_for_node(node.gcs, ray_node, the_plan.label)
        if not session:  # one job: the head's session is in the GCS, where the end will be announced
            node.session = head_session(node.gcs, ray_node, the_plan.label)
    except BaseException:
        ray_node.stop()
        raise
    log(the_plan.label, f"joined the Ray cluster at {address} as {the_plan.label} ({ip})")
    return node


def _wait_for_hosts(gcs: Gcs, ray_node: RayNode, the_plan: ClusterPlan, rendezvous: Rendezvous | None,
                    settings: ClusterSettings, deadline: float) -> list[NodeInfo]:
    """Head: until a live node carries every expected host label, and as many secondary hosts as the primary
    expects have joined; then those nodes, head first, the secondary job's last."""
    while True:
        nodes = {n.label: n for n in gcs.nodes() if n.alive and n.label}
        missing = [h for h in the_plan.expected if h not in nodes]
        secondary = sorted((label for label in nodes if label.startswith(SECONDARY)),
                           key=lambda label: sm.host_order(label[len(SECONDARY):]))
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
        slot = sorted(the_plan.expected, key=sm.host_order).index(host) + 1
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
