"""What the notebooks share: one switch between real AWS and local stand-ins, and the few steps every notebook takes.

Every notebook in ``notebooks/`` runs against real AWS by default. One environment variable switches it to this
machine, with tiny budgets (CI runs every notebook that way)::

    BATTLESNAKE_RL_LOCAL=1 jupyter lab notebooks/

In local mode ``connect()`` starts a moto server in the notebook's own process as the S3 and SageMaker APIs (the same
stand-in the tests use), points every AWS client of the process, and of the commands it starts, at it, and hands back
a session, a dummy role and a bucket on it: nothing reaches AWS, no credentials are read. Training jobs submitted
there are recorded, not run; the docker-free local runner (``sagemaker_rl.local``) runs them on this machine.

How a notebook uses it::

    from sagemaker_rl import notebook as nb

    aws = nb.connect()                       # real AWS, or the local stand-ins when BATTLESNAKE_RL_LOCAL=1
    MINUTES = nb.pick(60, local=0.3)         # the real budget, or CI's
    nb.run("battlesnake-rl", "train", "--minutes", MINUTES)      # streams its output, fails the cell on error

This module is the notebooks' front and holds only the switch and the connection: every step a notebook takes is
reachable as ``nb.NAME`` but lives with its concern: commands (``commands``: ``run``, ``Background``), training
jobs (``jobs``: ``follow``, ``Jobs``, ``fetch_archive``, ``run_submitted``), endpoints (``endpoints``:
``LocalEndpoint``, ``delete_endpoint``), the stand-ins (``standins``) and ports (``net``: ``free_port``).

Like the rest of the platform layer it knows nothing of Battlesnake: commands are run by name, the metric
definitions come from the launcher, and endpoints are any SageMaker inference script with the four handler functions.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .commands import Background, CommandError, NotebookError, run
from .endpoints import LocalEndpoint, delete_endpoint
from .jobs import LOG_GROUP, Jobs, fetch_archive, follow, metrics_from_log, run_submitted, split_s3_uri
from .launch import BUCKET_ENV, IMAGE_URI_ENV, ROLE_ENV, _import_sagemaker
from .net import free_port
from .standins import StandIns, start_standins

__all__ = [  # what a notebook reaches as nb.NAME, wherever it is defined
    "LOCAL_ENV", "LOG_GROUP", "Aws", "Background", "CommandError", "Jobs", "LocalEndpoint", "NotebookError",
    "StandIns", "connect", "delete_endpoint", "fetch_archive", "follow", "free_port", "inline_html_page",
    "local_mode", "metrics_from_log", "pick", "run", "run_submitted", "split_s3_uri", "start_standins",
]

#: The switch: ``1`` runs a notebook against the local stand-ins with tiny budgets; unset or ``0``: real AWS.
LOCAL_ENV = "BATTLESNAKE_RL_LOCAL"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")

#: What the local stand-ins call themselves: moto's account, and names that cannot be mistaken for real resources.
LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT = "123456789012"
LOCAL_BUCKET = "battlesnake-rl-local"
LOCAL_ROLE = f"arn:aws:iam::{LOCAL_ACCOUNT}:role/battlesnake-rl-local"
LOCAL_IMAGE_URI = f"{LOCAL_ACCOUNT}.dkr.ecr.{LOCAL_REGION}.amazonaws.com/battlesnake-rl:local"


# ---------------------------------------------------------------------------------------------- the switch


def local_mode(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``BATTLESNAKE_RL_LOCAL`` asks for the local stand-ins (1/true/yes/on); False when it is unset or
    0/false/no/off. Any other value is an error rather than a guess: a typo must not send a notebook to real AWS."""
    value = (os.environ if environ is None else environ).get(LOCAL_ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise NotebookError(f"{LOCAL_ENV}={value!r}: use 1 (local stand-ins, tiny budgets) or 0 / unset (real AWS)")


def pick(default: Any, *, local: Any) -> Any:
    """``default`` normally, ``local`` in local mode: the one place a notebook's budgets differ between the two."""
    return local if local_mode() else default


@dataclass
class Aws:
    """Where a notebook's jobs, models and endpoints go: a SageMaker session, the role they run as, a bucket.

    ``local`` is True on the stand-ins (``endpoint_url`` is then the moto server's address).
    """

    local: bool
    session: Any  # sagemaker.Session
    role: str
    bucket: str
    region: str
    endpoint_url: str | None = None
    image: str | None = field(default=None, repr=False)

    @property
    def image_uri(self) -> str:
        """The training image in ECR ($BATTLESNAKE_RL_IMAGE_URI); a clear error when it is not set."""
        if not self.image:
            raise NotebookError(f"set ${IMAGE_URI_ENV} to the training image in ECR: build it with docker/build.sh "
                                f"(on an AWS deep-learning base image), push it to ECR, and pass its URI, e.g. "
                                f"{LOCAL_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/battlesnake-rl:cpu")
        return self.image

    def s3(self) -> Any:
        """A boto3 S3 client on this session's credentials and region (the stand-in in local mode)."""
        return self.session.boto_session.client("s3")

    def __str__(self) -> str:
        where = f"local stand-ins at {self.endpoint_url}" if self.local else f"AWS, region {self.region}"
        return (f"{where}\n  role:   {self.role}\n  bucket: s3://{self.bucket}\n"
                f"  image:  {self.image or f'(not set: ${IMAGE_URI_ENV})'}")


def connect(region: str | None = None) -> Aws:
    """A SageMaker session on real AWS, or on the local stand-ins in local mode.

    Real AWS: the default credentials and region (a SageMaker Studio space has both); the role is
    ``$BATTLESNAKE_RL_ROLE``, else the notebook's execution role; the bucket ``$BATTLESNAKE_RL_S3_BUCKET``, else the
    session's default bucket (created if needed). Local: ``start_standins``, a bucket on it, a dummy role and image.
    """
    sagemaker = _import_sagemaker()
    logging.getLogger("botocore").setLevel(logging.WARNING)  # where each client found its endpoint, at INFO
    logging.getLogger("sagemaker.telemetry").setLevel(logging.WARNING)  # an opt-out notice on every call, at INFO
    if local_mode():
        standins = start_standins(region or LOCAL_REGION)
        import boto3

        boto_session = boto3.Session(region_name=region or LOCAL_REGION)
        boto_session.client("s3").create_bucket(Bucket=LOCAL_BUCKET)
        # An explicit default bucket: the SDK would otherwise ask STS (not stood in) for the account to name one.
        session = sagemaker.Session(boto_session=boto_session, default_bucket=LOCAL_BUCKET)
        return Aws(True, session, LOCAL_ROLE, LOCAL_BUCKET, boto_session.region_name, standins.url, LOCAL_IMAGE_URI)
    import boto3

    boto_session = boto3.Session(region_name=region)
    if not boto_session.region_name:
        raise NotebookError("no AWS region: pass connect(region=...), set AWS_DEFAULT_REGION or run `aws configure`")
    bucket = os.environ.get(BUCKET_ENV)
    session = sagemaker.Session(boto_session=boto_session, default_bucket=bucket)
    role = os.environ.get(ROLE_ENV)
    if not role:
        try:
            role = sagemaker.get_execution_role(sagemaker_session=session)
        except Exception as exc:  # noqa: BLE001 - the SDK raises ValueError or botocore errors outside SageMaker
            raise NotebookError(f"no IAM role for SageMaker: outside a SageMaker notebook or Studio space set "
                                f"${ROLE_ENV} to the ARN of a role SageMaker can assume ({exc})") from None
    return Aws(False, session, role, session.default_bucket(), boto_session.region_name, None,
               os.environ.get(IMAGE_URI_ENV))



# ---------------------------------------------------------------------------------------------- display


def inline_html_page(path: str | os.PathLike, height: int = 520) -> Any:
    """A self-contained HTML page shown inside the notebook (an iframe holding the page itself, so it works where
    the notebook server cannot serve files, and offline)."""
    from IPython.display import HTML

    page = Path(path).read_text(encoding="utf-8")
    return HTML(f'<div><iframe srcdoc="{html.escape(page, quote=True)}" style="width:100%;height:{int(height)}px;'
                f'border:0"></iframe></div>')
