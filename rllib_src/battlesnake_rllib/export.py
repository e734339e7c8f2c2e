"""Exporting trained modules: their greedy policy and value as ``battlesnake_policy`` files (TorchScript, ONNX).

``export_module`` wraps a module's heads (``BattlesnakeCNN``: the policy logits and the critic's value;
``BattlesnakeCNNQ``: the Q-values, whose best allowed one is the value) in ``battlesnake_policy.PolicyForExport``
and writes ``policy.pt`` and ``policy.onnx``. The format itself, and loading the files without Ray, live in
``battlesnake_policy``; only ``export_module`` given a checkpoint path imports Ray.

Example::

    paths = export_module(module, "exported")      # {"torchscript": Path(...), "onnx": Path(...)}
    policy = battlesnake_policy.load_policy(paths["onnx"])
    actions = policy(obs, action_mask)             # (N,) int64
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from torch import nn

from battlesnake_policy import FORMATS, PolicyForExport, write_policy


class ExportableModule(Protocol):
    """What ``export_module`` needs from a module (``BattlesnakeCNN`` and ``BattlesnakeCNNQ`` have both)."""

    obs_shape: tuple[int, ...]

    def export_heads(self) -> tuple[nn.Module, bool]:
        """(a copy of the heads: ``(N, *obs_shape) uint8 -> ((N, A) scores, (N,) value)``, whether the value is
        the best allowed score rather than the heads' own)."""
        ...


def export_module(module: ExportableModule | str | os.PathLike, out_dir: str | os.PathLike, *,
                  module_id: str | None = None, formats: Sequence[str] = FORMATS) -> dict[str, Path]:
    """Writes the greedy policy and value of ``module`` to ``out_dir`` and returns ``{format: path}``.

    Args:
        module: a ``BattlesnakeCNN`` / ``BattlesnakeCNNQ`` instance, or the path of a checkpoint holding one: an
            RLModule or MultiRLModule checkpoint directory, or an Algorithm checkpoint (its
            ``learner_group/learner/rl_module`` is used). Loading a checkpoint imports Ray.
        out_dir: created if missing; receives ``policy.pt`` and/or ``policy.onnx``.
        module_id: which module of a MultiRLModule checkpoint; may be left out when it holds only one.
        formats: any of ``"torchscript"`` and ``"onnx"``. ONNX needs ``pip install onnx onnxscript``.
    """
    if isinstance(module, (str, os.PathLike)):
        module = load_module_checkpoint(module, module_id=module_id)
    if not hasattr(module, "export_heads") or not hasattr(module, "obs_shape"):
        raise TypeError(f"cannot export {type(module).__name__}: it needs export_heads() and obs_shape "
                        f"(BattlesnakeCNN and BattlesnakeCNNQ have them)")
    heads, value_is_best_score = module.export_heads()
    return write_policy(PolicyForExport(heads, module.obs_shape, value_is_best_score=value_is_best_score), out_dir,
                        formats)


def load_module_checkpoint(path: str | os.PathLike, *, module_id: str | None = None) -> Any:
    """The single RLModule stored under ``path`` (see ``export_module``); imports Ray."""
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModule
    from ray.rllib.core.rl_module.rl_module import RLModule

    path = Path(path).resolve()  # pyarrow's filesystem layer takes a relative path for a URI without a scheme
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    algorithm_modules = path / "learner_group" / "learner" / "rl_module"
    if algorithm_modules.is_dir():
        path = algorithm_modules
    try:
        loaded = RLModule.from_checkpoint(path)
    except Exception as e:  # RLlib raises several types for a directory that is not a module checkpoint
        raise ValueError(f"{path} is not an RLModule checkpoint: {e}") from e
    if isinstance(loaded, MultiRLModule):
        ids = sorted(loaded.keys())
        if module_id is None and len(ids) == 1:
            module_id = ids[0]
        if module_id not in ids:
            raise ValueError(f"{path} holds the modules {ids}: pass module_id= to pick one, got {module_id!r}")
        loaded = loaded[module_id]
    return loaded
