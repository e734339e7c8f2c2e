"""The learning benchmark: train for N minutes with given settings, then measure the raw policy against the bots.

Every change to training, the model, the observation or the rewards is judged by this benchmark (the README's
ablation table lists each change with its effect and the command).

How to run::

    python benchmarks/learning_bar.py --minutes 10 --name default                  # the README's main job
    python benchmarks/learning_bar.py --minutes 5 --name lam95 -- --gae-lambda 0.95 # flags after -- go to training
    python benchmarks/learning_bar.py --iterations 130 --name lam95-screen -- ...   # a fixed amount of training
    python benchmarks/learning_bar.py --model runs/bench/default --games 400       # evaluate a trained run only

Training runs ``battlesnake-rl train`` (``rllib_src/train-mabs.py``) in a child process with the main job's defaults
and the flags after ``--``, into ``runs/bench/NAME``. Then the exported greedy policy (its action mask on, no search)
plays 1v1 and 4-player games against ``safe``, ``greedy`` and ``flood`` (``--games`` a pairing, at least 200 for a
figure, seats rotating, fixed seeds: every run meets the same boards), with 95% Wilson intervals. The table marks the
bars of issue 11 (1v1: safe 97%, greedy 80%, flood 55%; 4-player against three flood: 30%). ``--json`` prints the
report as JSON; it is always written to ``runs/bench/NAME/learning_bar.json`` with the training figures (iterations,
snake-steps, minutes).

The machine has 2 cores: run one benchmark at a time, and nothing else heavy beside it. ``--iterations`` screens an
idea with a fixed number of training iterations instead of minutes: the result no longer depends on the machine's
load (but no longer shows what the idea costs in speed; confirm winners with ``--minutes``).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: (mode, opponent) -> the win rate the raw policy must reach after the 10-minute main job (issue 11).
BARS = {("1v1", "safe"): 0.97, ("1v1", "greedy"): 0.80, ("1v1", "flood"): 0.55, ("ffa4", "flood"): 0.30}


def train(name: str, minutes: float, iterations: int | None, flags: list[str], out_root: Path) -> Path:
    """Run the main job for ``minutes`` (or ``iterations``) into ``out_root/name`` in a child process; returns the
    run folder."""
    out = out_root / name
    if (out / "checkpoints").exists():
        raise SystemExit(f"error: {out} already holds a run: pick another --name or evaluate it with --model {out}")
    budget = ["--minutes", str(minutes)] if iterations is None else ["--iterations", str(iterations), "--minutes",
                                                                     "100000"]
    command = [sys.executable, str(ROOT / "rllib_src" / "train-mabs.py"), "--out", str(out), *budget, *flags]
    print("training:", " ".join(command), flush=True)
    started = time.time()
    subprocess.run(command, check=True, cwd=ROOT)
    print(f"trained in {(time.time() - started) / 60:.1f} min", flush=True)
    return out


def training_figures(run: Path) -> dict:
    """Iterations, snake-steps and training minutes of a run, from its metrics.csv (empty if there is none)."""
    path = run / "metrics.csv"
    if not path.exists():
        return {}
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return {}
    last = rows[-1]
    seconds = sum(float(r.get("iteration_s") or 0.0) for r in rows)
    return {"iterations": int(float(last["iteration"])),
            "snake_steps": int(float(last["num_env_steps_sampled_lifetime"])), "train_minutes": seconds / 60}


def evaluate_run(run: Path, games: int, opponents: list[str], seed: int) -> dict:
    """The raw exported policy of ``run`` against each bot, 1v1 and 4-player."""
    from battlesnake_gym.evaluation import evaluate
    from battlesnake_policy import load_model

    model = load_model(run)
    started = time.time()
    report = evaluate(model.policy, opponents=opponents, games=games, modes=("1v1", "ffa4"),
                      settings=model.spec.settings(), encoder=model.spec.make_encoder(), seed=seed,
                      max_turns=model.spec.max_turns)
    print(report.table())
    print(f"evaluated in {time.time() - started:.0f} s")
    return report.to_dict()


def bar_lines(report: dict) -> list[str]:
    lines = []
    for r in report["results"]:
        bar = BARS.get((r["mode"], r["opponent"]))
        if bar is not None:
            low, high = r["win_interval"]
            verdict = "met" if r["win_rate"] >= bar else "not met"
            lines.append(f"bar {r['mode']} vs {r['opponent']}: {r['win_rate']:.1%} [{low:.1%}, {high:.1%}] "
                         f"(bar {bar:.0%}: {verdict})")
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    flags: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, flags = argv[:i], argv[i + 1:]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", help="run name: trains into runs/bench/NAME")
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget (the main job's: 10)")
    parser.add_argument("--iterations", type=int, help="train this many iterations instead (screening: load-proof)")
    parser.add_argument("--model", type=Path, help="evaluate this run folder (or model file) instead of training")
    parser.add_argument("--games", type=int, default=200, help="games a pairing (>= 200 for a figure)")
    parser.add_argument("--opponents", default="safe,greedy,flood")
    parser.add_argument("--seed", type=int, default=0, help="evaluation seed (the same boards for every run)")
    parser.add_argument("--out-root", type=Path, default=ROOT / "runs" / "bench")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if (args.name is None) == (args.model is None):
        parser.error("give --name (train, then evaluate) or --model (evaluate a trained run)")
    if args.games < 1:
        parser.error(f"--games must be >= 1, got {args.games}")
    run = args.model if args.model is not None else train(args.name, args.minutes, args.iterations, flags,
                                                          args.out_root)
    run_dir = run if run.is_dir() else run.parent.parent
    report = evaluate_run(run, args.games, args.opponents.split(","), args.seed)
    report["training"] = {**training_figures(run_dir), "flags": flags,
                          "budget": None if args.model else (f"{args.iterations} iterations" if args.iterations
                                                             else f"{args.minutes:g} minutes")}
    report["bars"] = bar_lines(report)
    print("\n".join(report["bars"]))
    (run_dir / "learning_bar.json").write_text(json.dumps(report, indent=2) + "\n")
    if args.json:
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
