"""S3 rendezvous: how the hosts of two SageMaker jobs (primary and secondary) find one Ray head.

Two training jobs cannot resolve each other's host names, so they meet in a private S3 prefix. Every record is a
small JSON object under one run's folder, and every read is of one exact key (``GetObject``), never a listing by
prefix, so ``algo-1`` can never match ``algo-10`` and keys of other runs are never seen::

    s3://<s3_bucket>/<s3_prefix>/<rl_run_id>/head.json                  the head: Ray address, session, auth token
    s3://<s3_bucket>/<s3_prefix>/<rl_run_id>/hosts/<job>/<host>.json    a non-head host announces itself
    s3://<s3_bucket>/<s3_prefix>/<rl_run_id>/done.json                  the head announces the end (and its outcome)

The run id keeps runs apart; within one run id (a retried job reuses its hyperparameters) the head's ``session``
keeps attempts apart: ``done.json`` only ends the hosts that joined the session it names, and a head record whose
address does not answer is a stale one, waited past. Nothing here imports Ray; boto3 is imported when a store is made.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


class RendezvousTimeout(TimeoutError):
    """A record that did not appear (or stayed stale) for the whole of its timeout; the message says which key."""


class Store(Protocol):
    """Exact-key JSON records: the only operations the rendezvous needs."""

    def url(self, key: str) -> str: ...

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, record: dict[str, Any]) -> None: ...

    def delete(self, key: str) -> None: ...


class S3Store:
    """Records as S3 objects under ``s3://bucket/prefix/``.

    The client comes from boto3's default chain: on SageMaker the job's role; locally ``AWS_ENDPOINT_URL_S3`` points
    it at a moto server. Objects are written with server-side encryption (the head record holds the Ray auth token).
    """

    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        if not bucket:
            raise ValueError("an S3 rendezvous needs a bucket (hyperparameter s3_bucket)")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if client is None:
            import boto3

            client = boto3.client("s3")
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
    """What the head publishes: where to join, which attempt this is, and the cluster's Ray auth token."""

    address: str  # "ip:port" of the head's GCS
    host: str  # the head's host label (e.g. "algo-1")
    session: str  # fresh per head start: tells this attempt's records from a retried job's
    auth_token: str | None  # None when Ray token auth is off
    written_at: float  # unix seconds

    def public(self) -> dict[str, Any]:
        """The record without its secret, for logs and error messages."""
        return {"address": self.address, "host": self.host, "session": self.session, "written_at": self.written_at}


class Rendezvous:
    """One run's records in a :class:`Store`; waits poll exact keys until a deadline.

    ``clock`` and ``sleep`` are injectable so tests can run the waits without waiting.
    """

    def __init__(self, store: Store, run_id: str, poll_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        if not run_id or "/" in run_id:
            raise ValueError(f"the rendezvous run id must be a non-empty name without '/', got {run_id!r}")
        self.store = store
        self.run_id = run_id
        self.poll_s = poll_s
        self.clock = clock
        self.sleep = sleep

    # ------------------------------------------------------------------------------------------------ keys
    def head_key(self) -> str:
        return f"{self.run_id}/head.json"

    def host_key(self, job: str, host: str) -> str:
        return f"{self.run_id}/hosts/{job}/{host}.json"

    def done_key(self) -> str:
        return f"{self.run_id}/done.json"

    def url(self, key: str) -> str:
        return self.store.url(key)

    # ------------------------------------------------------------------------------------------------ the head
    def publish_head(self, head: HeadRecord) -> None:
        self.store.put(self.head_key(), {"run_id": self.run_id, **head.public(), "auth_token": head.auth_token})

    def announce_done(self, session: str, success: bool, reason: str = "") -> None:
        self.store.put(self.done_key(), {"run_id": self.run_id, "session": session, "success": success,
                                         "reason": reason[:2000], "written_at": time.time()})

    # ------------------------------------------------------------------------------------------------ other hosts
    def announce_host(self, job: str, host: str, address: str) -> None:
        self.store.put(self.host_key(job, host), {"run_id": self.run_id, "job": job, "host": host,
                                                  "address": address, "written_at": time.time()})

    def host_announcement(self, job: str, host: str) -> dict[str, Any] | None:
        record = self.store.get(self.host_key(job, host))
        return record if record and record.get("run_id") == self.run_id else None

    def read_head(self) -> HeadRecord | None:
        record = self.store.get(self.head_key())
        if not record or record.get("run_id") != self.run_id:
            return None
        try:
            return HeadRecord(address=str(record["address"]), host=str(record["host"]),
                              session=str(record["session"]), auth_token=record.get("auth_token"),
                              written_at=float(record.get("written_at", 0.0)))
        except (KeyError, TypeError, ValueError):
            return None

    def done(self, session: str) -> dict[str, Any] | None:
        """The end announcement of this session, or None (an announcement of another session is stale)."""
        record = self.store.get(self.done_key())
        if record and record.get("run_id") == self.run_id and record.get("session") == session:
            return record
        return None

    def wait_for_head(self, timeout_s: float, is_live: Callable[[HeadRecord], bool]) -> HeadRecord:
        """Poll ``head.json`` until it names a head that ``is_live`` accepts (its address answers).

        A record whose session already announced its end is stale (an earlier attempt of this run) and never trusted;
        one whose address does not answer is waited past and checked again (a stale record is soon overwritten by the
        new head). Raises :class:`RendezvousTimeout` at the deadline, naming the key and what was ignored.
        """
        deadline = self.clock() + timeout_s
        ended: set[str] = set()  # sessions that announced their end: stale for good
        unanswered: dict[str, str] = {}  # session -> address that did not answer (checked again on each poll)
        while True:
            head = self.read_head()
            if head is not None and head.session not in ended:
                if self.done(head.session) is not None:
                    ended.add(head.session)
                elif is_live(head):
                    return head
                else:
                    unanswered[head.session] = head.address
            if self.clock() >= deadline:
                seen = [f"session {s} already announced its end" for s in sorted(ended)]
                seen += [f"session {s} at {a} does not answer" for s, a in unanswered.items()]
                raise RendezvousTimeout(
                    f"no live Ray head at {self.url(self.head_key())} within {timeout_s:g} s"
                    + (f" (stale records ignored: {'; '.join(seen)})" if seen else " (the key never appeared)")
                    + f". Did the primary job start with the same rl_run_id={self.run_id!r}, s3_bucket and s3_prefix?")
            self.sleep(self.poll_s)
