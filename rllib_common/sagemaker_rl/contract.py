"""The SageMaker training-container contract: what a job finds on its host, read in one place.

SageMaker (and ``sagemaker-training``, and this package's docker-free local runner) lay a job out under one base
folder, ``SAGEMAKER_BASE_DIR`` (default ``/opt/ml``)::

    input/config/hyperparameters.json   {"name": value, ...}  SDK v2 JSON-encodes every value; ModelTrainer passes raw
    input/config/resourceconfig.json    {"current_host", "hosts", "current_group_name", "instance_groups": [...]}
    input/config/inputdataconfig.json   {"channel": {"ContentType": ..., "TrainingInputMode": ...}}
    input/data/<channel>/               the channel's files
    model/                              what ends up in model.tar.gz
    output/data/                        what ends up in output.tar.gz
    output/failure                      the reason a job failed (shown in the console and DescribeTrainingJob)
    checkpoints/                        synced to ``checkpoint_s3_uri`` when the estimator sets it

``SM_*`` variables, when set, win over the files (the toolkit derives them from the same files). Nothing here imports
the SageMaker SDK, Ray or the game: a job reads its contract with the standard library alone.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_BASE_DIR = "/opt/ml"


class ContractError(ValueError):
    """A container file or ``SM_*`` variable that is missing where required, or malformed."""


@dataclass(frozen=True)
class InstanceGroup:
    """One instance group of a heterogeneous job (SageMaker ``instance_groups``)."""

    name: str
    instance_type: str
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class Contract:
    """Everything a training job reads from its container: paths, hosts, groups, hyperparameters and resources."""

    base_dir: Path
    hosts: tuple[str, ...]  # every host of this job, sorted (algo-1, algo-2, ...)
    current_host: str
    current_group: str | None  # this host's instance group (heterogeneous jobs), else None
    instance_groups: tuple[InstanceGroup, ...]
    hyperparameters: dict[str, Any]
    channels: dict[str, Path]  # channel name -> its data folder
    model_dir: Path
    output_data_dir: Path
    failure_file: Path
    checkpoint_dir: Path
    num_cpus: int
    num_gpus: int
    in_sagemaker: bool  # a resourceconfig.json (or SM_TRAINING_ENV) was found: this is a real or simulated job
    environment: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def is_multi_host(self) -> bool:
        return len(self.hosts) > 1

    @property
    def first_host(self) -> str:
        return self.hosts[0]

    def group_of(self, host: str) -> InstanceGroup | None:
        return next((g for g in self.instance_groups if host in g.hosts), None)

    def hosts_of_group(self, name: str) -> tuple[str, ...]:
        for group in self.instance_groups:
            if group.name == name:
                return group.hosts
        known = ", ".join(g.name for g in self.instance_groups) or "none (not a heterogeneous job)"
        raise ContractError(f"no instance group named {name!r}; this job's groups: {known}")


def load(base_dir: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None) -> Contract:
    """Read the contract of the job this process runs in (or a local stand-in when there is no job)."""
    env = dict(os.environ if environ is None else environ)
    base = Path(base_dir or env.get("SAGEMAKER_BASE_DIR") or DEFAULT_BASE_DIR)
    config_dir = base / "input" / "config"
    resource_file = config_dir / "resourceconfig.json"
    resources = _read_json(resource_file) if resource_file.exists() else {}
    in_sagemaker = bool(resources) or "SM_TRAINING_ENV" in env

    hosts = resources.get("hosts") or _env_json(env, "SM_HOSTS") or ["algo-1"]
    current = env.get("SM_CURRENT_HOST") or resources.get("current_host") or hosts[0]
    if not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts):
        raise ContractError(f"{resource_file}: 'hosts' must be a list of host names, got {hosts!r}")
    if current not in hosts:
        raise ContractError(f"current host {current!r} is not among the job's hosts {hosts}")
    groups = tuple(_instance_group(g, resource_file) for g in resources.get("instance_groups") or ())
    current_group = env.get("SM_CURRENT_INSTANCE_GROUP") or resources.get("current_group_name")
    if groups and current_group not in {g.name for g in groups}:
        group = next((g for g in groups if current in g.hosts), None)
        current_group = group.name if group else None

    hyper_file = config_dir / "hyperparameters.json"
    if "SM_HPS" in env:
        raw = _env_json(env, "SM_HPS")
    else:
        raw = _read_json(hyper_file) if hyper_file.exists() else {}
    if not isinstance(raw, dict):
        raise ContractError(f"hyperparameters must be a JSON object, got {type(raw).__name__}")

    data_dir = base / "input" / "data"
    channel_file = config_dir / "inputdataconfig.json"
    channel_names = list(_read_json(channel_file)) if channel_file.exists() else []
    channels = {name: Path(env.get(f"SM_CHANNEL_{name.upper()}", data_dir / name)) for name in channel_names}
    for key, value in env.items():
        if key.startswith("SM_CHANNEL_") and key != "SM_CHANNELS":
            channels.setdefault(key[len("SM_CHANNEL_"):].lower(), Path(value))

    return Contract(
        base_dir=base,
        hosts=tuple(sorted(hosts, key=host_order)),
        current_host=current,
        current_group=current_group,
        instance_groups=groups,
        hyperparameters=decode_hyperparameters(raw),
        channels=channels,
        model_dir=Path(env.get("SM_MODEL_DIR") or base / "model"),
        output_data_dir=Path(env.get("SM_OUTPUT_DATA_DIR") or base / "output" / "data"),
        failure_file=base / "output" / "failure",
        checkpoint_dir=Path(env.get("SM_CHECKPOINT_DIR") or base / "checkpoints"),
        num_cpus=_env_int(env, "SM_NUM_CPUS", os.cpu_count() or 1),
        num_gpus=_env_int(env, "SM_NUM_GPUS", 0),
        in_sagemaker=in_sagemaker,
        environment=env,
    )


def decode_hyperparameters(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Hyperparameters as Python values, whichever way they were passed.

    The SDK v2 estimators JSON-encode every value (``"lr": "0.001"``, ``"name": "\\"ppo\\""``); ModelTrainer and the
    console pass strings as typed (``"name": "ppo"``). A string that parses as JSON is decoded, one that does not is
    kept as the string it is, and non-string values pass through.
    """
    decoded: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not key:
            raise ContractError(f"hyperparameter names must be non-empty strings, got {key!r}")
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        decoded[key] = value
    return decoded


