"""Training throughput: RLlib's stock multi-agent sampling against the fast batched sampler, same model, one run.

How to run::

    python benchmarks/training_throughput.py --seconds 60 --json > throughput.json

Measures, for each path, sampled agent-steps/s (EnvRunner.sample alone) and end-to-end agent-steps/s of PPO
(sample + learn, ``algo.train()``), with the same ``BattlesnakeCNN`` model, standard 11x11, 4 snakes, all played by
one shared policy. Stock path: the RLlib adapter env (``BattlesnakeMultiAgentEnv``) on ``MultiAgentEnvRunner``.
Fast path: ``BatchedEnvRunner`` over ``num_games`` games. Targets: fast >= 10x stock (sampling), and >= 5,000
agent-steps/s end-to-end PPO on the 2-core machine.

Results to expect: see the README's training-throughput table (measured figures and the command).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rllib_src"))

import ray  # noqa: E402
from ray.rllib.algorithms.ppo import PPOConfig  # noqa: E402
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec  # noqa: E402
from ray.rllib.core.rl_module.rl_module import RLModuleSpec  # noqa: E402

from battlesnake_rllib.config import TrainArgs, build_config  # noqa: E402
from battlesnake_rllib.env import BattlesnakeMultiAgentEnv  # noqa: E402
from battlesnake_rllib.model import BattlesnakeCNN  # noqa: E402


def stock_config(args: TrainArgs) -> PPOConfig:
    model = args.model_config()
    return (
        PPOConfig()
        .environment(env=BattlesnakeMultiAgentEnv,
                     env_config={"num_snakes": args.num_snakes, "encoder": args.policy_spec().make_encoder(),
                                 "max_turns": args.max_turns, "rewards": args.rewards})
        .env_runners(num_env_runners=0, num_envs_per_env_runner=1)
        .multi_agent(policies={"shared"}, policy_mapping_fn=lambda agent_id, episode, **kw: "shared")
        .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs={
            "shared": RLModuleSpec(module_class=BattlesnakeCNN, model_config=model)}))
        .training(lr=args.lr, train_batch_size_per_learner=args.train_batch_size, minibatch_size=args.minibatch_size,
                  num_epochs=args.num_epochs)
        .learners(num_learners=0)
    )


def measure(config, seconds: float, label: str) -> dict:
    algo = config.build_algo()
    runner = algo.env_runner_group.local_env_runner
    runner.sample()  # warm-up
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds / 2:
        episodes = runner.sample()
        steps += sum(e.agent_steps() for e in episodes)
    sampled = steps / (time.perf_counter() - start)
    algo.train()  # warm-up of the learner
    lifetime = _agent_steps(algo.train())
    start = time.perf_counter()
    iterations = 0
    while time.perf_counter() - start < seconds / 2:
        result = algo.train()
        iterations += 1
    end_to_end = (_agent_steps(result) - lifetime) / (time.perf_counter() - start)
    algo.stop()
    return {"path": label, "sampled_agent_steps_per_s": round(sampled), "end_to_end_agent_steps_per_s":
            round(end_to_end), "iterations_timed": iterations}


def _agent_steps(result: dict) -> int:
    runners = result["env_runners"]
    value = runners.get("num_agent_steps_sampled_lifetime", runners.get("num_env_steps_sampled_lifetime", 0))
    return int(sum(value.values()) if isinstance(value, dict) else value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="measuring time per path (half sampling)")
    parser.add_argument("--num-games", type=int, default=128, help="games of the fast path")
    parser.add_argument("--view", type=int, default=11, help="egocentric window of both paths (0: whole board)")
    parser.add_argument("--json", action="store_true")
    ns = parser.parse_args()
    args = TrainArgs(num_games=ns.num_games, view=ns.view, train_batch_size=4096, minibatch_size=1024, num_epochs=2)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    results = [measure(stock_config(args), ns.seconds, "stock MultiAgentEnvRunner, 1 game"),
               measure(build_config(args), ns.seconds, f"BatchedEnvRunner, {ns.num_games} games")]
    ray.shutdown()
    report = {"cpus": os.cpu_count(), "view": args.view,
              "model": {"conv_filters": args.conv_filters, "hidden": args.hidden},
              "results": results,
              "sampling_speedup": round(results[1]["sampled_agent_steps_per_s"]
                                        / max(1, results[0]["sampled_agent_steps_per_s"]), 1),
              "end_to_end_speedup": round(results[1]["end_to_end_agent_steps_per_s"]
                                          / max(1, results[0]["end_to_end_agent_steps_per_s"]), 1)}
    if ns.json:
        print(json.dumps(report, indent=2))
    else:
        for r in results:
            print(f"{r['path']:40s} sampled {r['sampled_agent_steps_per_s']:>8,} agent-steps/s, "
                  f"end-to-end PPO {r['end_to_end_agent_steps_per_s']:>7,} agent-steps/s")
        print(f"fast/stock: sampling {report['sampling_speedup']}x, end-to-end {report['end_to_end_speedup']}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
