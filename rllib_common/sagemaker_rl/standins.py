"""Local stand-ins for AWS: a moto server on 127.0.0.1 answering as S3 and the SageMaker API, and the environment
variables that point the AWS SDKs (boto3, the SageMaker SDK) at it.

The one place that starts a moto server: the notebooks' local switch (``sagemaker_rl.notebook``), the local runner's S3
for two-job clusters (:class:`LocalS3`), the Docker stage's S3 (``docker/local_mode.py``) and the tests of the launchers
and the endpoint deployment all start theirs here. Real HTTP on loopback, fake credentials, no AWS config or credentials
files read, and the SageMaker SDK's telemetry switched off (offline it would print tracebacks trying to reach AWS).
"""

from __future__ import annotations

import atexit
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Variables that would send the SDKs to a real account: removed while the stand-ins are in use.
REAL_ACCOUNT_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")

#: The local runner's rendezvous bucket.
LOCAL_S3_BUCKET = "sagemaker-rl-local"

_TELEMETRY_OPT_OUT = "SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n"


def start_moto_server(host: str = "127.0.0.1") -> tuple[Any, str]:
    """A moto server on a free port of ``host`` (loopback by default; the Docker stage gives the docker bridge's
    address, which its containers reach too): ``(server, url)``; ``server.stop()`` ends it."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address=host, port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def sdk_config(folder: str | Path) -> Path:
    """Write the SageMaker SDK's config file that switches its telemetry off into ``folder``; returns its path
    (for ``$SAGEMAKER_USER_CONFIG_OVERRIDE``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "sagemaker-config.yaml"
    config.write_text(_TELEMETRY_OPT_OUT)
    return config


def aws_environment(url: str, region: str, folder: str | Path) -> dict[str, str]:
    """The variables that point every AWS client of a process (and its children) at ``url``; writes the SageMaker
    SDK's telemetry opt-out config into ``folder``."""
    folder = Path(folder)
    config = sdk_config(folder)
    return {
        "AWS_ACCESS_KEY_ID": "local-standin", "AWS_SECRET_ACCESS_KEY": "local-standin",
        "AWS_DEFAULT_REGION": region, "AWS_REGION": region, "AWS_ENDPOINT_URL": url,
        "AWS_CONFIG_FILE": str(folder / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(folder / "no-aws-credentials"),
        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(config), "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
    }


class LocalS3:
    """An S3 stand-in with one bucket, for the local runner's two-job rendezvous; a context manager.

    ``endpoint`` is the server's URL once started; a LocalS3 may also be pointed at a server someone else runs (set
    ``endpoint`` and do not start it), as the notebooks do with their stand-ins.
    """

    def __init__(self, bucket: str = LOCAL_S3_BUCKET) -> None:
        self.bucket = bucket
        self.endpoint = ""
        self._server: Any = None

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalS3:
        self._server, self.endpoint = start_moto_server()
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def environment(self) -> dict[str, str]:
        """What a host needs to reach this S3 with boto3 (fake credentials: moto accepts any)."""
        return {"AWS_ENDPOINT_URL_S3": self.endpoint, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="local",
                            aws_secret_access_key="local", region_name="us-east-1")


@dataclass
class StandIns:
    """A moto server on 127.0.0.1 answering as S3 and the SageMaker API, and the files that point clients at it."""

    url: str
    server: Any
    folder: tempfile.TemporaryDirectory

    def stop(self) -> None:
        self.server.stop()
        self.folder.cleanup()


_STANDINS: StandIns | None = None
_STANDINS_LOCK = threading.Lock()


def start_standins(region: str = "us-east-1") -> StandIns:
    """Start the stand-ins once per process (stopped when it exits) and point this process's AWS settings at them.

    The variables are set in ``os.environ``, so the commands a notebook starts (the local runner, its hosts)
    inherit them: dummy credentials, no AWS config or credentials files, ``AWS_ENDPOINT_URL`` on the server, and the
    SageMaker SDK's telemetry switched off (it would try to reach AWS).
    """
    global _STANDINS
    with _STANDINS_LOCK:
        if _STANDINS is not None:
            return _STANDINS
        server, url = start_moto_server()
        folder = tempfile.TemporaryDirectory(prefix="battlesnake-rl-standins-")
        for name in REAL_ACCOUNT_VARIABLES:
            os.environ.pop(name, None)
        os.environ.update(aws_environment(url, region, folder.name))
        _STANDINS = StandIns(url, server, folder)
        atexit.register(_STANDINS.stop)
        return _STANDINS
