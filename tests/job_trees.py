"""A SageMaker job tree written as SageMaker writes it, for tests of the contract and of train-mabs.py."""

from __future__ import annotations

import json
from pathlib import Path


def write_job(base: Path, hyperparameters: dict, hosts=("algo-1",), current="algo-1", groups=None) -> Path:
    config = base / "input" / "config"
    config.mkdir(parents=True)
    resources = {"current_host": current, "hosts": list(hosts), "network_interface_name": "eth0"}
    if groups:
        resources["instance_groups"] = groups
        resources["current_group_name"] = next(g["instance_group_name"] for g in groups if current in g["hosts"])
    (config / "resourceconfig.json").write_text(json.dumps(resources))
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "inputdataconfig.json").write_text(json.dumps({"train": {"TrainingInputMode": "File"}}))
    return base
