"""The SageMaker endpoint's deployment, checked without AWS: ``sagemaker_rl.deploy`` against a local SageMaker API and
S3 (moto in server mode on 127.0.0.1), then the repacked ``model.tar.gz`` it uploaded served from its own ``code/``
folder, as the PyTorch inference container would import it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest
from server_helpers import exported_model, recorded_frames

from battlesnake_gym.engine import MOVE_NAMES
from battlesnake_server.sagemaker_inference import package_model
from sagemaker_rl.deploy import DEFAULT_DEPENDENCIES, DeployError, build_model, deploy

pytestmark = pytest.mark.slow
BUCKET = "snake-models"
ROLE = "arn:aws:iam::123456789012:role/snake-endpoint"


@pytest.fixture(scope="module")
def session(standin_aws: tuple[str, str]) -> object:
    """A SageMaker session on the stand-in AWS (moto on 127.0.0.1), with one bucket."""
    pytest.importorskip("sagemaker")
    import boto3
    import sagemaker

    boto_session = boto3.Session(region_name=standin_aws[1])
    boto_session.client("s3").create_bucket(Bucket=BUCKET)
    return sagemaker.Session(boto_session=boto_session, default_bucket=BUCKET)


@pytest.fixture(scope="module")
def deployed(session, tmp_path_factory) -> dict:
    """Deploy the tiny exported policy; what the local SageMaker API and S3 then hold."""
    root = tmp_path_factory.mktemp("deploy")
    archive = package_model(exported_model(tmp_path_factory.getbasetemp()), root / "model.tar.gz")
    predictor = deploy(str(archive), ROLE, "ml.c5.large", endpoint_name="snake-endpoint", sagemaker_session=session,
                       env={"BATTLESNAKE_SEARCH_MS": "0"}, wait=False)
    client = session.sagemaker_client
    endpoint = client.describe_endpoint(EndpointName=predictor.endpoint_name)
    config = client.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    variant = config["ProductionVariants"][0]
    container = client.describe_model(ModelName=variant["ModelName"])["PrimaryContainer"]
    bucket, _, key = container["ModelDataUrl"].removeprefix("s3://").partition("/")
    data = session.boto_session.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return {"predictor": predictor, "variant": variant, "container": container, "archive": data, "root": root}


def test_deploy_creates_an_endpoint_on_the_pytorch_inference_image_with_the_entry_point(deployed) -> None:
    assert deployed["predictor"].endpoint_name == "snake-endpoint"
    assert deployed["variant"]["InstanceType"] == "ml.c5.large" and deployed["variant"]["InitialInstanceCount"] == 1
    container = deployed["container"]
    assert container["Image"].endswith("/pytorch-inference:2.6-cpu-py312")
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert container["Environment"]["BATTLESNAKE_SEARCH_MS"] == "0"


def test_the_repacked_model_holds_the_policy_the_entry_point_and_the_code_it_imports(deployed) -> None:
    with tarfile.open(fileobj=io.BytesIO(deployed["archive"])) as tar:
        names = {n.removeprefix("./") for n in tar.getnames()}
    assert {"policy.pt", "policy.onnx", "config.json", "code/inference.py", "code/requirements.txt"} <= names
    for folder in DEFAULT_DEPENDENCIES:
        assert f"code/lib/{folder.name}/__init__.py" in names
    assert "code/lib/battlesnake_gym/engine/rule_stages.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith((".nbi", ".nbc", ".pyc"))]


def test_the_shipped_code_serves_a_move_on_its_own(shared, deployed) -> None:
    root = deployed["root"] / "unpacked"
    with tarfile.open(fileobj=io.BytesIO(deployed["archive"])) as tar:
        tar.extractall(root, filter="data")
    frame = recorded_frames("cli-export-standard-4snakes.jsonl")[8]
    body = json.dumps({**frame, "you": frame["board"]["snakes"][0]})
    script = textwrap.dedent(f"""
        import json, sys
        import inference  # what the container imports: code/ is on its path, code/lib is not
        app = inference.model_fn({str(root)!r})
        data = inference.input_fn({body!r}, "application/json")
        text, content_type = inference.output_fn(inference.predict_fn(data, app), "application/json")
        import battlesnake_server, battlesnake_gym
        print(json.dumps({{"reply": json.loads(text), "server": battlesnake_server.__file__,
                          "gym": battlesnake_gym.__file__}}))
    """)
    # The unpacked engine has no compiled cache: run it uncompiled rather than wait for numba (same semantics).
    env = {**os.environ, "PYTHONPATH": str(root / "code"), "NUMBA_DISABLE_JIT": "1", "BATTLESNAKE_SEARCH_MS": "0",
           "PYTHONWARNINGS": "ignore"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env,
                            cwd=deployed["root"])
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.splitlines()[-1])
    assert out["reply"]["move"] in MOVE_NAMES
    assert out["server"].startswith(str(root / "code" / "lib")) and out["gym"].startswith(str(root / "code" / "lib"))


def test_deploy_refuses_missing_folders_and_a_model_that_is_neither_s3_nor_a_file(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="no entry point 'serve.py'"):
        build_model("s3://b/model.tar.gz", ROLE, entry_point="serve.py")
    with pytest.raises(DeployError, match="dependency folders not found"):
        build_model("s3://b/model.tar.gz", ROLE, dependencies=[tmp_path / "missing"])
    with pytest.raises(DeployError, match="s3:// URI or a local model.tar.gz"):
        build_model(str(tmp_path / "nothing.tar.gz"), ROLE)
    with pytest.raises(DeployError, match="initial_instance_count"):
        deploy("s3://b/model.tar.gz", ROLE, initial_instance_count=0)
