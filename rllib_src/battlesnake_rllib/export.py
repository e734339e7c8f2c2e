"""Greedy policies out of trained modules: TorchScript and ONNX files, and a loader that needs neither Ray nor RLlib.

``export_module`` wraps a module's policy (``BattlesnakeCNN``: the policy logits; ``BattlesnakeCNNQ``: the Q-values)
in ``PolicyForExport`` and writes ``policy.pt`` (TorchScript) and ``policy.onnx`` (ONNX, dynamo exporter). Both
files map ``(obs (N, *obs_shape) uint8, action_mask (N, 4) int8) -> logits (N, 4) float32``, with the actions the mask
forbids at ``MASKED_LOGIT`` (unless the mask forbids every action: then no action is masked). ``load_policy`` reads
either file back as a callable ``policy(obs, action_mask) -> actions (N,) int64`` (0 up, 1 down, 2 left, 3 right).

This module imports neither Ray nor the RLlib module classes at import time, so a game server can load a policy
with torch (TorchScript) or onnxruntime (ONNX) alone; only ``export_module`` given a checkpoint path imports Ray.

Example::

    paths = export_module(module, "exported")      # {"torchscript": Path(...), "onnx": Path(...)}
    policy = load_policy(paths["onnx"])
    actions = policy(obs, action_mask)             # (N,) int64
"""

from __future__ import annotations

import json
import logging
import os
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

MASKED_LOGIT = -1e9
"""The logit (or Q-value) given to a forbidden action: finite, so softmax, entropy and KL never see inf or NaN."""

ACTION_NAMES = ("up", "down", "left", "right")
TORCHSCRIPT_FILE = "policy.pt"
ONNX_FILE = "policy.onnx"
FORMATS = ("torchscript", "onnx")
_META_FILE = "battlesnake_policy.json"  # stored inside the TorchScript archive
_ONNX_INSTALL = "pip install onnx onnxscript"  # what torch's dynamo ONNX exporter imports


def mask_logits(logits: torch.Tensor, action_mask: torch.Tensor | None) -> torch.Tensor:
    """``logits`` (..., A) with the actions ``action_mask`` (..., A) forbids (entries <= 0) set to ``MASKED_LOGIT``.

    A row whose mask forbids every action is left unmasked: when every move is fatal the policy still picks one.
    """
    if action_mask is None:
        return logits
    allowed = action_mask > 0  # (..., A) bool
    blocked = ~allowed & allowed.any(dim=-1, keepdim=True)
    return logits.masked_fill(blocked, MASKED_LOGIT)


class ExportableModule(Protocol):
    """What ``export_module`` needs from a module (``BattlesnakeCNN`` and ``BattlesnakeCNNQ`` have both)."""

    obs_shape: tuple[int, ...]

    def export_scorer(self) -> nn.Module:
        """A copy of the greedy scorer: ``(N, *obs_shape) uint8 -> (N, A) float32`` (unmasked)."""
        ...


