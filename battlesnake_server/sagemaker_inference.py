"""A SageMaker real-time endpoint that plays Battlesnake: the handler functions of the SageMaker PyTorch inference
container, which take a ``/move`` request body and return the move.

The container calls ``model_fn(model_dir)`` once per worker, then for each invocation ``input_fn(body,
content_type)``, ``predict_fn(data, model)`` and ``output_fn(prediction, accept)``. They run the same ``SnakeApp`` as
``battlesnake-rl serve``: the model, the safety layer within ``game.timeout``, the bot where the model cannot see.

``model.tar.gz`` holds ``policy.pt`` (or ``policy.onnx``) and the run's ``config.json`` at its root; ``package_model``
writes one from a run folder. ``sagemaker_rl.deploy.deploy`` ships this module (through the two-line entry point
``sagemaker_entry/inference.py``, named so that it does not hide the container's own ``sagemaker_inference``
package) with ``battlesnake_server``, ``battlesnake_gym`` and ``battlesnake_policy`` as dependencies.

Environment variables the endpoint reads (set them through ``deploy(env=...)``):

- ``BATTLESNAKE_SEARCH_MS``: rollout time per move (default: the server's, ``safety.DEFAULT_SEARCH_MS``); 0 for none.
- ``BATTLESNAKE_BOT``: the fallback bot (default ``flood``).
- ``BATTLESNAKE_SAFETY``: ``0`` plays the raw policy.

Example (no container needed)::

    app = model_fn("model_dir")                      # policy.pt + config.json
    data = input_fn(request_json, "application/json")
    body, content_type = output_fn(predict_fn(data, app), "application/json")   # '{"move": "up"}'
"""

from __future__ import annotations

import json
import os
import tarfile
import time
from pathlib import Path
from typing import Any

from battlesnake_policy import CONFIG_FILE, MODEL_FILES, ModelError, find_config, find_model_file
from battlesnake_server.app import SnakeApp
from battlesnake_server.players import load_model
from battlesnake_server.request import RequestError, decode_json
from battlesnake_server.safety import DEFAULT_SEARCH_MS, SafetyLayer

JSON = "application/json"

try:  # inside the container: errors the toolkit turns into an HTTP status
    from sagemaker_inference.errors import BaseInferenceToolkitError as _ToolkitError
except ImportError:  # anywhere else: the same constructor and attributes

    class _ToolkitError(Exception):  # type: ignore[no-redef]
        def __init__(self, status_code: int, message: str, phrase: str):
            self.status_code, self.message, self.phrase = status_code, message, phrase
            super().__init__(status_code, message, phrase)


class InvocationError(_ToolkitError):
    """A request the endpoint refuses: ``status_code`` (400, 415) and ``message`` reach the caller."""

    def __init__(self, status_code: int, message: str):
        phrase = {400: "Bad Request", 415: "Unsupported Media Type"}.get(status_code, "Error")
        super().__init__(status_code, message, phrase)

    def __str__(self) -> str:
        return f"{self.status_code} {self.phrase}: {self.message}"


def _env_float(name: str, default: float) -> float:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return float(text)
    except ValueError:
        raise ModelError(f"{name} must be a number, got {text!r}") from None


def model_fn(model_dir: str) -> SnakeApp:
    """The snake for the model in ``model_dir`` (the unpacked model.tar.gz): its policy file and config.json.

    ``policy.pt`` is tried first, then ``policy.onnx`` (a TorchScript file written by a newer torch than the
    container's may not load; the ONNX file needs ``onnxruntime``, which the entry point's requirements install).
    """
    folder = Path(model_dir)
    candidates = [folder / name for name in MODEL_FILES if (folder / name).is_file()] or [find_model_file(folder)]
    problems = []
    for candidate in candidates:
        try:
            model = load_model(candidate)
            break
        except ModelError as e:
            problems.append(str(e))
    else:
        raise ModelError("no policy in " + str(folder) + " loads: " + "; ".join(problems))
    safety = SafetyLayer(enabled=os.environ.get("BATTLESNAKE_SAFETY", "1") != "0",
                         search_ms=_env_float("BATTLESNAKE_SEARCH_MS", DEFAULT_SEARCH_MS))
    app = SnakeApp(model, bot=os.environ.get("BATTLESNAKE_BOT", "flood"), safety=safety)
    app.warm_up()
    return app


def input_fn(request_body: str | bytes, request_content_type: str) -> dict[str, Any]:
    """The ``/move`` body as a dict, stamped with its arrival time (the deadline counts from it)."""
    received = time.perf_counter()
    content_type = (request_content_type or "").split(";")[0].strip().lower()
    if content_type != JSON:
        raise InvocationError(415, f"send the /move body as {JSON}, got {request_content_type!r}")
    raw = request_body.encode("utf-8", "surrogatepass") if isinstance(request_body, str) else bytes(request_body)
    try:
        return {"body": decode_json(raw), "received": received}
    except RequestError as e:
        raise InvocationError(e.status, str(e)) from None


def predict_fn(data: dict[str, Any], model: SnakeApp) -> dict[str, str]:
    """``{"move": "up" | "down" | "left" | "right"}`` for the body ``input_fn`` read."""
    try:
        return model.move(data["body"], data.get("received"))
    except RequestError as e:
        raise InvocationError(e.status, str(e)) from None


def output_fn(prediction: dict[str, str], accept: str) -> tuple[str, str]:
    """(JSON text, content type): the reply is JSON whatever ``accept`` asks for."""
    return json.dumps(prediction), JSON


def package_model(source: str | os.PathLike, out_file: str | os.PathLike) -> Path:
    """Write ``model.tar.gz`` for the endpoint: the policy file(s) and config.json found from ``source`` (a run
    folder, a model folder or a policy file), flat at the archive root. The model must load (checked here)."""
    model_file = find_model_file(source)
    config = find_config(model_file)
    load_model(model_file, config)  # refuse to package what the endpoint could not serve
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:gz") as tar:
        for name in MODEL_FILES:
            if (model_file.parent / name).is_file():
                tar.add(model_file.parent / name, arcname=name)
        if model_file.name not in MODEL_FILES:
            tar.add(model_file, arcname=MODEL_FILES[0] if model_file.suffix != ".onnx" else MODEL_FILES[1])
        if config is not None:
            tar.add(config, arcname=CONFIG_FILE)
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m battlesnake_server.sagemaker_inference RUN_OR_MODEL OUT.tar.gz``: package a model."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] in ("-h", "--help"):
        print("usage: python -m battlesnake_server.sagemaker_inference RUN_OR_MODEL_PATH OUT.tar.gz", file=sys.stderr)
        return 2
    try:
        out = package_model(args[0], args[1])
    except (ModelError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
