"""Throughput: env-steps/s of one game alone, of a batch of games, and of the batched environment (observations of
every snake included), with bots choosing moves.

An env-step is one game advancing one turn (all its snakes move). Games that end are reset in place, as a training
sampler does. The process is pinned to one CPU core where the OS allows it, so the figures are per core.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Sequence

from .bots import make_bot
from .engine import Games, GameSettings


def pin_to_one_core() -> int | None:
    """Pin this process to one CPU (the first it may use); returns it, or None where unsupported."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def measure(batch_size: int, seconds: float, settings: GameSettings, num_snakes: int, bot: str,
            seed: int = 0) -> dict:
    """Step ``batch_size`` games for about ``seconds`` (after a warm-up); returns counts and rates."""
    games = Games(settings, num_snakes=num_snakes, batch_size=batch_size, seed=seed)
    policy = make_bot(bot, seed)

    def run(budget: float) -> tuple[int, int, int, float]:
        steps = snake_steps = finished = 0
        start = time.perf_counter()
        while True:
            for _ in range(32):
                moves = policy(games)
                snake_steps += int((moves >= 0).sum()) if batch_size > 1 else int(games.alive().sum())
                games.step(moves)
                steps += batch_size
                done = games.finished()
                if done.any():
                    finished += int(done.sum())
                    games.reset(done)
            elapsed = time.perf_counter() - start
            if elapsed >= budget:
                return steps, snake_steps, finished, elapsed

    run(min(0.5, seconds))  # warm-up: compile and fill caches
    steps, snake_steps, finished, elapsed = run(seconds)
    return {
        "batch_size": batch_size,
        "env_steps": steps,
        "seconds": round(elapsed, 3),
        "env_steps_per_s": round(steps / elapsed),
        "snake_steps_per_s": round(snake_steps / elapsed),
        "games_finished": finished,
        "mean_game_length": round(steps / finished, 1) if finished else None,
    }


def measure_env(batch_size: int, seconds: float, settings: GameSettings, num_snakes: int, bot: str,
                encoder: str = "egocentric", seed: int = 0) -> dict:
    """The batched environment: engine step + every snake's observation and action mask + rewards + resets."""
    from .envs import BatchEnv

    env = BatchEnv(settings, num_snakes=num_snakes, batch_size=batch_size, encoder=encoder, seed=seed)
    policy = make_bot(bot, seed)

    def run(budget: float) -> tuple[int, int, float]:
        steps = finished = 0
        start = time.perf_counter()
        while True:
            for _ in range(8):
                result = env.step(policy(env.games))
                steps += batch_size
                if result.game_done.any():
                    finished += int(result.game_done.sum())
                    env.reset(result.game_done)
            elapsed = time.perf_counter() - start
            if elapsed >= budget:
                return steps, finished, elapsed

    run(min(0.5, seconds))
    steps, finished, elapsed = run(seconds)
    return {"batch_size": batch_size, "encoder": encoder, "obs_shape": list(env.obs_shape), "env_steps": steps,
            "seconds": round(elapsed, 3), "env_steps_per_s": round(steps / elapsed), "games_finished": finished}


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="battlesnake-rl benchmark", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per configuration")
    parser.add_argument("--batch", type=int, default=1024, help="games in the batched run")
    parser.add_argument("--snakes", type=int, default=4)
    parser.add_argument("--size", type=int, default=11, help="board width and height")
    parser.add_argument("--ruleset", default="standard")
    parser.add_argument("--bot", default="safe", help="bot choosing every snake's moves (safe: non-fatal moves)")
    parser.add_argument("--encoder", default="egocentric", help="observation encoder of the environment run")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the process to one CPU core")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.batch < 1:
        parser.error("--seconds must be > 0 and --batch >= 1")
    cpu = None if args.no_pin else pin_to_one_core()
    settings = GameSettings(width=args.size, height=args.size, ruleset=args.ruleset)
    results = {
        "config": {"ruleset": args.ruleset, "board": f"{args.size}x{args.size}", "snakes": args.snakes,
                   "bot": args.bot, "pinned_cpu": cpu, "python": platform.python_version(),
                   "machine": platform.machine(), "cpus_visible": os.cpu_count()},
        "single_game": measure(1, args.seconds, settings, args.snakes, args.bot),
        "batched": measure(args.batch, args.seconds, settings, args.snakes, args.bot),
        "env_batched": measure_env(args.batch, args.seconds, settings, args.snakes, args.bot, args.encoder),
    }
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{args.ruleset} {args.size}x{args.size}, {args.snakes} snakes, {args.bot} bots, "
              f"pinned to CPU {cpu}")
        for name in ("single_game", "batched"):
            r = results[name]
            print(f"{name:12s} batch {r['batch_size']:5d}: {r['env_steps_per_s']:>10,} env-steps/s "
                  f"({r['snake_steps_per_s']:,} snake-steps/s, mean game {r['mean_game_length']} turns)")
        r = results["env_batched"]
        print(f"{'env_batched':12s} batch {r['batch_size']:5d}: {r['env_steps_per_s']:>10,} env-steps/s "
              f"(engine + {r['encoder']} observations {tuple(r['obs_shape'])} of every snake + masks + rewards)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
