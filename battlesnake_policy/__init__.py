"""The exported-policy format, in one place and without Ray: what training writes and every player reads.

- ``spec``: ``PolicySpec`` (the game a policy was trained for: encoder, window, board, rules) in ``config.json``,
  and where a model's files are (beside the policy file, or in its run folder);
- ``files``: ``policy.pt`` (TorchScript) and ``policy.onnx`` with their logits and value outputs, written from any
  torch network (``write_policy``) and loaded with torch or onnxruntime alone (``load_policy``);
- ``load_model``: a policy file and its spec together (``Model``), what the server, the SageMaker handler,
  ``battlesnake-rl evaluate`` and the ladder load.

Training (``battlesnake_rllib.export``) writes through this package; nothing here imports Ray or RLlib.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .files import (
    ACTION_NAMES,
    FORMATS,
    MASKED_LOGIT,
    LoadedPolicy,
    PolicyForExport,
    load_policy,
    mask_logits,
    write_policy,
)
from .spec import (
    CONFIG_FILE,
    FORMAT_NAME,
    MODEL_FILES,
    ONNX_FILE,
    TORCHSCRIPT_FILE,
    ModelError,
    PolicySpec,
    find_config,
    find_model_file,
    read_config,
    write_config,
)

__all__ = ["ACTION_NAMES", "CONFIG_FILE", "FORMAT_NAME", "FORMATS", "MASKED_LOGIT", "MODEL_FILES", "ONNX_FILE",
           "TORCHSCRIPT_FILE", "LoadedPolicy", "Model", "ModelError", "PolicyForExport", "PolicySpec", "find_config",
           "find_model_file", "load_model", "load_policy", "mask_logits", "read_config", "write_config",
           "write_policy"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Model:
    """A loaded policy file and the game spec it was trained for (checked to agree on the observation shape)."""

    policy: LoadedPolicy
    spec: PolicySpec
    source: str  # where the spec came from: a config.json path, or "the observation shape ..."

    @property
    def path(self) -> Path:
        return self.policy.path


def load_model(path: str | os.PathLike, config: str | os.PathLike | None = None, *,
               num_threads: int | None = None) -> Model:
    """The policy at ``path`` (a file, a model folder or a run folder) and its ``config.json`` (``config``, else
    beside the file or in its run folder).

    Without a config.json, an observation shape of ``(10, v, v)`` (v odd) is read as the egocentric encoder with a
    v x v window (logged); any other shape is an error asking for the run's config.json. A spec whose encoder does
    not give the file's observation shape is refused naming both.
    """
    model_file = find_model_file(path)
    try:
        policy = load_policy(model_file, num_threads=num_threads)
    except (ValueError, ImportError, FileNotFoundError) as e:
        raise ModelError(str(e)) from None
    config_file = Path(config) if config is not None else find_config(model_file)
    shape = tuple(policy.obs_shape)
    if config_file is not None:
        if not config_file.is_file():
            raise ModelError(f"no model settings file at {config_file}")
        spec, source = read_config(config_file), str(config_file)
    elif len(shape) == 3 and shape[0] == 10 and shape[1] == shape[2] and shape[1] % 2:
        log.warning("no %s beside %s: reading its observation shape %s as the egocentric encoder with a %dx%d window",
                    CONFIG_FILE, model_file, shape, shape[1], shape[1])
        spec, source = PolicySpec(encoder="egocentric", view=shape[1]), f"the observation shape {shape}"
    else:
        raise ModelError(f"no {CONFIG_FILE} beside {model_file} or in {model_file.parent.parent}, and its "
                         f"observation shape {shape} is not an egocentric window: pass the run's config.json")
    trained_shape = spec.obs_shape()
    if trained_shape != shape:
        raise ModelError(f"the model {model_file} takes observations of shape {shape}, but its encoder "
                         f"{spec.encoder!r} (view {spec.view}) gives {trained_shape} on the trained "
                         f"{spec.width}x{spec.height} board with {spec.num_snakes} snakes (settings from {source})")
    return Model(policy, spec, source)
