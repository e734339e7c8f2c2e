"""S3 rendezvous: how the hosts of two SageMaker jobs (primary and secondary) find one Ray head.

Two training jobs cannot resolve each other's host names, so they meet in an S3 prefix. Every record is a small JSON
object, and every read is of one exact key (``GetObject``), never a listing by prefix, so ``algo-1`` can never match
``algo-10`` and keys of other runs are never seen. The run's folder is ``rl_run_id`` when the jobs give one; the blog
post's two jobs give only ``s3_bucket`` and ``s3_prefix`` and meet at the prefix itself::

    s3://<s3_bucket>/<s3_prefix>/[<rl_run_id>/]head.json                 the head: Ray address, session, token source
    s3://<s3_bucket>/<s3_prefix>/[<rl_run_id>/]token.json                the Ray auth token, only when nothing else can
                                                                         share it; deleted once every host has joined
    s3://<s3_bucket>/<s3_prefix>/[<rl_run_id>/]hosts/<job>/algo-<i>.json the i-th host of a job announces itself
    s3://<s3_bucket>/<s3_prefix>/[<rl_run_id>/]done.json                 the head announces the end (and its outcome)

Runs and attempts: each head start has a fresh ``session``; ``done.json`` ends only the hosts of the session it names,
a head record whose session already announced its end is stale for good, one whose address does not answer is waited
past (the new head overwrites it), and ``token.json`` only serves the session it names. So records an earlier run left
under the same prefix (or run id: a retried job reuses its hyperparameters) are ignored.

Trust. With a *rendezvous secret* (``$SM_RL_RENDEZVOUS_SECRET``, the same in every job of a run;
``battlesnake-rl sagemaker launch`` makes a fresh one per run), every record is signed (HMAC-SHA256) and a record
whose signature does not verify is never trusted: a head record planted by anyone without the secret is refused. The
Ray auth token is then derived on every node from the secret and the session, and never written anywhere. Without a
secret (the blog post's snippets), records are only as trustworthy as the S3 prefix: whoever may write it can point
the hosts at another head, and whoever may read it can read the token while the cluster forms (``token.json``,
deleted as soon as every host has joined, and at the end). Nothing here imports Ray; boto3 is imported when a store is
made.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

SECRET_ENV = "SM_RL_RENDEZVOUS_SECRET"  # the per-run rendezvous secret, given to every job of a run
MIN_SECRET_CHARS = 32
AUTH_MODES = ("derived", "published", "environment", "off")  # where the nodes get the Ray auth token from
_SIGNATURE_DOMAIN = b"sagemaker_rl.rendezvous/1\n"
_TOKEN_DOMAIN = b"sagemaker_rl.ray-auth-token/1\n"


class RendezvousTimeout(TimeoutError):
    """A record that did not appear (or stayed stale or untrusted) for its whole timeout; the message says which."""


class Store(Protocol):
    """Exact-key JSON records: the only operations the rendezvous needs."""

    def url(self, key: str) -> str: ...

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, record: dict[str, Any]) -> None: ...

    def delete(self, key: str) -> None: ...


class S3Store:
    """Records as S3 objects under ``s3://bucket/prefix/``.

    The client comes from boto3's default chain (in ``region``, the ``aws_region`` hyperparameter, when given): on
    SageMaker the job's role; locally ``AWS_ENDPOINT_URL_S3`` points it at a moto server. Objects are written with
    server-side encryption (SSE-S3: encrypted at rest, readable by whoever may read the prefix).
    """

    def __init__(self, bucket: str, prefix: str = "", client: Any = None, region: str | None = None) -> None:
        if not bucket:
            raise ValueError("an S3 rendezvous needs a bucket (hyperparameter s3_bucket)")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if client is None:
            import boto3

            client = boto3.client("s3", region_name=region) if region else boto3.client("s3")
        self.client = client

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        try:
            record = json.loads(body)
        except json.JSONDecodeError:
            return None  # a half-written or foreign object is no record of ours: wait for a good one
        return record if isinstance(record, dict) else None

    def put(self, key: str, record: dict[str, Any]) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=json.dumps(record).encode(),
                               ContentType="application/json", ServerSideEncryption="AES256")

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))


@dataclass(frozen=True)
class HeadRecord:
    """What the head publishes: where to join, which attempt this is, and where nodes get the Ray token from.

    It never holds the token itself (see ``auth``), so it can be logged whole.
    """

    address: str  # "ip:port" of the head's GCS
    host: str  # the head's host label (e.g. "algo-1")
    session: str  # fresh per head start: tells this attempt's records from a retried job's
    auth: str  # derived | published | environment | off (AUTH_MODES)
    written_at: float  # unix seconds

    def public(self) -> dict[str, Any]:
        return {"address": self.address, "host": self.host, "session": self.session, "auth": self.auth,
                "written_at": self.written_at}


def derive_token(secret: str, session: str) -> str:
    """The Ray auth token of a session, from the run's rendezvous secret: every node computes it, none stores it."""
    return hmac.new(secret.encode(), _TOKEN_DOMAIN + session.encode(), hashlib.sha256).hexdigest()


