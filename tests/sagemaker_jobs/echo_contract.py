"""A SageMaker entry point that only reports what it was given: the contract as read, its command line and its
environment's SM_* variables, written to ``model/contract.json`` (and ``output/data/<host>.txt``).

With the hyperparameter ``fail_on`` naming this host it writes ``output/failure`` and exits 1, as a failing job does.
"""

from __future__ import annotations

import json
import os
import sys

from sagemaker_rl import contract as sm


def main() -> int:
    job = sm.load()
    if job.hyperparameters.get("fail_on") == job.current_host:
        sm.write_failure(job, f"{job.current_host} was told to fail")
        return 1
    job.model_dir.mkdir(parents=True, exist_ok=True)
    (job.model_dir / "contract.json").write_text(json.dumps({
        "host": job.current_host, "hosts": job.hosts, "group": job.current_group,
        "groups": {g.name: g.hosts for g in job.instance_groups}, "hyperparameters": job.hyperparameters,
        "argv": sys.argv[1:], "cwd": os.getcwd(), "num_cpus": job.num_cpus,
        "channels": {name: sorted(p.name for p in path.iterdir()) for name, path in job.channels.items()},
        "sagemaker_rl": sm.__file__, "sm_env": {k: v for k, v in os.environ.items() if k.startswith("SM_")},
    }, indent=1))
    job.output_data_dir.mkdir(parents=True, exist_ok=True)
    (job.output_data_dir / f"{job.current_host}.txt").write_text("hello from " + job.current_host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
