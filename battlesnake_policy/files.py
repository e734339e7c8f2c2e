"""Policy files: TorchScript and ONNX written from any torch network, read back without Ray or RLlib.

Both files map ``(obs (N, *obs_shape) uint8, action_mask (N, 4) int8) -> (logits (N, 4) float32, value (N,)
float32)``: the policy's logits (or a Q-network's Q-values) with the actions the mask forbids at ``MASKED_LOGIT``
(unless the mask forbids every action: then no action is masked), and the network's estimate of the snake's return
from this position (the critic's value; a Q-network's largest allowed Q-value). Files written before the value
output existed give the logits alone; they still play, but cannot drive a search (``LoadedPolicy.has_value``).

Example::

    paths = write_policy(heads, obs_shape, "model")      # {"torchscript": Path, "onnx": Path}
    policy = load_policy("model/policy.onnx")
    actions = policy(obs, action_mask)                   # (N,) int64 greedy moves
    logits, values = policy.evaluate(obs, action_mask)   # (N, 4), (N,)
"""

from __future__ import annotations

import json
import logging
import os
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .spec import MODEL_FILES, ONNX_FILE, TORCHSCRIPT_FILE, ModelError

MASKED_LOGIT = -1e9
"""The logit (or Q-value) given to a forbidden action: finite, so softmax, entropy and KL never see inf or NaN."""

ACTION_NAMES = ("up", "down", "left", "right")
FORMATS = ("torchscript", "onnx")
#: Where the files keep their metadata: a file inside the TorchScript archive, a metadata entry of the ONNX model.
META_KEY = "battlesnake_policy.json"
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


