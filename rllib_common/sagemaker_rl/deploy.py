"""Deploy a trained model to a SageMaker real-time endpoint with the SDK v2 ``PyTorchModel``.

Generic: the model archive, the inference entry point, its source folder and the code folders it imports are
arguments. The defaults are this project's: ``battlesnake_server/sagemaker_entry/inference.py`` (the handler
functions of ``battlesnake_server.sagemaker_inference``) with ``battlesnake_server``, ``battlesnake_gym`` and
``battlesnake_policy`` copied beside it. The SDK repacks ``model.tar.gz`` with them under ``code/``, and the PyTorch
inference container installs ``code/requirements.txt`` and imports the entry point.

How to run::

    python -m battlesnake_server.sagemaker_inference runs/<name> model.tar.gz    # policy.pt + config.json
    python -m sagemaker_rl.deploy --model-data s3://bucket/path/model.tar.gz --role arn:aws:iam::...:role/... \\
        --instance-type ml.c5.large --endpoint-name my-snake

    from sagemaker_rl.deploy import deploy
    predictor = deploy("s3://bucket/model.tar.gz", role)       # a local model.tar.gz is uploaded first
    predictor.predict(move_request_body)                        # {"move": "up"}

The SageMaker SDK is imported only when a model is built, so this module loads without it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .sources import NOT_SHIPPED, copy_clean, endpoint_sources

__all__ = ["DEFAULT_DEPENDENCIES", "NOT_SHIPPED", "DeployError", "build_model", "deploy", "main", "stage_code"]

_ENDPOINT = endpoint_sources()  # this project's endpoint (sagemaker_rl.sources)
DEFAULT_ENTRY_POINT = _ENDPOINT.entry_point
DEFAULT_SOURCE_DIR = _ENDPOINT.source_dir
DEFAULT_DEPENDENCIES = _ENDPOINT.dependencies
#: The newest PyTorch inference image the SDK v2 knows (CPU and GPU): torch 2.6 on Python 3.12.
DEFAULT_FRAMEWORK_VERSION = "2.6"
DEFAULT_PY_VERSION = "py312"
DEFAULT_INSTANCE_TYPE = "ml.c5.large"


class DeployError(ValueError):
    """Deployment arguments that cannot work (missing folders, a model archive that is neither S3 nor a file)."""


def _check_paths(entry_point: str, source_dir: str | os.PathLike, dependencies: Sequence[str | os.PathLike]) -> None:
    source = Path(source_dir)
    if not (source / entry_point).is_file():
        raise DeployError(f"no entry point {entry_point!r} in the source folder {source}")
    missing = [str(d) for d in dependencies if not Path(d).is_dir()]
    if missing:
        raise DeployError(f"dependency folders not found: {', '.join(missing)}")


def stage_code(folders: Sequence[str | os.PathLike], staging_dir: str | os.PathLike) -> list[str]:
    """Copies of ``folders`` under ``staging_dir`` without ``NOT_SHIPPED`` files; returns their paths."""
    return [str(copy_clean(folder, Path(staging_dir) / Path(folder).name)) for folder in folders]


def build_model(model_data: str, role: str, *, entry_point: str = DEFAULT_ENTRY_POINT,
                source_dir: str | os.PathLike = DEFAULT_SOURCE_DIR,
                dependencies: Sequence[str | os.PathLike] = DEFAULT_DEPENDENCIES,
                framework_version: str = DEFAULT_FRAMEWORK_VERSION, py_version: str = DEFAULT_PY_VERSION,
                env: Mapping[str, str] | None = None, name: str | None = None, sagemaker_session: Any = None,
                staging_dir: str | os.PathLike | None = None, **model_kwargs: Any) -> Any:
    """The ``sagemaker.pytorch.PyTorchModel`` serving ``model_data`` (an ``s3://`` URI, or a local model.tar.gz that
    is uploaded to the session's default bucket), not yet deployed. ``model_kwargs`` go to ``PyTorchModel``.

    The source and dependency folders are copied into ``staging_dir`` (a new temporary folder if None; it must
    last until the model is deployed, when the SDK packs them) without bytecode and compiled caches.
    """
    _check_paths(entry_point, source_dir, dependencies)
    is_s3 = str(model_data).startswith("s3://")
    if not is_s3 and not Path(model_data).is_file():
        raise DeployError(f"model_data must be an s3:// URI or a local model.tar.gz, got {model_data!r}")
    from sagemaker.pytorch import PyTorchModel, PyTorchPredictor
    from sagemaker.session import Session

    stage = Path(staging_dir) if staging_dir is not None else Path(tempfile.mkdtemp(prefix="sagemaker-code-"))
    source_dir = stage_code([source_dir], stage / "source")[0]
    dependencies = stage_code(dependencies, stage / "dependencies")
    session = sagemaker_session if sagemaker_session is not None else Session()
    if not is_s3:
        model_data = session.upload_data(str(model_data), key_prefix="models")
    return PyTorchModel(model_data=model_data, role=role, entry_point=entry_point, source_dir=str(source_dir),
                        dependencies=[str(d) for d in dependencies], framework_version=framework_version,
                        py_version=py_version, env=dict(env or {}), name=name, sagemaker_session=session,
                        predictor_cls=PyTorchPredictor, **model_kwargs)


def deploy(model_data: str, role: str, instance_type: str = DEFAULT_INSTANCE_TYPE, *, initial_instance_count: int = 1,
           endpoint_name: str | None = None, wait: bool = True, **build_kwargs: Any) -> Any:
    """Create the model and a real-time endpoint; returns its predictor, which sends and reads JSON.

    Args:
        model_data: ``s3://.../model.tar.gz`` or a local archive (uploaded first).
        role: the IAM role ARN SageMaker runs the endpoint as.
        instance_type: e.g. ``ml.c5.large`` (a CPU is plenty for one small CNN per request).
        initial_instance_count: instances behind the endpoint.
        endpoint_name: defaults to the model's generated name.
        wait: block until the endpoint is in service.
        build_kwargs: ``build_model``'s keyword arguments (entry point, folders, versions, env, session...).
    """
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.serializers import JSONSerializer

    if initial_instance_count < 1:
        raise DeployError(f"initial_instance_count must be >= 1, got {initial_instance_count}")
    with tempfile.TemporaryDirectory(prefix="sagemaker-code-") as stage:
        model = build_model(model_data, role, staging_dir=stage, **build_kwargs)
        return model.deploy(initial_instance_count=initial_instance_count, instance_type=instance_type,
                            endpoint_name=endpoint_name, serializer=JSONSerializer(),
                            deserializer=JSONDeserializer(), wait=wait)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sagemaker_rl.deploy", description=__doc__.splitlines()[0])
    p.add_argument("--model-data", required=True, help="s3:// URI or local path of model.tar.gz")
    p.add_argument("--role", required=True, help="IAM role ARN for the endpoint")
    p.add_argument("--instance-type", default=DEFAULT_INSTANCE_TYPE)
    p.add_argument("--instance-count", type=int, default=1)
    p.add_argument("--endpoint-name")
    p.add_argument("--env", action="append", default=[], help="KEY=VALUE for the container (repeat)")
    p.add_argument("--no-wait", action="store_true", help="return once the endpoint is being created")
    args = p.parse_args(argv)
    env = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"error: --env must look like KEY=VALUE, got {item!r}", file=sys.stderr)
            return 2
        env[key] = value
    try:
        predictor = deploy(args.model_data, args.role, args.instance_type, initial_instance_count=args.instance_count,
                           endpoint_name=args.endpoint_name, wait=not args.no_wait, env=env)
    except DeployError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"endpoint: {predictor.endpoint_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
