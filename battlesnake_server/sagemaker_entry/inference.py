"""Entry point of the SageMaker endpoint (``SAGEMAKER_PROGRAM=inference.py``): the handler functions of
``battlesnake_server.sagemaker_inference``, under a module name that does not hide the container's own
``sagemaker_inference`` package. ``sagemaker_rl.deploy`` ships it with its requirements.txt; the SDK puts the code
folders it depends on in ``lib/`` beside it, which the PyTorch container does not put on the path: this file does."""

import os
import sys

_LIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib")
if os.path.isdir(_LIB) and _LIB not in sys.path:
    sys.path.insert(0, _LIB)

from battlesnake_server.sagemaker_inference import input_fn, model_fn, output_fn, predict_fn  # noqa: E402

__all__ = ["input_fn", "model_fn", "output_fn", "predict_fn"]