class PolicyForExport(nn.Module):
    """``(obs (N, *obs_shape) uint8, action_mask (N, A)) -> logits (N, A) float32``, masked by ``mask_logits``.

    ``scorer`` maps raw uint8 observations to one unmasked score per action (the module's policy logits or
    Q-values); its argmax is the greedy action.
    """

    def __init__(self, scorer: nn.Module, obs_shape: Sequence[int], num_actions: int = len(ACTION_NAMES)):
        super().__init__()
        self.scorer = scorer
        self.obs_shape = tuple(int(d) for d in obs_shape)
        self.num_actions = int(num_actions)

    def forward(self, obs: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
        return mask_logits(self.scorer(obs), action_mask)

    def metadata(self) -> dict[str, Any]:
        """What the files record about their inputs (read back by ``load_policy``)."""
        return {"obs_shape": list(self.obs_shape), "obs_dtype": "uint8", "num_actions": self.num_actions,
                "action_names": list(ACTION_NAMES[: self.num_actions]), "masked_logit": MASKED_LOGIT}


def export_module(module: ExportableModule | str | os.PathLike, out_dir: str | os.PathLike, *,
                  module_id: str | None = None, formats: Sequence[str] = FORMATS) -> dict[str, Path]:
    """Writes the greedy policy of ``module`` to ``out_dir`` and returns ``{format: path}``.

    Args:
        module: a ``BattlesnakeCNN`` / ``BattlesnakeCNNQ`` instance, or the path of a checkpoint holding one: an
            RLModule or MultiRLModule checkpoint directory, or an Algorithm checkpoint (its
            ``learner_group/learner/rl_module`` is used). Loading a checkpoint imports Ray.
        out_dir: created if missing; receives ``policy.pt`` and/or ``policy.onnx``.
        module_id: which module of a MultiRLModule checkpoint; may be left out when it holds only one.
        formats: any of ``"torchscript"`` and ``"onnx"``. ONNX needs ``pip install onnx onnxscript``.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"formats must be a non-empty subset of {FORMATS}, got {list(formats)!r}")
    if isinstance(module, (str, os.PathLike)):
        module = load_module_checkpoint(module, module_id=module_id)
    if not hasattr(module, "export_scorer") or not hasattr(module, "obs_shape"):
        raise TypeError(f"cannot export {type(module).__name__}: it needs export_scorer() and obs_shape "
                        f"(BattlesnakeCNN and BattlesnakeCNNQ have them)")
    policy = PolicyForExport(module.export_scorer(), module.obs_shape).eval()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    if "torchscript" in formats:
        paths["torchscript"] = _export_torchscript(policy, out / TORCHSCRIPT_FILE)
    if "onnx" in formats:
        paths["onnx"] = _export_onnx(policy, out / ONNX_FILE)
    return paths


def load_module_checkpoint(path: str | os.PathLike, *, module_id: str | None = None) -> Any:
    """The single RLModule stored under ``path`` (see ``export_module``); imports Ray."""
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModule
    from ray.rllib.core.rl_module.rl_module import RLModule

    path = Path(path)
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


def _example_inputs(policy: PolicyForExport, batch: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """A random (obs, action_mask) batch to trace with (batch > 1, so the exporters keep the batch size free)."""
    generator = torch.Generator().manual_seed(0)
    obs = torch.randint(0, 256, (batch, *policy.obs_shape), generator=generator, dtype=torch.uint8)
    mask = torch.randint(0, 2, (batch, policy.num_actions), generator=generator, dtype=torch.int8)
    return obs, mask


def _export_torchscript(policy: PolicyForExport, path: Path) -> Path:
    example = _example_inputs(policy)
    # torch 2.13 marks torch.jit deprecated in favour of torch.export; TorchScript is still what C++/mobile load.
    with warnings.catch_warnings(), torch.no_grad():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.jit")
        traced = torch.jit.trace(policy, example)
        torch.jit.save(traced, str(path), _extra_files={_META_FILE: json.dumps(policy.metadata())})
    return path


def _export_onnx(policy: PolicyForExport, path: Path) -> Path:
    try:
        import onnxscript  # noqa: F401  (torch's dynamo exporter imports it, and onnx, lazily)
    except ImportError as e:
        raise ImportError(f"exporting ONNX needs the onnx and onnxscript packages: {_ONNX_INSTALL}") from e
    batch = torch.export.Dim("batch", min=1)
    onnx_logger = logging.getLogger("torch.onnx")
    level = onnx_logger.level
    # The exporter logs a line per missing torchvision op and warns about pytree internals: noise for this model.
    onnx_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", category=UserWarning, message=r".*axis name")
            program = torch.onnx.export(policy, _example_inputs(policy), dynamo=True,
                                        input_names=["obs", "action_mask"], output_names=["logits"],
                                        dynamic_shapes=({0: batch}, {0: batch}), verbose=False)
    finally:
        onnx_logger.setLevel(level)
    program.model.metadata_props.update({_META_FILE: json.dumps(policy.metadata())})
    program.save(str(path), external_data=False)
    return path


class LoadedPolicy:
    """A loaded policy file: ``policy(obs, action_mask) -> actions (N,) int64``; ``policy.logits(...)`` too.

    ``obs`` is ``(N, *obs_shape)`` uint8 (one observation ``obs_shape`` gives ``N = 1``); ``action_mask`` is
    ``(N, 4)`` of any numeric type (> 0 = allowed) or None for all allowed. numpy arrays or torch tensors.
    """

    def __init__(self, path: Path, fmt: str, run: Any, metadata: dict[str, Any]):
        self.path = path
        self.format = fmt
        self.metadata = metadata
        self.obs_shape: tuple[int, ...] = tuple(metadata["obs_shape"])
        self.num_actions: int = int(metadata.get("num_actions", len(ACTION_NAMES)))
        self._run = run

    def logits(self, obs: Any, action_mask: Any = None) -> np.ndarray:
        """(N, A) float32 masked logits (or Q-values)."""
        obs_np = _to_numpy(obs)
        if obs_np.dtype != np.uint8:
            raise ValueError(f"obs must be uint8 (the raw encoder output), got {obs_np.dtype}")
        if obs_np.shape == self.obs_shape:
            obs_np = obs_np[None]
        if obs_np.shape[1:] != self.obs_shape:
            raise ValueError(f"obs must have shape (N, {', '.join(map(str, self.obs_shape))}) for {self.path.name}, "
                             f"got {obs_np.shape}")
        n = obs_np.shape[0]
        if action_mask is None:
            mask = np.ones((n, self.num_actions), np.int8)
        else:
            mask = (_to_numpy(action_mask) > 0).astype(np.int8).reshape(-1, self.num_actions)
            if mask.shape[0] != n:
                raise ValueError(f"action_mask must have shape ({n}, {self.num_actions}), got {mask.shape}")
        return self._run(np.ascontiguousarray(obs_np), mask)

    def __call__(self, obs: Any, action_mask: Any = None) -> np.ndarray:
        """(N,) int64 greedy actions."""
        return self.logits(obs, action_mask).argmax(axis=-1).astype(np.int64)

    def __repr__(self) -> str:
        return f"LoadedPolicy({str(self.path)!r}, format={self.format!r}, obs_shape={self.obs_shape})"


def load_policy(path: str | os.PathLike, *, num_threads: int | None = None) -> LoadedPolicy:
    """Loads a file written by ``export_module`` (or the directory holding one) without importing Ray.

    TorchScript (``.pt``, a zip archive) is loaded with ``torch.jit.load``; ONNX (``.onnx``) with onnxruntime
    (``pip install onnxruntime``). A directory means its ``policy.pt``, else its ``policy.onnx``.
    ``num_threads`` caps the threads the runtime uses (None: its default).
    """
    path = Path(path)
    if path.is_dir():
        candidates = [path / TORCHSCRIPT_FILE, path / ONNX_FILE]
        found = [p for p in candidates if p.is_file()]
        if not found:
            raise FileNotFoundError(f"no {TORCHSCRIPT_FILE} or {ONNX_FILE} in the directory {path}")
        path = found[0]
    if not path.is_file():
        raise FileNotFoundError(f"no policy file at {path}")
    if zipfile.is_zipfile(path):
        return _load_torchscript(path, num_threads)
    if path.suffix.lower() == ".onnx":
        return _load_onnx(path, num_threads)
    raise ValueError(f"{path} is not a policy file: expected a TorchScript archive (.pt) or an ONNX model (.onnx) "
                     f"written by export_module")


def _load_torchscript(path: Path, num_threads: int | None) -> LoadedPolicy:
    extra = {_META_FILE: ""}
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.jit")
            model = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as e:  # torch raises RuntimeError for zips that are not TorchScript archives
        raise ValueError(f"{path} is not a TorchScript policy: {e}") from e
    if not extra[_META_FILE]:
        raise ValueError(f"{path} is a TorchScript file but not one written by export_module (no {_META_FILE})")
    metadata = json.loads(extra[_META_FILE])
    model.eval()

    def run(obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        previous = torch.get_num_threads()
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        try:
            with torch.inference_mode():
                return model(torch.from_numpy(obs), torch.from_numpy(mask)).numpy()
        finally:
            if num_threads is not None:
                torch.set_num_threads(previous)

    return LoadedPolicy(path, "torchscript", run, metadata)


def _load_onnx(path: Path, num_threads: int | None) -> LoadedPolicy:
    try:
        import onnxruntime
    except ImportError as e:
        raise ImportError(f"loading the ONNX policy {path} needs onnxruntime: pip install onnxruntime") from e
    options = onnxruntime.SessionOptions()
    if num_threads is not None:
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for a malformed file
        raise ValueError(f"{path} is not a loadable ONNX policy: {e}") from e
    names = [i.name for i in session.get_inputs()]
    if names != ["obs", "action_mask"]:
        raise ValueError(f"{path} is an ONNX model but not one written by export_module (inputs {names})")
    stored = session.get_modelmeta().custom_metadata_map.get(_META_FILE)
    if stored:
        metadata = json.loads(stored)
    else:  # not written by this version: the input's static dims are the observation shape
        metadata = {"obs_shape": [int(d) for d in session.get_inputs()[0].shape[1:]]}

    def run(obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return session.run(["logits"], {"obs": obs, "action_mask": mask})[0]

    return LoadedPolicy(path, "onnx", run, metadata)


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)