class PolicyForExport(nn.Module):
    """``(obs (N, *obs_shape) uint8, action_mask (N, A)) -> (logits (N, A), value (N,))`` float32.

    ``heads`` maps raw uint8 observations to ``(scores (N, A), value (N,))``: one unmasked score per action (policy
    logits or Q-values; the argmax is the greedy action) and the critic's value. With ``value_is_best_score`` (a
    Q-network, whose ``heads`` value is ignored) the value is the largest allowed score instead.
    """

    def __init__(self, heads: nn.Module, obs_shape: Sequence[int], num_actions: int = len(ACTION_NAMES),
                 value_is_best_score: bool = False):
        super().__init__()
        self.heads = heads
        self.obs_shape = tuple(int(d) for d in obs_shape)
        self.num_actions = int(num_actions)
        self.value_is_best_score = bool(value_is_best_score)

    def forward(self, obs: torch.Tensor, action_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores, value = self.heads(obs)
        logits = mask_logits(scores, action_mask)
        if self.value_is_best_score:
            value = logits.max(dim=-1).values
        return logits, value

    def metadata(self) -> dict[str, Any]:
        """What the files record about their inputs and outputs (read back by ``load_policy``)."""
        return {"obs_shape": list(self.obs_shape), "obs_dtype": "uint8", "num_actions": self.num_actions,
                "action_names": list(ACTION_NAMES[: self.num_actions]), "masked_logit": MASKED_LOGIT,
                "outputs": ["logits", "value"], "value": "best_score" if self.value_is_best_score else "critic"}


def write_policy(policy: PolicyForExport, out_dir: str | os.PathLike, formats: Sequence[str] = FORMATS
                 ) -> dict[str, Path]:
    """Writes ``policy`` as ``policy.pt`` and/or ``policy.onnx`` in ``out_dir`` (created); returns ``{format: path}``.

    ONNX needs ``pip install onnx onnxscript``.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"formats must be a non-empty subset of {FORMATS}, got {list(formats)!r}")
    policy = policy.eval()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    if "torchscript" in formats:
        paths["torchscript"] = _export_torchscript(policy, out / TORCHSCRIPT_FILE)
    if "onnx" in formats:
        paths["onnx"] = _export_onnx(policy, out / ONNX_FILE)
    return paths


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
        torch.jit.save(traced, str(path), _extra_files={META_KEY: json.dumps(policy.metadata())})
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
                                        input_names=["obs", "action_mask"], output_names=["logits", "value"],
                                        dynamic_shapes=({0: batch}, {0: batch}), verbose=False)
    finally:
        onnx_logger.setLevel(level)
    program.model.metadata_props.update({META_KEY: json.dumps(policy.metadata())})
    program.save(str(path), external_data=False)
    return path


class LoadedPolicy:
    """A loaded policy file: ``policy(obs, action_mask) -> actions (N,) int64``; ``logits`` and ``evaluate`` too.

    ``obs`` is ``(N, *obs_shape)`` uint8 (one observation ``obs_shape`` gives ``N = 1``); ``action_mask`` is
    ``(N, 4)`` of any numeric type (> 0 = allowed) or None for all allowed. numpy arrays or torch tensors.
    """

    def __init__(self, path: Path, fmt: str, run: Any, metadata: dict[str, Any]):
        self.path = path
        self.format = fmt
        self.metadata = metadata
        self.obs_shape: tuple[int, ...] = tuple(metadata["obs_shape"])
        self.num_actions: int = int(metadata.get("num_actions", len(ACTION_NAMES)))
        self.has_value: bool = "value" in metadata.get("outputs", ())
        self._run = run

    def _inputs(self, obs: Any, action_mask: Any) -> tuple[np.ndarray, np.ndarray]:
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
        return np.ascontiguousarray(obs_np), mask

    def evaluate(self, obs: Any, action_mask: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """((N, A) float32 masked logits, (N,) float32 values); a ModelError for a file without a value output."""
        if not self.has_value:
            raise ModelError(f"{self.path} has no value output (exported by an older version): export the run again "
                             f"(battlesnake-rl train --resume writes a new one) to search with it")
        logits, value = self._run(*self._inputs(obs, action_mask))
        return logits, value

    def logits(self, obs: Any, action_mask: Any = None) -> np.ndarray:
        """(N, A) float32 masked logits (or Q-values)."""
        return self._run(*self._inputs(obs, action_mask))[0]

    def __call__(self, obs: Any, action_mask: Any = None) -> np.ndarray:
        """(N,) int64 greedy actions."""
        return self.logits(obs, action_mask).argmax(axis=-1).astype(np.int64)

    def __repr__(self) -> str:
        return f"LoadedPolicy({str(self.path)!r}, format={self.format!r}, obs_shape={self.obs_shape})"


def load_policy(path: str | os.PathLike, *, num_threads: int | None = None) -> LoadedPolicy:
    """Loads a file written by ``write_policy`` (or the directory holding one) without importing Ray.

    TorchScript (``.pt``, a zip archive) is loaded with ``torch.jit.load``; ONNX (``.onnx``) with onnxruntime
    (``pip install onnxruntime``). A directory means its ``policy.pt``, else its ``policy.onnx``.
    ``num_threads`` caps the threads the runtime uses (None: its default).
    """
    path = Path(path)
    if path.is_dir():
        found = [path / name for name in MODEL_FILES if (path / name).is_file()]
        if not found:
            raise FileNotFoundError(f"no {' or '.join(MODEL_FILES)} in the directory {path}")
        path = found[0]
    if not path.is_file():
        raise FileNotFoundError(f"no policy file at {path}")
    if zipfile.is_zipfile(path):
        return _load_torchscript(path, num_threads)
    if path.suffix.lower() == ".onnx":
        return _load_onnx(path, num_threads)
    raise ValueError(f"{path} is not a policy file: expected a TorchScript archive (.pt) or an ONNX model (.onnx) "
                     f"written by write_policy")


def _load_torchscript(path: Path, num_threads: int | None) -> LoadedPolicy:
    extra = {META_KEY: ""}
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.jit")
            model = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as e:  # torch raises RuntimeError for zips that are not TorchScript archives
        raise ValueError(f"{path} is not a TorchScript policy: {e}") from e
    if not extra[META_KEY]:
        raise ValueError(f"{path} is a TorchScript file but not one written by write_policy (no {META_KEY})")
    metadata = json.loads(extra[META_KEY])
    model.eval()

    def run(obs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        previous = torch.get_num_threads()
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        try:
            with torch.inference_mode():
                out = model(torch.from_numpy(obs), torch.from_numpy(mask))
        finally:
            if num_threads is not None:
                torch.set_num_threads(previous)
        if isinstance(out, tuple):
            return out[0].numpy(), out[1].numpy()
        return out.numpy(), None  # written before the value output

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
        raise ValueError(f"{path} is an ONNX model but not one written by write_policy (inputs {names})")
    stored = session.get_modelmeta().custom_metadata_map.get(META_KEY)
    if stored:
        metadata = json.loads(stored)
    else:  # not written by this version: the input's static dims are the observation shape
        metadata = {"obs_shape": [int(d) for d in session.get_inputs()[0].shape[1:]]}
    outputs = [o.name for o in session.get_outputs()]

    def run(obs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        out = session.run(outputs, {"obs": obs, "action_mask": mask})
        return (out[0], out[1]) if len(out) > 1 else (out[0], None)

    return LoadedPolicy(path, "onnx", run, metadata)


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)
