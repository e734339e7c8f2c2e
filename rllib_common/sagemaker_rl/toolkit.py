"""The SageMaker training toolkit, emulated: what a container holds and what a script entry point is started with.

The local runner (``sagemaker_rl.local``) gives every simulated host what ``sagemaker-training`` gives a script in a
SageMaker container — emulated, not the toolkit itself (its C extension and pinned dependencies do not belong in this
project):

- a ``SAGEMAKER_BASE_DIR`` tree (:func:`lay_out_host`): ``input/config/hyperparameters.json`` (every value
  JSON-encoded, as the SDK v2 estimators write it, with the SDK's ``sagemaker_*`` entries), ``resourceconfig.json``,
  ``inputdataconfig.json``, ``input/data/<channel>/``, ``model/``, ``output/data/``, ``checkpoints/``, and ``code/``:
  the source folder with the dependencies copied into it, as the SDK packs ``sourcedir.tar.gz``;
- the command line (:func:`toolkit_args`: the user hyperparameters, sorted, formatted as the toolkit formats them)
  and the ``SM_*`` variables (:func:`toolkit_environment`: ``SM_HPS``, ``SM_HP_<KEY>``, ``SM_HOSTS``,
  ``SM_CURRENT_HOST``, ``SM_TRAINING_ENV``, ...).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .modes import HOMOGENEOUS_GROUP


def toolkit_value(value: Any) -> str:
    """A hyperparameter as the toolkit puts it on the command line: str(), a mapping as ``k=v,k2=v2``."""
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in sorted(value.items()))
    return "" if value is None else str(value)


def toolkit_args(hyperparameters: Mapping[str, Any]) -> list[str]:
    """``--key value`` pairs, keys sorted (``-k`` for one-letter keys), as sagemaker-training builds them."""
    args: list[str] = []
    for key in sorted(hyperparameters):
        args += [f"--{key}" if len(key) > 1 else f"-{key}", toolkit_value(hyperparameters[key])]
    return args


def _env_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return "" if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))


def toolkit_environment(*, job: str, host: str, hosts: Sequence[str], base_dir: Path, code_dir: Path,
                        entry_point: str, hyperparameters: Mapping[str, Any], resource_config: Mapping[str, Any],
                        channels: Sequence[str], num_cpus: int, num_gpus: int) -> dict[str, str]:
    """The ``SM_*`` variables the toolkit gives a script entry point (the subset a training script reads)."""
    group = resource_config.get("current_group_name", HOMOGENEOUS_GROUP)
    groups = resource_config.get("instance_groups", [])
    training_env = {
        "job_name": job, "current_host": host, "hosts": list(hosts), "current_instance_group": group,
        "current_instance_type": resource_config.get("current_instance_type", "local"),
        "current_instance_group_hosts": next((g["hosts"] for g in groups if g["instance_group_name"] == group), []),
        "instance_groups": [g["instance_group_name"] for g in groups], "is_hetero": len(groups) > 1,
        "hyperparameters": dict(hyperparameters), "user_entry_point": entry_point,
        "module_name": Path(entry_point).stem, "module_dir": str(code_dir), "num_cpus": num_cpus,
        "num_gpus": num_gpus, "model_dir": str(base_dir / "model"), "output_dir": str(base_dir / "output"),
        "output_data_dir": str(base_dir / "output" / "data"), "input_dir": str(base_dir / "input"),
        "input_config_dir": str(base_dir / "input" / "config"),
        "channel_input_dirs": {c: str(base_dir / "input" / "data" / c) for c in channels},
        "resource_config": dict(resource_config), "network_interface_name": "lo", "log_level": 20,
    }
    env = {
        "SM_TRAINING_ENV": json.dumps(training_env), "SM_HOSTS": json.dumps(list(hosts)), "SM_CURRENT_HOST": host,
        "SM_CURRENT_INSTANCE_GROUP": group, "SM_CURRENT_INSTANCE_TYPE": training_env["current_instance_type"],
        "SM_CURRENT_INSTANCE_GROUP_HOSTS": json.dumps(training_env["current_instance_group_hosts"]),
        "SM_INSTANCE_GROUPS": json.dumps(training_env["instance_groups"]),
        "SM_IS_HETERO": json.dumps(training_env["is_hetero"]),
        "SM_NUM_CPUS": str(num_cpus), "SM_NUM_GPUS": str(num_gpus), "SM_MODEL_DIR": training_env["model_dir"],
        "SM_OUTPUT_DIR": training_env["output_dir"], "SM_OUTPUT_DATA_DIR": training_env["output_data_dir"],
        "SM_INPUT_DIR": training_env["input_dir"], "SM_INPUT_CONFIG_DIR": training_env["input_config_dir"],
        "SM_CHANNELS": json.dumps(sorted(channels)), "SM_HPS": json.dumps(dict(hyperparameters)),
        "SM_USER_ARGS": json.dumps(toolkit_args(hyperparameters)), "SM_USER_ENTRY_POINT": entry_point,
        "SM_MODULE_NAME": training_env["module_name"], "SM_MODULE_DIR": str(code_dir),
        "SM_RESOURCE_CONFIG": json.dumps(dict(resource_config)), "SM_NETWORK_INTERFACE_NAME": "lo",
        "SM_LOG_LEVEL": "20", "SM_FRAMEWORK_PARAMS": "{}", "TRAINING_JOB_NAME": job,
    }
    env |= {f"SM_CHANNEL_{c.upper()}": training_env["channel_input_dirs"][c] for c in channels}
    env |= {f"SM_HP_{k.upper()}": _env_value(v) for k, v in hyperparameters.items()}
    return env


def sdk_hyperparameters(user: Mapping[str, Any], *, entry_point: str, code_dir: Path, job: str) -> dict[str, str]:
    """hyperparameters.json as an SDK v2 estimator writes it: every value JSON-encoded, plus its sagemaker_* keys."""
    written = {k: json.dumps(v) for k, v in user.items()}
    written |= {"sagemaker_program": json.dumps(entry_point),
                "sagemaker_submit_directory": json.dumps(code_dir.as_uri()), "sagemaker_container_log_level": "20",
                "sagemaker_job_name": json.dumps(job), "sagemaker_region": json.dumps("us-east-1")}
    return written


def lay_out_host(base_dir: Path, *, job: str, host: str, host_groups: Sequence[tuple[str, Sequence[str]]],
                 source_dir: Path, entry_point: str, dependencies: Sequence[Path], channels: Mapping[str, Path],
                 hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
    """Write one host's ``SAGEMAKER_BASE_DIR`` tree afresh (see the module docstring); returns its resource config.

    ``host_groups`` are the job's (group name, its hosts); a job without instance groups has one, named
    ``homogeneousCluster`` as SageMaker names it.
    """
    base = base_dir
    if base.exists():
        shutil.rmtree(base)
    config = base / "input" / "config"
    config.mkdir(parents=True)
    for sub in ("model", "output/data", "checkpoints"):
        (base / sub).mkdir(parents=True)
    code = base / "code"
    shutil.copytree(source_dir, code, symlinks=True)
    for dep in dependencies:  # the SDK copies each dependency folder into the root of sourcedir.tar.gz
        shutil.copytree(dep, code / dep.name, symlinks=True, dirs_exist_ok=True)
    for name, path in channels.items():
        target = base / "input" / "data" / name
        if path.is_dir():
            shutil.copytree(path, target)
        else:
            target.mkdir(parents=True)
            shutil.copy2(path, target / path.name)
    hosts = [h for _, group_hosts in host_groups for h in group_hosts]
    group = next(name for name, group_hosts in host_groups if host in group_hosts)
    resource_config = {"current_host": host, "current_instance_type": "local", "current_group_name": group,
                       "hosts": hosts, "network_interface_name": "lo",
                       "instance_groups": [{"instance_group_name": name, "instance_type": "local",
                                            "hosts": list(group_hosts)} for name, group_hosts in host_groups]}
    (config / "resourceconfig.json").write_text(json.dumps(resource_config))
    (config / "hyperparameters.json").write_text(json.dumps(sdk_hyperparameters(
        hyperparameters, entry_point=entry_point, code_dir=code, job=job)))
    (config / "inputdataconfig.json").write_text(json.dumps({c: {
        "TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
        for c in channels}))
    return resource_config