def check_secret(secret: str | None) -> str | None:
    """The rendezvous secret, or None; a secret too short to be one is an error naming the variable."""
    if secret is None or secret == "":
        return None
    if len(secret) < MIN_SECRET_CHARS or secret.strip() != secret:
        raise ValueError(f"${SECRET_ENV} must be at least {MIN_SECRET_CHARS} characters without surrounding spaces "
                         f"(got {len(secret)}); make one with: "
                         "python -c 'import secrets; print(secrets.token_hex(32))'")
    return secret


class Rendezvous:
    """One run's records in a :class:`Store`; waits poll exact keys until a deadline.

    ``run_id`` None: the records sit at the store's prefix itself (two jobs that share only bucket and prefix).
    ``secret``: sign every record and trust only records that verify. ``clock`` and ``sleep`` are injectable so tests
    can run the waits without waiting.
    """

    def __init__(self, store: Store, run_id: str | None, poll_s: float = 2.0, secret: str | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        if run_id is not None and (not run_id or "/" in run_id):
            raise ValueError(f"the rendezvous run id must be a non-empty name without '/', got {run_id!r}")
        self.store = store
        self.run_id = run_id
        self.poll_s = poll_s
        self._secret = check_secret(secret)
        self.clock = clock
        self.sleep = sleep

    def __repr__(self) -> str:
        return f"Rendezvous({self.url('')!r}, signed={self.signed})"

    @property
    def signed(self) -> bool:
        return self._secret is not None

    def token(self, session: str) -> str:
        """The derived Ray auth token of a session (only with a secret)."""
        if self._secret is None:
            raise ValueError(f"no rendezvous secret (${SECRET_ENV}) to derive a Ray auth token from")
        return derive_token(self._secret, session)

    # ------------------------------------------------------------------------------------------------ keys
    def _in_run(self, key: str) -> str:
        return f"{self.run_id}/{key}" if self.run_id else key

    def head_key(self) -> str:
        return self._in_run("head.json")

    def token_key(self) -> str:
        return self._in_run("token.json")

    def host_key(self, job: str, slot: int) -> str:
        return self._in_run(f"hosts/{job}/algo-{slot}.json")

    def done_key(self) -> str:
        return self._in_run("done.json")

    def url(self, key: str) -> str:
        return self.store.url(key)

    # ------------------------------------------------------------------------------------------------ records
    def _signature(self, record: dict[str, Any]) -> str:
        assert self._secret is not None
        body = json.dumps({k: v for k, v in record.items() if k != "signature"}, sort_keys=True,
                          separators=(",", ":")).encode()
        return hmac.new(self._secret.encode(), _SIGNATURE_DOMAIN + body, hashlib.sha256).hexdigest()

    def _put(self, key: str, record: dict[str, Any]) -> None:
        record = {"run_id": self.run_id, **record}
        if self._secret is not None:
            record["signature"] = self._signature(record)
        self.store.put(key, record)

    def _get(self, key: str) -> tuple[dict[str, Any] | None, str | None]:
        """(record, why it is not trusted); (None, None) when there is no record of this run at the key."""
        record = self.store.get(key)
        if not record or record.get("run_id") != self.run_id:
            return None, None
        if self._secret is None:
            return record, None
        signature = record.get("signature")
        if not isinstance(signature, str):
            return record, "it is not signed, and this job has a rendezvous secret"
        if not hmac.compare_digest(signature, self._signature(record)):
            return record, "its signature does not match this run's rendezvous secret"
        return record, None

    # ------------------------------------------------------------------------------------------------ the head
    def publish_head(self, head: HeadRecord) -> None:
        if head.auth not in AUTH_MODES:
            raise ValueError(f"auth must be one of {AUTH_MODES}, got {head.auth!r}")
        self._put(self.head_key(), head.public())

    def publish_token(self, session: str, token: str) -> None:
        """The Ray token for hosts that have no other way to get it (no secret, no $RAY_AUTH_TOKEN)."""
        self._put(self.token_key(), {"session": session, "auth_token": token, "written_at": time.time()})

    def delete_token(self) -> None:
        self.store.delete(self.token_key())

    def announce_done(self, session: str, success: bool, reason: str = "") -> None:
        self._put(self.done_key(), {"session": session, "success": success, "reason": reason[:2000],
                                    "written_at": time.time()})

    # ------------------------------------------------------------------------------------------------ other hosts
    def announce_host(self, job: str, slot: int, host: str, address: str) -> None:
        self._put(self.host_key(job, slot), {"job": job, "slot": slot, "host": host, "address": address,
                                             "written_at": time.time()})

    def host_announcement(self, job: str, slot: int) -> dict[str, Any] | None:
        record, problem = self._get(self.host_key(job, slot))
        return record if record is not None and problem is None else None

    def read_head(self) -> tuple[HeadRecord | None, str | None]:
        """The head record of this run and, when it must not be trusted, why (a signature that does not verify)."""
        record, problem = self._get(self.head_key())
        if record is None:
            return None, None
        try:
            head = HeadRecord(address=str(record["address"]), host=str(record["host"]),
                              session=str(record["session"]), auth=str(record.get("auth", "published")),
                              written_at=float(record.get("written_at", 0.0)))
        except (KeyError, TypeError, ValueError):
            return None, None
        return head, problem

    def read_token(self, session: str) -> str | None:
        """The published token of this session; None when there is none (deleted: every host joined, or the run
        ended) or it is another session's."""
        record, problem = self._get(self.token_key())
        if record is None or problem is not None or record.get("session") != session:
            return None
        token = record.get("auth_token")
        return token if isinstance(token, str) and token else None

    def done(self, session: str) -> dict[str, Any] | None:
        """The end announcement of this session, or None (one of another session, or untrusted, is no end)."""
        record, problem = self._get(self.done_key())
        if record is not None and problem is None and record.get("session") == session:
            return record
        return None

    def join_token(self, head: HeadRecord, env_token: str | None) -> tuple[str | None, str | None]:
        """(the Ray token to join ``head`` with, why this host cannot join it): follows the head's ``auth``."""
        if head.auth == "derived":
            if self._secret is None:
                return None, (f"the head derives the Ray token from a rendezvous secret, and this job has none: give "
                              f"every job of the run the same ${SECRET_ENV}")
            return self.token(head.session), None
        if head.auth == "environment":
            if not env_token:
                return None, ("the head takes its Ray token from $RAY_AUTH_TOKEN, which is never published: set the "
                              "same $RAY_AUTH_TOKEN in this job's environment")
            return env_token, None
        if head.auth == "published":
            token = self.read_token(head.session)
            if token is None:
                return None, (f"no Ray token for session {head.session} at {self.url(self.token_key())} (deleted "
                              "once every host of that cluster joined, or when it ended: a stale head)")
            return token, None
        if head.auth == "off":
            return None, None
        return None, f"unknown auth mode {head.auth!r}"

    def wait_for_head(self, timeout_s: float, is_live: Callable[[HeadRecord], bool], env_token: str | None = None,
                      log: Callable[[str], None] | None = None) -> tuple[HeadRecord, str | None]:
        """Poll ``head.json`` until it names a trusted, live head this host can join; (that head, its Ray token).

        Never trusted: a record whose signature does not verify (with a secret), a session that announced its end.
        Waited past and checked again: a head whose address does not answer, or whose token this host cannot get
        yet. Each of these is logged once when first seen; at the deadline :class:`RendezvousTimeout` names the key
        and every record ignored.
        """
        deadline = self.clock() + timeout_s
        ignored: dict[str, str] = {}  # session -> why it was not joined (the latest reason)
        ended: set[str] = set()
        while True:
            head, problem = self.read_head()
            why = None
            if head is not None and head.session not in ended:
                token = None
                if problem is not None:
                    why = f"refused: {problem} (written by another run, or planted)"
                elif self.done(head.session) is not None:
                    ended.add(head.session)
                    why = "already announced its end"
                else:
                    token, why = self.join_token(head, env_token)
                    if why is None and not is_live(head):
                        why = f"at {head.address} does not answer"
                if why is None:
                    return head, token
                if ignored.get(head.session) != why and log is not None:
                    log(f"not joining the head record at {self.url(self.head_key())} (session {head.session}): {why}")
                ignored[head.session] = why
            if self.clock() >= deadline:
                seen = [f"session {s} {why}" for s, why in ignored.items()]
                where = (f"rl_run_id={self.run_id!r}, s3_bucket and s3_prefix" if self.run_id
                         else "s3_bucket and s3_prefix")
                raise RendezvousTimeout(
                    f"no live Ray head at {self.url(self.head_key())} within {timeout_s:g} s"
                    + (f" (records ignored: {'; '.join(seen)})" if seen else " (the key never appeared)")
                    + f". Did the primary job start with the same {where}"
                    + (f" and ${SECRET_ENV}?" if self.signed else "?"))
            self.sleep(self.poll_s)