def write_failure(contract: Contract, message: str) -> Path:
    """Write the failure reason where SageMaker reads it (the console shows its first 1 KB)."""
    contract.failure_file.parent.mkdir(parents=True, exist_ok=True)
    contract.failure_file.write_text(message)
    return contract.failure_file


def failure_guard(main: Callable[..., int | None]) -> Callable[..., int]:
    """Wrap an entry point: an exception writes ``output/failure`` (message and traceback) and exits non-zero.

    ``SystemExit`` passes through untouched (argparse errors and explicit exits keep their codes); when the job is not
    a SageMaker job the failure file is still written under the local base folder only if that folder exists.
    """

    @functools.wraps(main)
    def guarded(*args: Any, **kwargs: Any) -> int:
        try:
            return int(main(*args, **kwargs) or 0)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001 - the job must report whatever ended it
            message = f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}"
            try:
                contract = load()
                if contract.in_sagemaker or contract.base_dir.exists():
                    path = write_failure(contract, message)
                    print(f"failure written to {path}", file=sys.stderr)
            except (ContractError, OSError) as inner:
                print(f"could not write the failure file: {inner}", file=sys.stderr)
            traceback.print_exc()
            return 1

    return guarded


_HOST_NAME = re.compile(r"^(.*?)-(\d+)(?:-([a-z0-9]+))?$")  # algo-2; SDK local mode: algo-2-x7k2p


def host_order(host: str) -> tuple[str, int, str]:
    """Sort key of host names: ``algo-2`` before ``algo-10`` (and ``algo-2-x7k2p``, SDK local mode's, before
    ``algo-10-x7k2p``): the name's stem, then its number, then the suffix."""
    match = _HOST_NAME.match(host)
    return (match.group(1), int(match.group(2)), match.group(3) or "") if match else (host, -1, host)


def host_slot(contract: Contract) -> int:
    """This host's place in its job, from 1: ``algo-2`` (``algo-2-x7k2p`` in SDK local mode) is 2."""
    return contract.hosts.index(contract.current_host) + 1


def _instance_group(raw: Any, source: Path) -> InstanceGroup:
    try:
        return InstanceGroup(name=str(raw["instance_group_name"]), instance_type=str(raw.get("instance_type", "")),
                             hosts=tuple(sorted(raw["hosts"], key=host_order)))
    except (KeyError, TypeError) as exc:
        raise ContractError(f"{source}: malformed instance group {raw!r} ({exc})") from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ContractError(f"{path} is not valid JSON: {exc}") from None


def _env_json(env: Mapping[str, str], name: str) -> Any:
    if name not in env:
        return None
    try:
        return json.loads(env[name])
    except json.JSONDecodeError as exc:
        raise ContractError(f"${name} is not valid JSON: {exc}") from None


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    if name not in env:
        return default
    try:
        return int(env[name])
    except ValueError:
        raise ContractError(f"${name} must be an integer, got {env[name]!r}") from None
