"""Local stand-ins for AWS: a moto server on 127.0.0.1 answering as S3 and the SageMaker API, and the environment
variables that point the AWS SDKs (boto3, the SageMaker SDK) at it.

Used by the notebooks' local switch (``sagemaker_rl.notebook``) and by the tests of the launchers and the endpoint
deployment. Real HTTP on loopback, fake credentials, no AWS config or credentials files read, and the SageMaker SDK's
telemetry switched off (offline it would print tracebacks trying to reach AWS).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

#: Variables that would send the SDKs to a real account: removed while the stand-ins are in use.
REAL_ACCOUNT_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")

_TELEMETRY_OPT_OUT = "SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n"


def start_moto_server() -> tuple[Any, str]:
    """A moto server on a free port of 127.0.0.1: ``(server, url)``; ``server.stop()`` ends it."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def aws_environment(url: str, region: str, folder: str | Path) -> dict[str, str]:
    """The variables that point every AWS client of a process (and its children) at ``url``; writes the SageMaker
    SDK's telemetry opt-out config into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "sagemaker-config.yaml"
    config.write_text(_TELEMETRY_OPT_OUT)
    return {
        "AWS_ACCESS_KEY_ID": "local-standin", "AWS_SECRET_ACCESS_KEY": "local-standin",
        "AWS_DEFAULT_REGION": region, "AWS_REGION": region, "AWS_ENDPOINT_URL": url,
        "AWS_CONFIG_FILE": str(folder / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(folder / "no-aws-credentials"),
        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(config), "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
    }
