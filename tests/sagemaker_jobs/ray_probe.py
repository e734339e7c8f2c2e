"""A tiny SageMaker entry point that exercises the platform layer alone: bootstrap, Ray tasks on every host, finish.

How to run (what tests/test_local_runner.py does)::

    battlesnake-rl sagemaker local --mode homogeneous --instances 2 \
        --source-dir tests/sagemaker_jobs --entry-point ray_probe.py --dependencies rllib_common/sagemaker_rl

Results to expect: the head prints ``task_hosts: algo-1=N,algo-2=N`` (one pinned task per host, plus spread ones)
and ``runner_hosts: ...`` (where actors placed like env runners landed), writes both to ``model/hosts.json`` and
exits 0; worker hosts exit 0 when the head announces the end. Hyperparameters: ``probe_hold_s`` keeps the cluster
busy that long after the tasks (so a test can kill a host mid-run); ``probe_fail`` makes the head raise that message.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter

from sagemaker_rl import cluster
from sagemaker_rl import contract as sm


@sm.failure_guard
def main() -> int:
    job = sm.load()
    settings, hyperparameters = cluster.ClusterSettings.from_hyperparameters(job.hyperparameters)
    node = cluster.bootstrap(job, settings)
    if not node.is_head:
        return node.serve_until_done()

    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    ray.init(address=node.address, include_dashboard=False, log_to_driver=False, configure_logging=False)

    @ray.remote(num_cpus=1)
    def where() -> str:
        return ray.util.get_node_ip_address()

    @ray.remote(num_cpus=1)
    class Runner:  # placed like an env runner: one CPU each, Ray's default strategy
        def where(self) -> str:
            return ray.util.get_node_ip_address()

    node_ids = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
    pinned = [where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(i, soft=False)).remote()
              for i in node_ids]
    spread = [where.options(scheduling_strategy="SPREAD").remote() for _ in range(2 * len(node_ids))]
    task_hosts = Counter(node.host_of_address(ip) for ip in ray.get(pinned + spread))
    runners = [Runner.remote() for _ in range(node.num_env_runners)]
    runner_hosts = Counter(node.host_of_address(ip) for ip in ray.get([r.where.remote() for r in runners]))
    print("task_hosts: " + ",".join(f"{h}={n}" for h, n in sorted(task_hosts.items())), flush=True)
    print("runner_hosts: " + ",".join(f"{h}={n}" for h, n in sorted(runner_hosts.items())), flush=True)
    print(f"num_env_runners: {node.num_env_runners}", flush=True)

    hold_s = float(hyperparameters.get("probe_hold_s", 0))
    if hold_s:
        print(f"probe: holding the cluster for {hold_s:g} s", flush=True)
        end = time.monotonic() + hold_s
        while time.monotonic() < end:
            ray.get([where.remote() for _ in node_ids])
            time.sleep(0.5)
    if hyperparameters.get("probe_fail"):
        raise RuntimeError(str(hyperparameters["probe_fail"]))

    job.model_dir.mkdir(parents=True, exist_ok=True)
    (job.model_dir / "hosts.json").write_text(json.dumps({
        "task_hosts": task_hosts, "runner_hosts": runner_hosts, "num_env_runners": node.num_env_runners,
        "cpus_by_host": node.cpus_by_host, "mode": node.plan.mode}, indent=1))
    node.finish(success=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
