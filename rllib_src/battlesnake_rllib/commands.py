"""``battlesnake-rl train`` and ``battlesnake-rl evaluate``: the training layer's commands."""

from __future__ import annotations

import argparse
import json
import runpy
import sys
import time
from collections.abc import Sequence
from pathlib import Path

TRAIN_SCRIPT = Path(__file__).resolve().parents[1] / "train-mabs.py"


def train(argv: Sequence[str] | None = None) -> int:
    """Local training with good defaults (standard 11x11, 4 snakes, PPO, 10 minutes) into runs/<name>/."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--name" in argv:
        i = argv.index("--name")
        if i + 1 >= len(argv):
            print("error: --name needs a value", file=sys.stderr)
            return 2
        name = argv[i + 1]
        del argv[i:i + 2]
    else:
        name = time.strftime("%Y%m%d-%H%M%S")
    if not any(a == "--out" or a.startswith("--out=") for a in argv):
        argv = ["--out", str(Path("runs") / name), *argv]
    module = runpy.run_path(str(TRAIN_SCRIPT), run_name="battlesnake_train")
    return int(module["main"](argv) or 0)


def evaluate(argv: Sequence[str] | None = None) -> int:
    """Play a trained model against bots in 1v1 and 4-player games; win/draw/loss rates with 95% intervals."""
    from battlesnake_gym.evaluation import evaluate as run_evaluation
    from battlesnake_policy import ModelError, load_model

    parser = argparse.ArgumentParser(prog="battlesnake-rl evaluate", description=evaluate.__doc__)
    parser.add_argument("--model", required=True, type=Path, help="exported model (.pt or .onnx) or a run folder")
    parser.add_argument("--opponents", default="safe,greedy,flood", help="comma-separated bot names")
    parser.add_argument("--games", type=int, default=200, help="games per opponent and mode")
    parser.add_argument("--modes", default="1v1,ffa4", help="1v1 and/or ffa4")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        model = load_model(args.model)
        spec = model.spec
        report = run_evaluation(model.policy, opponents=args.opponents.split(","), games=args.games,
                                modes=args.modes.split(","), settings=spec.settings(), encoder=spec.make_encoder(),
                                seed=args.seed, max_turns=spec.max_turns)
    except (ValueError, FileNotFoundError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.table())
    return 0
