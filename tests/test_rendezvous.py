"""The S3 rendezvous between hosts and jobs, on moto: exact keys, stale records of earlier runs and sessions,
timeouts, and the trust model (signed records, derived tokens, planted records refused)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cluster_fakes import OTHER_SECRET, SECRET, FakeClock, head, keys, meet, publish

from sagemaker_rl.rendezvous import Rendezvous, RendezvousTimeout, S3Store, derive_token


# ---------------------------------------------------------------------------------------------------------- rendezvous
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
