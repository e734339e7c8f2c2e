"""Endpoints a notebook deployed: the local stand-in for a real-time endpoint (the stand-in API records endpoints
but runs none), and the clean-up of a real one, which is billed by the hour until it is deleted.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .commands import NotebookError
from .jobs import fetch_archive

if TYPE_CHECKING:
    from .notebook import Aws


class LocalEndpoint:
    """An endpoint's model served by its own inference script in this process: the stand-in for a real-time
    endpoint, which the local SageMaker API records but does not run.

    It reads what the endpoint's container would get, the model archive the SDK uploaded (``model.tar.gz`` with
    the inference code under ``code/``), loads ``code/<SAGEMAKER_PROGRAM>`` and calls its handler functions as the
    inference toolkit does: ``model_fn`` once, then ``input_fn``, ``predict_fn`` and ``output_fn`` per request.
    Packages the script imports come from this environment when it already has them.
    """

    def __init__(self, model_dir: str | os.PathLike, program: str = "inference.py"):
        self.model_dir = Path(model_dir)
        script = self.model_dir / "code" / program
        if not script.is_file():
            raise NotebookError(f"no inference script {script} in the endpoint's model archive")
        spec = importlib.util.spec_from_file_location(f"endpoint_{abs(hash(str(script)))}", script)
        assert spec is not None and spec.loader is not None
        self.handlers = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.handlers)
        missing = [f for f in ("model_fn", "input_fn", "predict_fn", "output_fn") if not hasattr(self.handlers, f)]
        if missing:
            raise NotebookError(f"{script} lacks the handler function(s) {', '.join(missing)}")
        self.model = self.handlers.model_fn(str(self.model_dir))

    @classmethod
    def for_model(cls, aws: Aws, model_name: str, folder: str | os.PathLike) -> LocalEndpoint:
        """The stand-in for SageMaker model ``model_name`` (as created by ``deploy``): its archive unpacked into
        ``folder``."""
        container = aws.session.sagemaker_client.describe_model(ModelName=model_name)["PrimaryContainer"]
        program = container.get("Environment", {}).get("SAGEMAKER_PROGRAM", "inference.py")
        return cls(fetch_archive(aws, container["ModelDataUrl"], folder), program)

    def predict(self, data: Any) -> Any:
        """JSON in, JSON out, as the SDK's predictor with JSON (de)serializers sends and reads it."""
        request = self.handlers.input_fn(json.dumps(data), "application/json")
        body, _ = self.handlers.output_fn(self.handlers.predict_fn(request, self.model), "application/json")
        return json.loads(body)


def delete_endpoint(aws: Aws, name: str) -> None:
    """Delete the endpoint, endpoint config and model ``deploy`` created under one ``name``: an endpoint is billed
    by the hour until it is deleted. Parts already gone are skipped."""
    client = aws.session.sagemaker_client
    for call, key in ((client.delete_endpoint, "EndpointName"), (client.delete_endpoint_config, "EndpointConfigName"),
                      (client.delete_model, "ModelName")):
        try:
            call(**{key: name})
        except client.exceptions.ClientError as exc:
            if "Could not find" not in str(exc) and "does not exist" not in str(exc):
                raise
