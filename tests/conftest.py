from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared() -> Path:
    """The shared material beside the project (official traces, CLI exports)."""
    if not (SHARED / "traces").is_dir():
        pytest.skip(f"no official traces at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of a tiny untrained exported policy (``server_helpers.exported_model``), written once per session."""
    from server_helpers import exported_model

    return exported_model(tmp_path_factory.getbasetemp())


@pytest.fixture(autouse=True)
def _torch_threads():
    """Env runners set torch's thread count for their inference; every test gets the session's count back afterwards
    (the model tests compare forwards that differ in the last digits under another thread count)."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch else None
    yield
    if torch is not None:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def standin_aws(tmp_path_factory: pytest.TempPathFactory):
    """A moto server on 127.0.0.1 as S3 and the SageMaker API, with this process's AWS settings pointed at it for the
    module's tests: yields ``(url, region)``."""
    from sagemaker_rl.standins import REAL_ACCOUNT_VARIABLES, aws_environment, start_moto_server

    region = "us-east-1"
    server, url = start_moto_server()
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name in REAL_ACCOUNT_VARIABLES:
                patch.delenv(name, raising=False)
            for name, value in aws_environment(url, region, tmp_path_factory.mktemp("aws")).items():
                patch.setenv(name, value)
            yield url, region
    finally:
        server.stop()


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch):
    """An in-process moto S3 (no server) with the rendezvous tests' bucket ``rl-rendezvous``: yields its client."""
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    with moto.mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="rl-rendezvous")
        yield client
